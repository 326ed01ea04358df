"""The testbed interface: apply a configuration, run split inference, get a record.

A :class:`Testbed` owns the edge and cloud devices of one study. Subclasses
(the local emulated testbed, the SSH testbed) implement how workers start and
how knobs are set; this base class does what is common: validating a
configuration against the model and the device profiles, metering the run (a
real meter's window where one is attached, otherwise the profile's power model,
labelled as such), scoring accuracy against reference labels, and turning the
per-sample timings into one :class:`RunRecord`.

Every method has an ``a``-prefixed coroutine and a blocking twin that runs it on
a private event loop, so the same object works in scripts, in notebooks (which
already run a loop) and inside async code.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.aio import BlockingLifecycle
from toolkit.config import KEYS, MAX_SAMPLES, VARIABLES, Config, config_problems
from toolkit.devices.controllers.base import KnobChange, switch_time_ms
from toolkit.energy.meter import Meter
from toolkit.energy.model import PowerModel
from toolkit.errors import ConfigError, ToolkitError, check_count, choices
from toolkit.hardware.profile import DeviceProfile
from toolkit.models.codecs import check_codec
from toolkit.runtime.session import RunResult

__all__ = ["RunRecord", "Testbed", "check_model_options"]


def check_model_options(model: Any, input_size: Any, data: Any) -> str:
    """The model's name, checked with its input size and data folder when a testbed is
    made (an unknown name, a bad or needless input size, a missing or empty data
    folder), so that none is found by a worker failing to start.

    Raises:
        ToolkitError: naming the problem and the valid choices.
    """
    from toolkit.models.data import image_files
    from toolkit.models.names import check_input_size, check_model_name

    name = check_model_name(model)
    if input_size is not None:
        check_count(input_size, "input_size")
    check_input_size([name], input_size)
    if data:
        image_files(data)
    return name


@dataclass
class RunRecord:
    """One run of one configuration, reduced to per-sample means.

    ``latency_ms = edge_ms + transfer_ms + cloud_ms``; energies are joules per
    sample with their ``energy_source``. ``execute_s`` is the wall time spent in
    split inference (head preparation, warm-up and the measured samples).
    """

    config: Config
    codec: str
    samples: int
    latency_ms: float
    edge_ms: float
    transfer_ms: float
    cloud_ms: float
    energy_j: float
    edge_energy_j: float
    cloud_energy_j: float
    accuracy: float
    tensor_kb: float
    edge_cpu_util: float
    energy_source: str
    label_source: str
    throttled: bool
    execute_s: float = 0.0
    knob_changes: list[KnobChange] = field(default_factory=list)
    result: RunResult | None = None

    @property
    def switch_ms(self) -> float:
        """How long the run's hardware changes took (:func:`switch_time_ms`)."""
        return switch_time_ms(self.knob_changes)

    def cube_row(self, with_codec: bool = False) -> dict[str, Any]:
        """The record as a cube run: configuration keys plus the cube's variables."""
        row: dict[str, Any] = self.config.as_dict()
        if with_codec:
            row["codec"] = self.codec
        return {**row, **{key: getattr(self, key) for key in VARIABLES}}


