"""Parallel evaluation through dask.distributed on a real LocalCluster."""

from __future__ import annotations

import os

import pytest

from toolkit.optimize import (
    ConfigSpace,
    CubeEvaluator,
    DaskEvaluator,
    FunctionEvaluator,
    Optimizer,
)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_dask_evaluation_equals_serial(client, toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    serial = CubeEvaluator(toy_cube)
    parallel = DaskEvaluator(serial, client)
    configs = [*space.configs()[::3], {**space.configs()[0], "cpu_freq": 1234}]
    assert parallel.evaluate(configs) == serial.evaluate(configs)
    assert parallel.evaluate(configs)[-1] is None
    assert parallel.evaluate([]) == []
    assert parallel.objectives == serial.objectives
    assert parallel.energy_source == "model:synthetic"


def test_dask_runs_in_worker_processes(client, toy_cube):
    def worker_pid(config):  # nested: cloudpickle sends it by value
        import os

        return {"latency_ms": float(config["split"]), "energy_j": float(os.getpid())}

    configs = ConfigSpace.from_cube(toy_cube).configs()[:40]
    results = DaskEvaluator(FunctionEvaluator(worker_pid), client).evaluate(configs)
    pids = {int(r["energy_j"]) for r in results}
    assert os.getpid() not in pids
    assert pids <= set(client.run(os.getpid).values())
    assert [r["latency_ms"] for r in results] == [c["split"] for c in configs]


def test_optimizer_with_dask_equals_serial(client, toy_cube):
    space = ConfigSpace.from_cube(toy_cube)
    serial = Optimizer(space, CubeEvaluator(toy_cube), seed=5, progress=False).run(40)
    parallel = Optimizer(space, DaskEvaluator(CubeEvaluator(toy_cube), client), seed=5,
                         progress=False).run(40)
    a, b = serial.as_dict(), parallel.as_dict()
    a.pop("created_at"), b.pop("created_at")
    assert a == b
