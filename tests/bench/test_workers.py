"""The workers part as data: which runs, on which cores, against which baseline, and the cores used."""

from bench import workers
from bench.servers import Pinning


def runs() -> dict[str, workers.WorkersRun]:
    return {run.name: run for run in workers.RUNS}


def test_the_gateway_then_the_floor_run_with_one_worker_then_two():
    assert [run.name for run in workers.RUNS] == ["gateway-1w", "gateway-2w", "floor-1w", "floor-2w"]


def test_two_workers_are_compared_with_one_worker_of_the_same_server():
    defined = runs()

    assert defined["gateway-2w"].baseline == "gateway-1w"
    assert defined["floor-2w"].baseline == "floor-1w"
    assert defined["gateway-1w"].baseline == defined["floor-1w"].baseline == ""


def test_the_gateway_runs_under_serve_and_the_floor_under_uvicorn():
    defined = runs()

    assert defined["gateway-2w"].server == "manage.py serve --workers 2"
    assert defined["floor-1w"].server == "uvicorn --workers 1"


def test_one_worker_gets_the_server_core_and_two_get_both_while_the_load_side_stays():
    pinning = Pinning(server="0", load="1")

    assert runs()["gateway-1w"].pinning(pinning) == pinning
    assert runs()["gateway-2w"].pinning(pinning) == Pinning(server="0,1", load="1")
    assert runs()["floor-2w"].pinning(pinning) == Pinning(server="0,1", load="1")


def test_every_run_sends_the_c32_request():
    scenario = workers.workers_scenario()

    assert (scenario.name, scenario.concurrency, scenario.stream) == ("c32", 32, False)
    assert scenario.upstream.is_static  # so nginx can be the upstream


def test_cores_used_is_cpu_time_over_wall_time():
    assert workers.cores_used(15.0, 10.0) == 1.5
    assert workers.cores_used(1.0, 3.0) == 0.33
    assert workers.cores_used(-0.01, 3.0) == 0.0  # clock granularity, never negative
    assert workers.cores_used(1.0, 0.0) is None


def test_cores_are_described_by_their_taskset_list():
    assert workers.cores_described("0") == "core 0"
    assert workers.cores_described("0,1") == "cores 0,1"
    assert workers.cores_described(None) == "any core"
