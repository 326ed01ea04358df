"""Live optimisation on the local testbed: measured as it goes, resumed from the journal."""

from __future__ import annotations

from toolkit.cube import configurations, open_cube
from toolkit.optimize import CampaignEvaluator, ConfigSpace, Optimizer


def _optimize(testbed, out, budget):
    space = ConfigSpace.from_profiles("digits-cnn", 10, testbed.edge_profile,
                                      testbed.cloud_profile, edge_accels=("none", "int8"),
                                      cloud_accels=("none",), cpu_freqs=[600, 1200, 1800])
    evaluator = CampaignEvaluator(testbed, out, samples=15)
    result = Optimizer(space, evaluator, objectives=("latency_ms", "energy_j", "accuracy"),
                       seed=4, progress=False).run(budget)
    return result, evaluator


def test_live_optimisation_measures_into_a_cube_and_resumes(tmp_path, local_testbed):
    out = tmp_path / "live.nc"
    tb = local_testbed  # started once for the session; the evaluators leave it running
    first, ev1 = _optimize(tb, out, budget=10)
    measured = {tuple(sorted(c.items())) for c in configurations(open_cube(out))}
    assert len(measured) == 10
    assert {tuple(sorted(e.config.items())) for e in first.evaluated} <= measured
    assert ev1.energy_source == "model:raspberry-pi-4+model:cloud-gpu-server"
    # the same optimisation again: every configuration comes from the journal
    second, ev2 = _optimize(tb, out, budget=10)
    assert sum(c.summary.done_now for c in ev2.campaigns) == 0
    assert [e.config for e in second.evaluated] == [e.config for e in first.evaluated]
