"""Adaptive repeats: the stopping rule on known data, and a real campaign that stops by it."""

from __future__ import annotations

import json
import math

import pytest

from toolkit.campaign import Campaign, CampaignSpec, grid
from toolkit.errors import ConfigError
from toolkit.repeats import AdaptiveRepeats, ci_half_width, stopping_rule_attr, t_975


def test_t_quantile_matches_the_tables():
    assert t_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_975(9) == pytest.approx(2.2622, abs=1e-4)
    assert t_975(30) == pytest.approx(2.0423, abs=1e-4)
    assert t_975(31) == pytest.approx(2.0395, abs=1e-4)  # expansion from here on
    assert t_975(100) == pytest.approx(1.9840, abs=1e-4)
    assert t_975(10_000) == pytest.approx(1.9602, abs=1e-4)
    with pytest.raises(ValueError):
        t_975(0)


def test_half_width_on_known_data():
    # mean 3, sample sd sqrt(2.5), t(0.975, 4) = 2.7764
    assert ci_half_width([1, 2, 3, 4, 5]) == pytest.approx(2.7764 * math.sqrt(2.5) / math.sqrt(5))
    assert ci_half_width([7.0, 7.0, 7.0]) == 0.0
    assert ci_half_width([7.0]) == math.inf


def _runs(latencies, energies):
    return [{"latency_ms": lat, "energy_j": e} for lat, e in zip(latencies, energies, strict=True)]


def test_the_rule_needs_both_means_within_the_relative_half_width():
    rule = AdaptiveRepeats(rel_ci=0.05, max_runs=10)
    steady = [2.0, 2.0, 2.0, 2.0]
    # two runs 100 and 101: half-width 12.7062 * 0.7071 / 1.4142 = 6.35 (6.3 % of 100.5)
    assert not rule.met(_runs([100, 101], steady[:2]))
    assert AdaptiveRepeats(rel_ci=0.07).met(_runs([100, 101], steady[:2]))
    # four runs 100, 101, 100, 101: half-width 3.1824 * 0.5774 / 2 = 0.92 (0.9 %)
    assert rule.met(_runs([100, 101, 100, 101], steady))
    # latency precise, energy not: not met
    assert not rule.met(_runs([100, 101, 100, 101], [1.0, 2.0, 1.0, 2.0]))
    # never on one run, however steady
    assert not rule.met(_runs([100], [2.0]))
    assert not rule.done(_runs([100], [2.0]))
    # max_runs stops even when the rule is not met
    noisy = _runs([10, 90, 10, 90], [1.0, 9.0, 1.0, 9.0])
    assert not AdaptiveRepeats(max_runs=4).met(noisy) and AdaptiveRepeats(max_runs=4).done(noisy)
    assert not AdaptiveRepeats(max_runs=5).done(noisy)


@pytest.mark.parametrize("kwargs", [{"rel_ci": 0}, {"rel_ci": 1.5}, {"max_runs": 1},
                                    {"min_runs": 1}])
def test_invalid_rules_are_refused(kwargs):
    with pytest.raises(ConfigError):
        AdaptiveRepeats(**kwargs)


@pytest.mark.parametrize("variables", [("latncy_ms",), "latency_ms", ("energy_j", None), 3])
def test_variables_that_are_no_run_values_are_refused_with_the_valid_ones(variables):
    # before, the first check after a run raised a KeyError in the middle of a campaign
    with pytest.raises(ConfigError, match=r"^the adaptive repeats' variables must be run values "
                                          r"among latency_ms, edge_ms, .*, got "):
        AdaptiveRepeats(variables=variables)
    assert AdaptiveRepeats(variables=("accuracy", "max_device_energy_j")).variables


def _first_met(rule: AdaptiveRepeats, rows: list[dict]) -> int | None:
    """How many runs the rule needs on these rows (None: never within them)."""
    return next((n for n in range(1, len(rows) + 1) if rule.met(rows[:n])), None)


def _check_stopped_by_the_rule(journal, rule: AdaptiveRepeats, configs) -> dict:
    rows: dict[str, list[dict]] = {}
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") == "run":
            rows.setdefault(str(json.loads(entry["key"])[:-1]), []).append(entry["row"])
    assert len(rows) == len(configs)
    for cell in rows.values():
        first = _first_met(rule, cell)
        # stopped at the first run count where the rule held, or at max_runs
        assert len(cell) == (min(first, rule.max_runs) if first else rule.max_runs)
        assert len(cell) >= 2
    return rows


def test_a_campaign_repeats_each_configuration_until_the_rule_holds(tmp_path, local_testbed):
    configs, _ = grid(["digits-cnn"], [3, 9], [600, 1800], ["none"], ["none"],
                      n_splits={"digits-cnn": 10})
    out = tmp_path / "auto.nc"
    loose = AdaptiveRepeats(rel_ci=0.5, max_runs=5)
    tb = local_testbed  # started once for the session; the campaigns leave it running
    campaign = Campaign(tb, CampaignSpec(configs, samples=20, repeats=loose), out,
                        progress=False)
    cube = campaign.run()
    rows = _check_stopped_by_the_rule(out.with_suffix(".nc.journal"), loose, configs)
    n_loose = sum(len(r) for r in rows.values())
    assert campaign.summary.done_now == n_loose == campaign.summary.planned
    assert json.loads(cube.attrs["stopping_rule"]) == stopping_rule_attr(
        loose, 1, campaign.summary.unmet)
    assert int(cube.latency_ms.notnull().sum()) == n_loose

    # the same command again measures nothing; a tighter rule measures more of the
    # same configurations, continuing their repeats
    again = Campaign(tb, CampaignSpec(configs, samples=20, repeats=loose), out,
                     progress=False)
    again.run()
    assert again.summary.done_now == 0 and again.summary.done_before == n_loose
    tight = AdaptiveRepeats(rel_ci=0.001, max_runs=6)
    grown = Campaign(tb, CampaignSpec(configs, samples=20, repeats=tight), out,
                     progress=False)
    cube = grown.run()
    rows = _check_stopped_by_the_rule(out.with_suffix(".nc.journal"), tight, configs)
    unmet = sum(1 for r in rows.values() if len(r) == tight.max_runs and not tight.met(r))
    assert grown.summary.unmet == unmet
    assert json.loads(cube.attrs["stopping_rule"])["configurations_unmet"] == unmet
    assert grown.summary.done_before == n_loose
    assert int(cube.latency_ms.notnull().sum()) == sum(len(r) for r in rows.values())


def test_edge_only_is_measured_with_one_codec_where_the_splits_are_known():
    configs, _ = grid(["digits-cnn"], [0, 4, 9], [600], ["none"], ["none"],
                      n_splits={"digits-cnn": 10})
    plain = CampaignSpec(configs, codecs=["fp32", "q1"], runs=2)
    spec = CampaignSpec(configs, codecs=["fp32", "q1"], runs=2, n_splits={"digits-cnn": 10})
    assert len(plain.plan()) == 3 * 2 * 2
    assert sorted((c.split, codec) for c, codec, r in spec.plan() if r == 0) == [
        (0, "fp32"), (0, "q1"), (4, "fp32"), (4, "q1"), (9, "fp32")]
    assert [(c.split, codec) for c, codec in spec.cells()].count((9, "q1")) == 0
