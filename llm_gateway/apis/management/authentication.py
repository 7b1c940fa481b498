"""Who calls the management API: the master key, a virtual key, or a user logged in to the admin.

Every authentication class answers with a ``ManagementCaller`` as ``request.user``, so permission
classes read one shape whatever the credential. Keys come in the inference API's headers
(``Authorization: Bearer``, ``api-key``, ``x-api-key``) and are looked up in the database: this API is
not the hot path, and a revoked key must stop working here at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from llm_gateway.authentication import presented_key
from llm_gateway.conf import gateway_setting
from llm_gateway.crypto import secrets_equal
from llm_gateway.login_throttle import (
    THROTTLED_MESSAGE,
    client_address,
    login_failure_record,
    login_throttled,
)
from llm_gateway.models import VirtualKey
from llm_gateway.selectors import team_ids_administered, virtual_key_get_by_secret


@dataclass(frozen=True, eq=False)
class ManagementCaller:
    """The authenticated caller of a management request.

    ``is_admin`` holds for the master key and for superusers logged in to the admin: they may do
    everything. Otherwise ``team_ids`` are the teams the caller administers: the team of a
    ``management`` key, or the teams where a logged-in user has the admin role.
    """

    is_admin: bool = False
    key: VirtualKey | None = None
    user: AbstractBaseUser | None = None
    _team_ids: frozenset | None = field(default=None, repr=False)

    # DRF and Django read these on request.user.
    is_authenticated = True
    is_anonymous = False

    @classmethod
    def master(cls) -> ManagementCaller:
        return cls(is_admin=True)

    @classmethod
    def for_key(cls, key: VirtualKey) -> ManagementCaller:
        manages_team = key.key_type == VirtualKey.KeyType.MANAGEMENT and key.team_id is not None
        return cls(key=key, _team_ids=frozenset({key.team_id}) if manages_team else frozenset())

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> ManagementCaller:
        return cls(is_admin=bool(user.is_superuser), user=user)

    @functools.cached_property
    def team_ids(self) -> frozenset:
        """Return the ids of the teams this caller administers (empty for plain keys)."""
        if self._team_ids is not None:
            return self._team_ids
        if self.user is not None:
            return frozenset(team_ids_administered(user=self.user))
        return frozenset()

    @property
    def own_team_id(self):
        """Return the team of a management key (where its new keys go by default), else None."""
        return self.key.team_id if self.key is not None and self.team_ids else None

    def __str__(self) -> str:
        if self.key is not None:
            return f"key {self.key.key_prefix}"
        if self.user is not None:
            return f"user {self.user.get_username()}"
        return "master key"


class GatewayKeyAuthentication(BaseAuthentication):
    """Authenticate the master key or a virtual key; refuse unknown, blocked and expired keys (401).

    Unknown keys count as failed logins of the client's address: past the limit, its attempts are
    refused with 429 before any key is looked at (llm_gateway.login_throttle).
    """

    def authenticate(self, request: Request) -> tuple[ManagementCaller, VirtualKey | None] | None:
        secret = presented_key(request._request)
        if not secret:
            return None
        address = client_address(request._request)
        if login_throttled(address=address):
            raise Throttled(wait=gateway_setting("LOGIN_FAILURE_WINDOW_SECONDS"), detail=THROTTLED_MESSAGE)
        master = gateway_setting("MASTER_KEY")
        if master and secrets_equal(secret, master):
            return ManagementCaller.master(), None
        key = virtual_key_get_by_secret(secret=secret)
        if key is None:
            login_failure_record(address=address)
            raise AuthenticationFailed("Invalid API key.")
        if key.blocked:
            raise AuthenticationFailed("This API key is blocked.")
        if key.team is not None and key.team.blocked:
            raise AuthenticationFailed(f"The team of this API key ('{key.team.team_alias}') is blocked.")
        owner_budget = getattr(key.user, "budget", None) if key.user is not None else None
        if owner_budget is not None and owner_budget.blocked:
            raise AuthenticationFailed(f"The owner of this API key ('{key.user.get_username()}') is blocked.")
        if key.is_expired:
            raise AuthenticationFailed(f"This API key expired at {key.expires.isoformat()}.")
        return ManagementCaller.for_key(key), key

    def authenticate_header(self, request: Request) -> str:
        # Its presence makes DRF answer 401 (not 403) when no credential was given.
        return 'Bearer realm="api"'


class AdminSessionAuthentication(SessionAuthentication):
    """Authenticate a user logged in to the admin (DRF's session check, CSRF enforced)."""

    def authenticate(self, request: Request) -> tuple[ManagementCaller, None] | None:
        authenticated = super().authenticate(request)
        if authenticated is None:
            return None
        user, _ = authenticated
        return ManagementCaller.for_user(user), None


class GatewayKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describe the key authentication in the OpenAPI schema."""

    target_class = GatewayKeyAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The master key, or a virtual key ('sk-...'); also accepted as 'api-key' "
            "or 'x-api-key' header.",
        }


class AdminSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describe the admin session in the OpenAPI schema."""

    target_class = AdminSessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
