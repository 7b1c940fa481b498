"""Cache invalidation hooks: any write to what the request path snapshots invalidates the snapshots.

STYLE allows signals for exactly this. Writes inside a transaction invalidate when it commits, so
another request cannot re-read the old row in between.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from llm_gateway.lookups import config_changed
from llm_gateway.models import (
    Deployment,
    EndUser,
    GatewaySettings,
    Membership,
    Team,
    UserBudget,
    VirtualKey,
)


def _invalidate(**_: object) -> None:
    transaction.on_commit(config_changed)


def connect() -> None:
    """Connect the invalidation hooks (called once from the app's ready())."""
    for model in (VirtualKey, Team, Membership, Deployment, EndUser, UserBudget, GatewaySettings):
        post_save.connect(_invalidate, sender=model, dispatch_uid=f"config-changed-save-{model.__name__}")
        post_delete.connect(_invalidate, sender=model, dispatch_uid=f"config-changed-delete-{model.__name__}")
