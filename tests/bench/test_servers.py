"""The servers' commands, pinning and start-up logs (no process is started here)."""

from bench import servers


def test_widened_adds_the_load_cores_to_the_server_ones_in_order():
    assert servers.Pinning(server="0", load="1").widened() == servers.Pinning(server="0,1", load="1")
    assert servers.Pinning(server="2,0", load="1,2").widened() == servers.Pinning(server="0,1,2", load="1,2")


def test_widened_leaves_an_unpinned_machine_unpinned():
    unpinned = servers.Pinning(server=None, load=None)

    assert unpinned.widened() == unpinned


def test_serve_runs_the_gateways_production_command_with_the_workers_asked_for():
    command = servers.serve_command(8123, 2)

    assert command[1:3] == ["manage.py", "serve"]
    assert command[command.index("--workers") + 1] == "2"
    assert command[command.index("--port") + 1] == "8123"
    assert command[command.index("--log-level") + 1] == "info"
    assert "--no-access-log" in command


def test_uvicorn_with_workers_logs_each_workers_startup():
    command = servers.uvicorn_command("bench.floor.asgi:application", 8123, workers=2)

    assert command[command.index("--workers") + 1] == "2"
    assert command.count("--log-level") == 1
    assert command[command.index("--log-level") + 1] == "info"
    assert "--no-access-log" in command


def test_uvicorn_without_workers_keeps_the_scenarios_options():
    command = servers.uvicorn_command("bench.floor.asgi:application", 8123)

    assert "--workers" not in command
    assert command[command.index("--log-level") + 1] == "warning"


def test_startups_are_counted_once_per_worker():
    log = "\n".join(
        [
            "INFO:     Uvicorn running on http://127.0.0.1:8123 (Press CTRL+C to quit)",
            "INFO:     Started parent process [10]",
            "INFO:     Started server process [11]",
            "INFO:     Waiting for application startup.",
            "INFO:     Application startup complete.",
            "INFO:     Started server process [12]",
            "INFO:     Waiting for application startup.",
        ]
    )

    assert servers.startups_count(log) == 1
    assert servers.startups_count(log + "\nINFO:     Application startup complete.\n") == 2
    assert servers.startups_count("") == 0
