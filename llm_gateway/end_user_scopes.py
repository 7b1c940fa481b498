"""Whose end users a request names: the scope an OpenAI ``user`` string is looked up in.

End users (LiteLLM's customers) belong to the team of the key that names them; for a key without a
team, to the key's owner; for the master key and keys with neither team nor owner, to the gateway
itself (its admins'). The same ``user`` string in two scopes is two end users, each with its own
budget, spend, block and limits, so one tenant can never spend or block another's customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EndUserScope:
    """A team's, an owner's or the gateway's end users (team and owner both None)."""

    team_id: str | None = None
    owner_id: int | None = None  # set only when there is no team

    @classmethod
    def of_key(cls, *, team_id: Any, owner_id: int | None) -> EndUserScope:
        """Return the scope of a key's requests: its team, else its owner, else the gateway's."""
        if team_id:
            return cls(team_id=str(team_id))
        return cls(owner_id=owner_id) if owner_id is not None else GATEWAY_SCOPE

    @classmethod
    def of_ledger(cls, *, team_id: str, user_id: str) -> EndUserScope:
        """Return the scope of a ledger or rollup row, from its ``team_id`` and ``user_id`` columns."""
        return cls.of_key(team_id=team_id, owner_id=int(user_id) if user_id.isdigit() else None)

    @property
    def filters(self) -> dict[str, Any]:
        """Return the EndUser field lookups that select this scope's rows (None: IS NULL)."""
        return {"team_id": self.team_id, "owner_id": self.owner_id}

    def limiter_id(self, user_id: str) -> str:
        """Return the id of an end user's budget and rate counters: unique across scopes.

        The scope's tag comes first and its own id holds no colon (a UUID, an integer), so no
        ``user`` string of one scope can spell another scope's id.
        """
        if self.team_id is not None:
            return f"team:{self.team_id}:{user_id}"
        if self.owner_id is not None:
            return f"user:{self.owner_id}:{user_id}"
        return f"gateway:{user_id}"


GATEWAY_SCOPE = EndUserScope()
