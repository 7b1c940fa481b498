"""`manage.py serve`: the production server, uvicorn with N worker processes.

Unlike `start` it changes nothing: no migrations, no admin user, no demo. Run `manage.py migrate`
(and `manage.py import_config`, or `serve --config`) in the deploy step, once, not in every replica.
"""

import importlib.util
import os

import uvicorn
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from llm_gateway.conf import gateway_setting
from llm_gateway.http_protocol import server_limits
from llm_gateway.log_buffer import uvicorn_log_config
from llm_gateway.management.commands.import_config import report_print
from llm_gateway.services.config_import import ConfigImportError, config_import


def server_limit_arguments_add(parser: CommandParser) -> None:
    """Add the options for the server's timeouts and connection limit (defaults from the settings)."""
    parser.add_argument(
        "--timeout-keep-alive",
        type=float,
        default=gateway_setting("KEEP_ALIVE_SECONDS"),
        help=(
            "Seconds an idle kept-alive connection stays open (default: GATEWAY_KEEP_ALIVE_SECONDS, else 5)."
        ),
    )
    parser.add_argument(
        "--request-read-timeout",
        type=float,
        default=gateway_setting("REQUEST_READ_TIMEOUT_SECONDS"),
        help=(
            "Seconds a request's head, then its body, may take to arrive before a 408 closes the "
            "connection; 0 waits forever (default: GATEWAY_REQUEST_READ_TIMEOUT_SECONDS, else 30)."
        ),
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=gateway_setting("MAX_CONNECTIONS"),
        help=(
            "Connections (or requests in flight) per worker past which requests get a JSON 503; 0 for "
            "no limit (default: GATEWAY_MAX_CONNECTIONS, else 1000)."
        ),
    )


def server_limits_of(options: dict) -> dict:
    """Return the uvicorn.run() arguments for the options server_limit_arguments_add() added."""
    if options["timeout_keep_alive"] <= 0 or options["request_read_timeout"] < 0:
        raise CommandError("--timeout-keep-alive must be above 0 and --request-read-timeout at least 0.")
    if options["limit_concurrency"] < 0:
        raise CommandError("--limit-concurrency must be at least 0.")
    return server_limits(
        keep_alive=options["timeout_keep_alive"],
        read_timeout=options["request_read_timeout"],
        max_connections=options["limit_concurrency"],
    )


def cpu_count() -> int:
    """Return the CPUs this process may run on (a container's share, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Command(BaseCommand):
    help = (
        "Serve the gateway for production: uvicorn with --workers processes (uvloop and httptools when "
        "installed). Does not migrate or seed; run `manage.py migrate` first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=None, help="Port (default: PORT, else 8000).")
        parser.add_argument(
            "--workers",
            type=int,
            default=cpu_count(),
            help="Worker processes (default: the number of CPUs, here %(default)s).",
        )
        parser.add_argument(
            "--config", default=None, help="Import this LiteLLM config.yaml before serving (import_config)."
        )
        parser.add_argument(
            "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
        )
        parser.add_argument("--no-access-log", action="store_true", help="Do not log every request.")
        parser.add_argument(
            "--graceful-timeout",
            type=float,
            default=30,
            help="Seconds a stopping worker lets open requests and streams finish (default 30).",
        )
        server_limit_arguments_add(parser)

    def handle(
        self,
        *args,
        host: str,
        port: int | None,
        workers: int,
        config: str | None,
        log_level: str,
        no_access_log: bool,
        graceful_timeout: float,
        **options,
    ) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        limits = server_limits_of(options)
        if port is None:
            port = gateway_setting("PORT")
        if config:
            try:
                report = config_import(path=config)
            except ConfigImportError as error:
                raise CommandError(f"{config} was not imported, nothing changed:\n{error}") from None
            report_print(report, self.stdout, style=self.style)
            connections.close_all()  # workers are new processes with their own connections
        self.stdout.write(f"Serving the gateway on http://{host}:{port}/ with {workers} worker(s)")
        self.stdout.flush()  # before uvicorn blocks: a pipe or log file gets the lines now
        uvicorn.run(
            "gateway_project.asgi:application",
            host=host,
            port=port,
            workers=workers,
            loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
            log_config=uvicorn_log_config(),
            log_level=log_level,
            access_log=not no_access_log,
            timeout_graceful_shutdown=graceful_timeout,
            **limits,
        )
