"""`manage.py start`: set the gateway up, print how to use it, and serve it with uvicorn."""

import importlib.util

import uvicorn
from django.core.management.base import BaseCommand, CommandParser

from llm_gateway.conf import gateway_setting
from llm_gateway.services.bootstrap import (
    AdminCredentials,
    bootstrap_admin_ensure,
    bootstrap_database_migrate,
    bootstrap_library_demo,
)

# What a browser on this machine should use when the server listens on every address.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


class Command(BaseCommand):
    help = "Migrate, create the admin user on first start, print the login, and serve the gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument(
            "--port", type=int, default=None, help="Port to listen on (default: PORT, else 8000)."
        )
        parser.add_argument("--no-serve", action="store_true", help="Set up and print, then exit.")

    def handle(self, *args, host: str, port: int | None, no_serve: bool, **options) -> None:
        if port is None:
            port = gateway_setting("PORT")
        bootstrap_database_migrate()
        self._admin_print(bootstrap_admin_ensure(), base_url=self._base_url(host, port))
        self._library_demo_print()
        if no_serve:
            return
        self.stdout.write(f"Serving the gateway on {self._base_url(host, port)}/ (Ctrl+C to stop)")
        uvicorn.run(
            "gateway_project.asgi:application",
            host=host,
            port=port,
            workers=1,
            loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
            http="httptools" if importlib.util.find_spec("httptools") else "auto",
            log_level="info",
        )

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

    def _library_demo_print(self) -> None:
        reply = bootstrap_library_demo()
        self.stdout.write(f'Library demo (mock provider): completion(model="mock/demo") -> {reply!r}')

    @staticmethod
    def _base_url(host: str, port: int) -> str:
        host = _WILDCARD_HOSTS.get(host, host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{port}"
