"""Set up a gateway for its first start: database schema, admin user, demo team, deployment and key."""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from llm_gateway.conf import gateway_setting
from llm_gateway.crypto import virtual_key_hash, virtual_key_secret_generate
from llm_gateway.models import Deployment, Team, VirtualKey
from llm_gateway.services.deployments import deployment_create
from llm_gateway.services.keys import virtual_key_create, virtual_key_regenerate
from providers.api import completion

ADMIN_USERNAME = "admin"
DEMO_MODEL = "mock/demo"
DEMO_REPLY = "Hello from the LLM Gateway mock provider!"
# The demo the run command seeds: a team, a mock deployment clients call as "demo", a key for it.
DEMO_TEAM = "demo"
DEMO_MODEL_NAME = "demo"
DEMO_DEPLOYMENT_ID = "demo"
DEMO_KEY_ALIAS = "demo"


@dataclass(frozen=True)
class DemoKey:
    secret: str
    key_file: Path
    created: bool


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
    saved_password = _secret_read(password_file)
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        # Reuse a saved password (the database was reset) so what the operator noted stays valid.
        password = saved_password or secrets.token_urlsafe(18)
        user_model.objects.create_superuser(username=username, email="", password=password)
        _secret_write(password_file, password)
        return AdminCredentials(username, password, password_file, created=True)
    if saved_password is not None and user.check_password(saved_password):
        return AdminCredentials(username, saved_password, password_file, created=False)
    return AdminCredentials(username, None, password_file, created=False)


@transaction.atomic
def bootstrap_demo_ensure(*, key_file: Path | None = None) -> DemoKey:
    """Create the demo team, deployment and key where missing, and return the key's secret.

    The deployment (model "demo" on the mock provider) answers DEMO_REPLY offline. The key may use
    only "demo"; its secret is generated once, saved to `key_file` (var/demo_key, mode 0600) and
    reused on every start, so the examples the run command prints keep working. Rows an operator
    changed are left as they are; deleted ones come back.
    """
    key_file = key_file or Path(gateway_setting("VAR_DIR")) / "demo_key"
    team, _ = Team.objects.get_or_create(team_alias=DEMO_TEAM, defaults={"models": [DEMO_MODEL_NAME]})
    if not Deployment.objects.filter(model_id=DEMO_DEPLOYMENT_ID).exists():
        deployment_create(
            model_id=DEMO_DEPLOYMENT_ID,
            model_name=DEMO_MODEL_NAME,
            provider="mock",
            model="demo",
            extra_params={"mock_response": DEMO_REPLY},
        )
    secret = _secret_read(key_file)
    if secret is not None and VirtualKey.objects.filter(key_hash=virtual_key_hash(secret)).exists():
        return DemoKey(secret, key_file, created=False)
    key = VirtualKey.objects.filter(team=team, key_alias=DEMO_KEY_ALIAS).first()
    if key is not None:
        # The saved secret is lost or stale: give the existing demo key a new one rather than a twin.
        secret = virtual_key_regenerate(key=key, secret=secret)
    else:
        secret = secret or virtual_key_secret_generate()
        virtual_key_create(secret=secret, key_alias=DEMO_KEY_ALIAS, team=team, models=[DEMO_MODEL_NAME])
    _secret_write(key_file, secret)
    return DemoKey(secret, key_file, created=True)


def bootstrap_library_demo() -> str:
    """Return the reply of one library completion on the built-in mock provider."""
    response = completion(
        model=DEMO_MODEL,
        messages=[{"role": "user", "content": "Hello"}],
        mock_response=DEMO_REPLY,
    )
    return response.choices[0].message.content


def _secret_read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _secret_write(path: Path, secret: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as secret_file:
        secret_file.write(secret + "\n")
    # os.open's mode only applies when it creates the file.
    path.chmod(0o600)
