"""Write deployments, keeping provider credentials encrypted or as environment references.

A deployment may reference only the environment variables ``llm_gateway.env_references`` allows:
the admin, the management API and the config import report others with their field or line; the
services refuse them too, whoever calls them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from llm_gateway.crypto import credential_encrypt
from llm_gateway.env_references import env_reference_refusal, env_references_refused
from llm_gateway.models import Deployment
from llm_gateway.services.fields import fields_check
from providers.credentials import ENV_REFERENCE_PREFIX

DEPLOYMENT_FIELDS = frozenset(
    {
        "model_id",
        "model_name",
        "provider",
        "model",
        "mode",
        "api_base",
        "api_version",
        "rpm",
        "tpm",
        "weight",
        "order",
        "timeout",
        "extra_params",
        "model_info",
        "enabled",
        "health_status",
    }
)


# The fields whose os.environ/NAME references are read when the deployment is called (or at import).
REFERENCING_FIELDS = ("api_key", "api_base", "api_version", "extra_params")


def deployment_references_check(**fields: Any) -> None:
    """Raise ValidationError naming each of ``fields`` that references a variable it may not read."""
    errors = {}
    for name in REFERENCING_FIELDS:
        refused = env_references_refused(fields.get(name))
        if refused:
            errors[name] = env_reference_refusal(refused)
    if errors:
        raise ValidationError(errors)


def _credential_set(deployment: Deployment, api_key: str | None) -> None:
    """Store ``api_key`` encrypted, or as a variable name when it is ``os.environ/NAME``."""
    if api_key is None:
        return
    if api_key.startswith(ENV_REFERENCE_PREFIX):
        deployment.credential, deployment.credential_env = "", api_key[len(ENV_REFERENCE_PREFIX) :]
    else:
        deployment.credential, deployment.credential_env = credential_encrypt(api_key), ""


@transaction.atomic
def deployment_create(*, api_key: str | None = None, **fields: Any) -> Deployment:
    """Create a deployment; ``api_key`` is encrypted (or kept as an ``os.environ/NAME`` reference)."""
    fields_check(fields, allowed=DEPLOYMENT_FIELDS, entity="deployment")
    deployment_references_check(api_key=api_key, **fields)
    deployment = Deployment(**fields)
    _credential_set(deployment, api_key)
    deployment.full_clean()
    deployment.save()
    return deployment


@transaction.atomic
def deployment_update(*, deployment: Deployment, api_key: str | None = None, **fields: Any) -> Deployment:
    """Change a deployment; ``api_key=None`` keeps the stored credential, ``""`` clears it."""
    fields_check(fields, allowed=DEPLOYMENT_FIELDS, entity="deployment")
    deployment_references_check(api_key=api_key, **fields)
    for name, value in fields.items():
        setattr(deployment, name, value)
    _credential_set(deployment, api_key)
    deployment.full_clean()
    deployment.save()
    return deployment


def deployment_delete(*, deployment: Deployment) -> None:
    """Delete a deployment: its model group stops routing to it."""
    deployment.delete()