class Testbed(BlockingLifecycle, abc.ABC):
    """Edge and cloud devices that run split inference for a configuration.

    Args:
        edge_profile, cloud_profile: the devices' profiles.
        edge_meter, cloud_meter: optional meters; without one, the device's
            power model gives (modelled, labelled) energy.
    """

    name: str = "testbed"
    #: input size of ``keras.applications`` models (None: their default)
    input_size: int | None = None
    #: image folder of the evaluation samples and their real labels (None: built-in)
    data: str | None = None
    #: whether ``arun`` takes a caller's input and ``top_k`` (``_execute`` accepts them)
    runs_inputs: bool = False

    def __init__(self, edge_profile: DeviceProfile, cloud_profile: DeviceProfile,
                 edge_meter: Meter | None = None, cloud_meter: Meter | None = None) -> None:
        self.edge_profile = edge_profile.check_role("edge")
        self.cloud_profile = cloud_profile.check_role("cloud")
        self.edge_meter = edge_meter
        self.cloud_meter = cloud_meter
        self.edge_power = PowerModel(edge_profile)
        self.cloud_power = PowerModel(cloud_profile)
        self._labels: dict[str, tuple[np.ndarray, str]] = {}
        self._split_models: dict[str, Any] = {}
        self._loop_name = f"dynasplit-{self.name}"

    # -- what subclasses provide -------------------------------------------------
    @property
    @abc.abstractmethod
    def edge_accels(self) -> tuple[str, ...]:
        """Edge accelerators this testbed can really run."""

    @property
    @abc.abstractmethod
    def cloud_accels(self) -> tuple[str, ...]:
        """Cloud accelerators this testbed can really run."""

    @property
    def throttled(self) -> bool:
        """Whether the edge CPU frequency really takes effect."""
        return True

    @property
    def latency_source(self) -> str | None:
        """Where timing comes from a model rather than a clock (None: all measured)."""
        return None

    @abc.abstractmethod
    async def astart(self) -> None:
        """Start workers and connect to devices."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop workers and disconnect (idempotent)."""

    @abc.abstractmethod
    async def aapply(self, config: Config) -> list[KnobChange]:
        """Set the hardware knobs of a configuration."""

    @abc.abstractmethod
    async def _execute(self, config: Config, *, samples: int, codec: str, warmup: int,
                       offset: int) -> RunResult:
        """Run split inference for an applied configuration."""

    async def _prepare(self, config: Config) -> None:
        """Make what a run of the applied ``config`` needs before it is timed and
        metered (the SSH testbed: Edge TPU heads); nothing by default."""

    async def split_model_for(self, model: str):
        """The controller-side :class:`~toolkit.models.SplitModel` of a model name
        (built once per name, at the testbed's ``input_size``)."""
        if model not in self._split_models:
            from toolkit.models.split import SplitModel
            from toolkit.models.zoo import load_model

            self._split_models[model] = SplitModel(
                load_model(model, input_size=self.input_size), name=model)
        return self._split_models[model]

    def share_models(self, other: Testbed) -> None:
        """Use ``other``'s controller-side split models and reference labels.

        Testbeds of one pool run the same models at the same input size; sharing
        builds each model (and its labels) once in this process, not once per
        testbed. Does nothing where the input sizes differ.
        """
        if other is not self and other.input_size == self.input_size:
            self._split_models = other._split_models
            self._labels = other._labels

    # -- common behaviour --------------------------------------------------------
    @property
    def energy_source(self) -> str:
        """``energy_source`` of this testbed's figures (edge + cloud, ``+``-joined)."""
        edge = self.edge_meter.source if self.edge_meter else self.edge_power.source
        cloud = self.cloud_meter.source if self.cloud_meter else self.cloud_power.source
        return edge if edge == cloud else f"{edge}+{cloud}"

    async def validate(self, config: Config | Mapping[str, Any]) -> Config:
        """Check a configuration against the model, the profiles and this testbed."""
        if not isinstance(config, Config):
            config = Config.from_mapping(config)
        sm = await self.split_model_for(config.model)
        sm.check_split(config.split)
        self.edge_profile.check_freq(config.cpu_freq)
        for key, valid in (("edge_accel", self.edge_accels), ("cloud_accel", self.cloud_accels)):
            if getattr(config, key) not in valid:
                raise ConfigError(f"{KEYS[key].label} {getattr(config, key)!r} is not available "
                                  f"on testbed {self.name!r}; valid: {choices(valid)}")
        problems = config_problems(config, sm.n_splits)
        if problems:
            raise ConfigError(f"invalid configuration {config.as_dict()}: {'; '.join(problems)}")
        return config

    async def labels(self, model: str, indices: Any = None) -> tuple[np.ndarray, str]:
        """Reference labels of the evaluation samples for ``model``, and their source.

        Where the reference is the fp32 model's own prediction, only the samples
        at ``indices`` (default: all) are predicted, once each; the others hold
        -1 until a run needs them (a large model on a slow host then costs a few
        samples, not the whole evaluation set).
        """
        from toolkit.models.data import eval_inputs, folder_data, reference_labels

        sm = await self.split_model_for(model)  # built with the labels, so cached with them
        if model not in self._labels and self.data:
            found = folder_data(self.data, sm.model, model)
            self._labels[model] = (found.y_eval, found.label_source)
        if model not in self._labels:
            _, x_eval = eval_inputs(sm.model)
            first, source = reference_labels(sm.model, x_eval[:1])  # true labels: all
            labels = np.full(len(x_eval), -1, dtype=np.int64)
            if source == "fp32-model":
                labels[0] = first[0]
            else:
                labels = np.asarray(first)
            self._labels[model] = (labels, source)
        labels, source = self._labels[model]
        if source == "fp32-model":
            wanted = np.arange(len(labels)) if indices is None else np.unique(indices)
            missing = wanted[labels[wanted] < 0]
            if len(missing):
                _, x_eval = eval_inputs(sm.model)
                labels[missing] = reference_labels(sm.model, x_eval[missing])[0]
        return labels, source

    async def arun(self, config: Config | Mapping[str, Any], *, samples: int = 100,
                   codec: str = "fp32", warmup: int = 3, offset: int = 0,
                   inputs: np.ndarray | None = None, top_k: int = 0) -> RunRecord:
        """Apply ``config``, run ``samples`` samples and return the run's record.

        With ``inputs`` (a model-ready batch of one), the run is one inference on
        it instead of evaluation samples (its accuracy is NaN); ``top_k`` > 0 puts
        the best classes with their scores in ``record.result.extra["top_k"]``.
        """
        config = await self.validate(config)
        check_codec(codec)
        check_count(samples, "samples", maximum=MAX_SAMPLES)
        extra: dict[str, Any] = {}
        if inputs is not None or top_k:
            if not self.runs_inputs:
                raise ToolkitError(f"the {self.name} testbed runs evaluation samples only "
                                   "(no caller inputs or top-k)")
            extra = {"inputs": inputs, "top_k": int(top_k)}
        changes = await self.aapply(config)
        await self._prepare(config)
        meters = [m for m in (self.edge_meter, self.cloud_meter) if m is not None]
        for m in meters:
            m.begin_window()
        t0 = time.perf_counter()
        try:
            result = await self._execute(config, samples=samples, codec=codec, warmup=warmup,
                                         offset=offset, **extra)
        finally:
            measured = {id(m): m.end_window() for m in meters}
        execute_s = time.perf_counter() - t0
        labels, label_source = await self.labels(config.model, result.sample_index)
        record = self._record(config, result, changes, measured, labels, label_source)
        record.execute_s = execute_s
        return record

    async def atime_run(self, config: Config | Mapping[str, Any], *, samples: int = 10,
                    codec: str = "fp32", warmup: int = 1, offset: int = 0) -> RunResult:
        """Apply ``config`` and run it for its timings only: no meter, no accuracy.

        For timing studies of models whose reference labels are costly to
        compute (e.g. VGG16 at 224x224 on a laptop); :meth:`arun` for records.
        """
        config = await self.validate(config)
        check_codec(codec)
        check_count(samples, "samples", maximum=MAX_SAMPLES)
        await self.aapply(config)
        await self._prepare(config)
        return await self._execute(config, samples=samples, codec=codec, warmup=warmup,
                                   offset=offset)

    def _record(self, config: Config, r: RunResult, changes: list[KnobChange],
                measured: dict[int, Any], labels: np.ndarray, label_source: str) -> RunRecord:
        t = r.timings
        if self.edge_meter is not None:
            edge_j = measured[id(self.edge_meter)].joules / r.samples
        else:
            busy = (t["edge_ms"] + t["encode_ms"]) / 1e3
            wait = t["latency_ms"] / 1e3 - busy
            edge_j = float(np.mean([
                self.edge_power.energy_j(b, w, freq=config.cpu_freq, accel=config.edge_accel,
                                         bytes_sent=n)
                for b, w, n in zip(busy, wait, r.frame_bytes, strict=True)
            ]))
        if self.cloud_meter is not None:
            cloud_j = measured[id(self.cloud_meter)].joules / r.samples
        else:
            busy = float(np.mean(t["cloud_ms"] + t["decode_ms"])) / 1e3
            cloud_j = self.cloud_power.energy_j(busy, accel=config.cloud_accel) if busy else 0.0
        return RunRecord(
            config=config, codec=r.codec, samples=r.samples,
            latency_ms=r.mean("latency_ms"), edge_ms=r.mean("edge_ms"),
            transfer_ms=r.mean("transfer_ms"), cloud_ms=r.mean("cloud_ms"),
            energy_j=edge_j + cloud_j, edge_energy_j=edge_j, cloud_energy_j=cloud_j,
            accuracy=r.accuracy(labels), tensor_kb=float(np.mean(r.payload_bytes)) / 1024,
            edge_cpu_util=r.edge_cpu_util, energy_source=self.energy_source,
            label_source=label_source, throttled=self.throttled, knob_changes=changes,
            result=r,
        )

    # -- blocking API (start, close and ``with`` come from BlockingLifecycle) ---------
    def split_model(self, model: str):
        """Blocking :meth:`split_model_for`."""
        return self.run_blocking(self.split_model_for(model))

    def apply(self, config: Config | Mapping[str, Any]) -> list[KnobChange]:
        """Blocking :meth:`aapply` (validates first)."""
        async def go():
            return await self.aapply(await self.validate(config))
        return self.run_blocking(go())

    def run(self, config: Config | Mapping[str, Any], **kwargs: Any) -> RunRecord:
        """Blocking :meth:`arun`."""
        return self.run_blocking(self.arun(config, **kwargs))

    def time_run(self, config: Config | Mapping[str, Any], **kwargs: Any) -> RunResult:
        """Blocking :meth:`atime_run`."""
        return self.run_blocking(self.atime_run(config, **kwargs))

