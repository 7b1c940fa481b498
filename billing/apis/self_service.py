"""``GET /key/usage``: a key's own usage, limits and remaining budget, with the key as the credential.

Our own endpoint (LiteLLM has none like it): it answers any valid virtual key about itself and
nothing else: no team, owner, metadata or other key. The master key and admin sessions have no key
to describe, and are refused (403).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.apis.serializers import KeyUsageResponse
from llm_gateway.apis.management.authentication import GatewayKeyAuthentication
from llm_gateway.apis.management.permissions import caller_of
from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.models import VirtualKey


class IsVirtualKey(BasePermission):
    """Allow a valid virtual key (any type); the master key is not one."""

    message = "This endpoint describes the key that calls it: call it with a virtual key ('sk-...')."

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = caller_of(request)
        return caller is not None and caller.key is not None


class KeyUsageView(APIView):
    authentication_classes = [GatewayKeyAuthentication]
    permission_classes = [IsVirtualKey]

    @extend_schema(
        operation_id="key_usage",
        tags=["spend"],
        summary="Read the calling key's usage, limits and remaining budget",
        description="Authenticate with the key itself (`Authorization: Bearer sk-...`). `usage.today` "
        "counts since midnight UTC, `usage.period` since the start of the key's current budget period "
        "(since the key was made when it has no budget period); both add up the daily rollups, which "
        "the rollup task refreshes every few minutes. `budget.spend` is the budget's own counter, "
        "`budget.held` what requests in flight have reserved, and `budget.remaining` what is left.",
        responses={200: KeyUsageResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return Response(KeyUsageResponse(key_usage(key=caller_of(request).key, now=datetime.now(UTC))).data)


def key_usage(*, key: VirtualKey, now: datetime) -> dict:
    """Return what /key/usage says about ``key`` at ``now``."""
    budget = selectors.budget_burn(owner=key, now=now)
    midnight = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    since = budget.period_start or key.created_at  # no budget period: since the key was made
    token = str(key.token)
    return {
        "key": {"token": key.token, "key_alias": key.key_alias or None, "key_name": key.key_prefix},
        "usage": {
            "today": {
                "start": midnight,
                "end": None,
                "figures": selectors.key_usage_since(key_token=token, since=midnight, now=now),
            },
            "period": {
                "start": since,
                "end": budget.period_end,
                "figures": selectors.key_usage_since(key_token=token, since=since, now=now),
            },
        },
        "limits": {
            "rpm_limit": key.rpm_limit,
            "tpm_limit": key.tpm_limit,
            "max_parallel_requests": key.max_parallel_requests,
            "max_budget": key.max_budget,
            "budget_duration": key.budget_duration or None,
            "budget_reset_at": budget.period_end,
        },
        "budget": {"spend": budget.spent, "held": budget.held, "remaining": budget.remaining},
    }
