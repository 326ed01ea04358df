"""The documented power model used where no meter measures a device.

For a device with profile ``p`` at CPU frequency ``f`` with accelerator ``a``:

* busy power ``P_busy(f, a)`` = ``p.power.busy_w[f]`` + ``extra_w(a)``, or the
  accelerator's ``busy_w`` where the profile gives one (it replaces the CPU's);
* waiting power ``P_wait(f, a)`` = ``p.power.wait_w[f]`` + ``extra_w(a)``;
* energy of one sample = ``P_busy × busy time + P_wait × waiting time +
  network_j_per_byte × bytes sent``.

The edge is busy while its head runs and its tensor is encoded, and waits for
the cloud's answer the rest of the end-to-end latency. The cloud is busy while
its tail runs. Every figure this model produces is labelled
``model:<profile name>`` (see :attr:`PowerModel.source`); it is never presented
as a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.errors import ConfigError, choices
from toolkit.hardware.profile import DeviceProfile

__all__ = ["PowerModel"]


@dataclass(frozen=True)
class PowerModel:
    """Power model of one device, built from its profile."""

    profile: DeviceProfile

    @property
    def source(self) -> str:
        """The ``energy_source`` label of figures from this model."""
        return f"model:{self.profile.name}"

    def _index(self, freq: int | None) -> int:
        freqs = self.profile.frequencies_mhz
        if not freqs:
            return 0
        if freq is None:
            return len(freqs) - 1
        return freqs.index(self.profile.check_freq(freq))

    def _accel(self, accel: str):
        spec = self.profile.power.accelerators.get(accel) if isinstance(accel, str) else None
        if spec is None:
            raise ConfigError(
                f"profile {self.profile.name!r} has no power figures for accelerator "
                f"{accel!r}; it has: {choices(self.profile.power.accelerators)}"
            )
        return spec

    def busy_w(self, freq: int | None, accel: str = "none") -> float:
        """Power in watts while computing."""
        spec = self._accel(accel)
        if spec.busy_w is not None:
            return spec.busy_w
        return self.profile.power.busy_w[self._index(freq)] + spec.extra_w

    def wait_w(self, freq: int | None, accel: str = "none") -> float:
        """Power in watts while waiting (powered, not computing)."""
        return self.profile.power.wait_w[self._index(freq)] + self._accel(accel).extra_w

    def energy_j(
        self,
        busy_s: float,
        wait_s: float = 0.0,
        *,
        freq: int | None = None,
        accel: str = "none",
        bytes_sent: float = 0.0,
    ) -> float:
        """Modelled energy in joules for the given busy and waiting time."""
        return (
            self.busy_w(freq, accel) * busy_s
            + self.wait_w(freq, accel) * max(wait_s, 0.0)
            + self.profile.power.network_j_per_byte * bytes_sent
        )
