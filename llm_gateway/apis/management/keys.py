"""The /key endpoints: generate, update, delete, info, list, regenerate, block, unblock.

Gateway admins manage every key; team admins the keys of their teams (a management key's new keys
go to its own team by default); any key may read ``/key/info`` about itself.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from llm_gateway.apis.management.permissions import IsKeyHolderOrTeamAdmin, IsTeamAdmin
from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.apis.management.serializers.keys import (
    KeyDeleteRequest,
    KeyDeleteResponse,
    KeyGenerateRequest,
    KeyInfoQuery,
    KeyInfoResponse,
    KeyListQuery,
    KeyListResponse,
    KeyRegenerateRequest,
    KeyRequest,
    KeySecretSerializer,
    KeySerializer,
    KeyUpdateRequest,
    key_models_check,
)
from llm_gateway.apis.management.views import ManagementView, paginate
from llm_gateway.models import Team, VirtualKey
from llm_gateway.selectors import team_get, virtual_key_get, virtual_key_list
from llm_gateway.services.keys import (
    virtual_key_block,
    virtual_key_create,
    virtual_key_delete,
    virtual_key_regenerate,
    virtual_key_update,
)

TAGS = ["key management"]
MISSING_KEY = "Give the key: its secret or its token."


class KeyView(ManagementView):
    """A key endpoint: gateway admins, and team admins within their teams."""

    permission_classes = [IsTeamAdmin]

    def key_target(self, key: str) -> VirtualKey:
        return self.target(virtual_key_get(key=key), "Key")

    def team_target(self, team_id: str | None) -> Team | None:
        """Return the team a key goes to; no team is for gateway admins only."""
        if team_id is None:
            self.check_object_permissions(self.request, None)
            return None
        return self.target(team_get(team_id=team_id), f"Team {team_id}")

    def owner_target(self, user_id: str | None):
        """Return the user who owns a key; team admins may only name members of their teams.

        The owner's own budget pays for the key: a team admin must not make another team's user
        (or the superuser) pay.
        """
        return self.user_target(user_id=user_id) if user_id else None


class KeyGenerateView(KeyView):
    @extend_schema(
        operation_id="key_generate",
        tags=TAGS,
        summary="Create a key",
        description="Return the new key with its secret (`key`), shown this once. `duration` (e.g. 30d) "
        "sets `expires`. A management key's new keys belong to its team unless `team_id` says otherwise.",
        request=KeyGenerateRequest,
        responses={200: KeySecretSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(KeyGenerateRequest).validated_data)
        team = self.team_target(fields.pop("team_id", None) or self.caller.own_team_id)
        user = self.owner_target(fields.pop("user_id", None))
        key_models_check(models=fields.get("models") or [], aliases=fields.get("aliases") or {}, team=team)
        key, secret = virtual_key_create(
            secret=fields.pop("key", None),
            team=team,
            user=user,
            by_team_admin=not self.caller.is_admin,
            **fields,
        )
        return Response(KeySecretSerializer(key, context={"secret": secret}).data)


class KeyUpdateView(KeyView):
    @extend_schema(
        operation_id="key_update",
        tags=TAGS,
        summary="Change a key's settings",
        description="`key` names the key by its secret or its token. Absent fields stay as they are; "
        "null clears a field. Team admins may lower, not raise or clear, a limit a gateway admin set "
        "(`admin_locked`).",
        request=KeyUpdateRequest,
        responses={200: KeySerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(KeyUpdateRequest).validated_data)
        key = self.key_target(fields.pop("key"))
        if "team_id" in fields:
            fields["team"] = self.team_target(fields.pop("team_id"))
        if "user_id" in fields:
            fields["user"] = self.owner_target(fields.pop("user_id"))
        key_models_check(
            models=fields.get("models", key.models),
            aliases=fields.get("aliases", key.aliases),
            team=fields.get("team", key.team),
        )
        updated = virtual_key_update(key=key, by_team_admin=not self.caller.is_admin, **fields)
        return Response(KeySerializer(updated).data)


class KeyDeleteView(KeyView):
    @extend_schema(
        operation_id="key_delete",
        tags=TAGS,
        summary="Delete keys",
        description="Delete the keys named by secret or token in `keys`, or by `key_aliases`: all of "
        "them, or none when one is missing or not the caller's to delete.",
        request=KeyDeleteRequest,
        responses={200: KeyDeleteResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = self.body(KeyDeleteRequest).validated_data
        keys = {key.token: key for key in map(self.key_target, fields.get("keys", []))}
        team_ids = None if self.caller.is_admin else self.caller.team_ids
        for alias in fields.get("key_aliases", []):
            named = list(virtual_key_list(team_ids=team_ids, key_alias=alias))
            if not named:
                self.target(None, f"Key with alias {alias!r}")  # 404 for admins, 403 for team admins
            keys |= {key.token: self.target(key, "Key") for key in named}
        return Response({"deleted_keys": virtual_key_delete(keys=keys.values())})


class KeyInfoView(KeyView):
    permission_classes = [IsKeyHolderOrTeamAdmin]

    @extend_schema(
        operation_id="key_info",
        tags=TAGS,
        summary="Read a key's settings and spend",
        description="Any key may read its own info (no `key` parameter, or itself). Team admins may "
        "read their teams' keys. The secret is never returned: `key` is the token.",
        parameters=[KeyInfoQuery],
        responses={200: KeyInfoResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        named = self.query(KeyInfoQuery).get("key")
        if named is not None:
            key = self.key_target(named)
        elif self.caller.key is not None:
            key = self.target(self.caller.key, "Key")
        else:
            raise ValidationError({"key": MISSING_KEY})
        return Response(KeyInfoResponse(key).data)


class KeyListView(KeyView):
    @extend_schema(
        operation_id="key_list",
        tags=TAGS,
        summary="List keys",
        description="Newest first, by page (`page` from 1, `size` up to 100). Team admins see their "
        "teams' keys. `keys` holds tokens, or key objects with `return_full_object=true`.",
        parameters=[KeyListQuery],
        responses={200: KeyListResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        query = self.query(KeyListQuery)
        if "team_id" in query:
            self.target(team_get(team_id=query["team_id"]), f"Team {query['team_id']}")
        keys = virtual_key_list(
            team_ids=None if self.caller.is_admin else self.caller.team_ids,
            team_id=query.get("team_id"),
            user_id=query.get("user_id"),
            key_alias=query.get("key_alias"),
        )
        page, total, pages = paginate(keys, page=query["page"], size=query["size"])
        if query["return_full_object"]:
            listed = KeySerializer(page, many=True).data
        else:
            listed = [str(key.token) for key in page]
        return Response(
            {"keys": listed, "total_count": total, "current_page": query["page"], "total_pages": pages}
        )


class KeyRegenerateView(KeyView):
    @extend_schema(
        operation_id="key_regenerate",
        tags=TAGS,
        summary="Give a key a new secret",
        description="The old secret stops working at once. Return the key with its new secret, shown "
        "this once; `new_key` sets a custom one.",
        request=KeyRegenerateRequest,
        responses={200: KeySecretSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, key: str | None = None) -> Response:
        fields = self.body(KeyRegenerateRequest).validated_data
        named = key or fields.get("key")
        if not named:
            raise ValidationError({"key": MISSING_KEY})
        target = self.key_target(named)
        secret = virtual_key_regenerate(key=target, secret=fields.get("new_key"))
        return Response(KeySecretSerializer(target, context={"secret": secret}).data)


class KeyRegenerateByPathView(KeyRegenerateView):
    @extend_schema(
        operation_id="key_regenerate_by_path",
        tags=TAGS,
        summary="Give a key a new secret (key in the path)",
        request=KeyRegenerateRequest,
        responses={200: KeySecretSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, key: str | None = None) -> Response:
        return super().post(request, key=key)


class KeyBlockView(KeyView):
    blocked = True

    @extend_schema(
        operation_id="key_block",
        tags=TAGS,
        summary="Block a key",
        description="A blocked key is refused with 401 until it is unblocked. A key a gateway admin "
        "blocked stays blocked for its team admins.",
        request=KeyRequest,
        responses={200: OpenApiResponse(KeySerializer), **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        key = self.key_target(self.body(KeyRequest).validated_data["key"])
        blocked = virtual_key_block(key=key, blocked=self.blocked, by_team_admin=not self.caller.is_admin)
        return Response(KeySerializer(blocked).data)


class KeyUnblockView(KeyBlockView):
    blocked = False

    @extend_schema(
        operation_id="key_unblock",
        tags=TAGS,
        summary="Unblock a key",
        request=KeyRequest,
        responses={200: KeySerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)
