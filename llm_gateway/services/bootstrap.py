"""Set up a gateway for its first start: database schema, admin user, library demo."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command

from llm_gateway.conf import gateway_setting
from providers.api import completion

ADMIN_USERNAME = "admin"
DEMO_MODEL = "mock/demo"
DEMO_REPLY = "Hello from the LLM Gateway mock provider!"


@dataclass(frozen=True)
class AdminCredentials:
    username: str
    # None when the password is not known: the user was made by hand, or the password was changed.
    password: str | None
    password_file: Path
    created: bool


def bootstrap_database_migrate() -> None:
    """Apply every pending migration, quietly."""
    call_command("migrate", interactive=False, verbosity=0)


def bootstrap_admin_ensure(
    *, username: str = ADMIN_USERNAME, password_file: Path | None = None
) -> AdminCredentials:
    """Create the superuser on first start and return the credentials to show the operator.

    The password is random, saved to `password_file` (var/admin_password, mode 0600) and read back
    on every later start. A saved password that no longer matches the user is not returned.
    """
    password_file = password_file or Path(gateway_setting("VAR_DIR")) / "admin_password"
    saved_password = _password_read(password_file)
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        # Reuse a saved password (the database was reset) so what the operator noted stays valid.
        password = saved_password or secrets.token_urlsafe(18)
        user_model.objects.create_superuser(username=username, email="", password=password)
        _password_write(password_file, password)
        return AdminCredentials(username, password, password_file, created=True)
    if saved_password is not None and user.check_password(saved_password):
        return AdminCredentials(username, saved_password, password_file, created=False)
    return AdminCredentials(username, None, password_file, created=False)


def bootstrap_library_demo() -> str:
    """Return the reply of one library completion on the built-in mock provider."""
    response = completion(
        model=DEMO_MODEL,
        messages=[{"role": "user", "content": "Hello"}],
        mock_response=DEMO_REPLY,
    )
    return response.choices[0].message.content


def _password_read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _password_write(path: Path, password: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as password_file:
        password_file.write(password + "\n")
    # os.open's mode only applies when it creates the file.
    path.chmod(0o600)
