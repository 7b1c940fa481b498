"""`manage.py start`: set the gateway up, print how to use it, and serve it with uvicorn.

The embedded run command: it migrates, imports GATEWAY_CONFIG when set, seeds the admin user and a
demo (team, mock deployment, key) on first start, and prints commands that work as printed.
Production uses `manage.py serve` instead, which does none of this.
"""

import contextlib
import importlib.util
import json
import shlex

import uvicorn
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from billing.services.workers import celery_worker_running
from llm_gateway.conf import gateway_setting
from llm_gateway.log_buffer import uvicorn_log_config
from llm_gateway.management.commands.import_config import report_print
from llm_gateway.management.commands.serve import server_limit_arguments_add, server_limits_of
from llm_gateway.services.bootstrap import (
    DEMO_MODEL_NAME,
    AdminCredentials,
    DemoKey,
    bootstrap_admin_ensure,
    bootstrap_database_migrate,
    bootstrap_demo_ensure,
    bootstrap_library_demo,
)
from llm_gateway.services.config_import import ConfigImportError, config_import

# What a browser on this machine should use when the server listens on every address.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
DEMO_MESSAGES = [{"role": "user", "content": "Hello"}]


class Command(BaseCommand):
    help = (
        "Migrate, import GATEWAY_CONFIG, create the admin user and the demo key on first start, print "
        "how to use them, and serve the gateway."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument(
            "--port", type=int, default=None, help="Port to listen on (default: PORT, else 8000)."
        )
        parser.add_argument("--no-serve", action="store_true", help="Set up and print, then exit.")
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not start the Celery worker and beat (run your own)."
        )
        server_limit_arguments_add(parser)

    def handle(self, *args, host: str, port: int | None, no_serve: bool, no_worker: bool, **options) -> None:
        if port is None:
            port = gateway_setting("PORT")
        limits = server_limits_of(options)
        base_url = self._base_url(host, port)
        bootstrap_database_migrate()
        self._config_import()
        self._admin_print(bootstrap_admin_ensure(), base_url=base_url)
        self._demo_print(bootstrap_demo_ensure(), base_url=base_url)
        self._library_demo_print()
        if no_serve:
            return
        connections.close_all()  # the server opens its own connections, in its own threads
        self.stdout.write(f"Serving the gateway on {base_url}/ (Ctrl+C to stop)")
        self.stdout.flush()  # before uvicorn blocks: a pipe or log file gets the lines now
        # The embedded broker needs no server: the worker and beat (rollups, budget resets, alerts,
        # retention) run beside the gateway for as long as it does.
        with contextlib.nullcontext() if no_worker else celery_worker_running():
            uvicorn.run(
                "gateway_project.asgi:application",
                host=host,
                port=port,
                workers=1,
                loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
                log_config=uvicorn_log_config(),
                log_level="info",
                **limits,
            )

    def _config_import(self) -> None:
        path = gateway_setting("CONFIG_PATH")
        if not path:
            return
        try:
            report = config_import(path=path)
        except ConfigImportError as error:
            raise CommandError(f"GATEWAY_CONFIG={path} was not imported, nothing changed:\n{error}") from None
        report_print(report, self.stdout, style=self.style)

    def _admin_print(self, credentials: AdminCredentials, *, base_url: str) -> None:
        verb = "Created the admin user." if credentials.created else "Admin login:"
        self.stdout.write(self.style.SUCCESS(verb))
        self.stdout.write(f"  URL:      {base_url}/admin/")
        self.stdout.write(f"  User:     {credentials.username}")
        if credentials.password is not None:
            self.stdout.write(f"  Password: {credentials.password}  (saved in {credentials.password_file})")
        else:
            self.stdout.write(
                f"  Password: unknown ({credentials.password_file} is missing or out of date); "
                f"set one with: python manage.py changepassword {credentials.username}"
            )

    def _demo_print(self, demo: DemoKey, *, base_url: str) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                f'Demo key (team "demo", may call the model "{DEMO_MODEL_NAME}" on the mock provider):'
            )
        )
        self.stdout.write(f"  Key:      {demo.secret}  (saved in {demo.key_file})")
        self.stdout.write("Try it with curl:")
        self.stdout.write(f"  {demo_curl_command(base_url, demo.secret)}")
        self.stdout.write("or with the OpenAI SDK (pip install openai):")
        self.stdout.write(f"  {demo_openai_command(base_url, demo.secret)}")

    def _library_demo_print(self) -> None:
        reply = bootstrap_library_demo()
        self.stdout.write(f'Library demo (mock provider): completion(model="mock/demo") -> {reply!r}')

    @staticmethod
    def _base_url(host: str, port: int) -> str:
        host = _WILDCARD_HOSTS.get(host, host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{port}"


def demo_curl_command(base_url: str, secret: str) -> str:
    """Return a shell command that calls the demo model with curl."""
    body = json.dumps({"model": DEMO_MODEL_NAME, "messages": DEMO_MESSAGES})
    return (
        f"curl {base_url}/v1/chat/completions -H {shlex.quote(f'Authorization: Bearer {secret}')} "
        f'-H "Content-Type: application/json" -d {shlex.quote(body)}'
    )


def demo_openai_command(base_url: str, secret: str) -> str:
    """Return a shell command that calls the demo model with the OpenAI SDK and prints the reply."""
    code = (
        f'from openai import OpenAI; print(OpenAI(base_url="{base_url}/v1", api_key="{secret}")'
        f'.chat.completions.create(model="{DEMO_MODEL_NAME}", messages={json.dumps(DEMO_MESSAGES)})'
        ".choices[0].message.content)"
    )
    return f"python -c {shlex.quote(code)}"
