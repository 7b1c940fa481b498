"""The /team endpoints: new, update, delete, info, list, member_add/update/delete, block, unblock.

Gateway admins manage every team. Team admins read their teams (info, list), manage their members,
and on /team/update may change only the alias and metadata: budgets, limits, models and blocking are
for gateway admins, or a team admin could lift their own team's limits. A team admin may add to a
team only users who already share one of their teams: a key owned by a member spends the member's
own budget, so enlisting anyone else would spend another tenant's money. There is no invitation
flow: a gateway admin adds anyone else.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from llm_gateway.apis.management.permissions import IsGatewayAdmin, IsTeamAdmin, IsTeamAdminForFields
from llm_gateway.apis.management.serializers.base import ERROR_RESPONSES
from llm_gateway.apis.management.serializers.teams import (
    MembershipSerializer,
    TeamDeleteRequest,
    TeamDeleteResponse,
    TeamInfoQuery,
    TeamInfoResponse,
    TeamListQuery,
    TeamMemberAddRequest,
    TeamMemberAddResponse,
    TeamMemberRequest,
    TeamMemberUpdateRequest,
    TeamNewRequest,
    TeamRequest,
    TeamSerializer,
    TeamUpdateRequest,
    team_aliases_check,
)
from llm_gateway.apis.management.views import ManagementView
from llm_gateway.models import Membership, Team
from llm_gateway.selectors import membership_get, team_get, team_list
from llm_gateway.services.teams import (
    membership_delete,
    membership_update,
    memberships_add,
    team_block,
    team_create,
    team_delete,
    team_update,
)

TAGS = ["team management"]


class TeamView(ManagementView):
    def team_target(self, team_id: str) -> Team:
        return self.target(team_get(team_id=team_id), f"Team {team_id}")

    def member_target(self, member: dict):
        """Return the user a member entry names by ``user_id`` or ``user_email``.

        A team admin may name only users who already share one of their teams (ManagementView.user_target).
        """
        return self.user_target(user_id=member.get("user_id"), user_email=member.get("user_email"))

    def membership_found(self, team: Team, member: dict) -> Membership:
        user = self.member_target(member)
        return self.found(
            membership_get(team=team, user=user), f"Member {user.get_username()!r} of this team"
        )


class TeamNewView(TeamView):
    @extend_schema(
        operation_id="team_new",
        tags=TAGS,
        summary="Create a team",
        description="`members_with_roles` adds existing users (by `user_id` or `user_email`) with role "
        "admin, user or viewer.",
        request=TeamNewRequest,
        responses={200: TeamSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(TeamNewRequest).validated_data)
        members = [
            (self.member_target(member), member["role"]) for member in fields.pop("members_with_roles", [])
        ]
        team = team_create(team_id=fields.pop("team_id", None), members=members, **fields)
        return Response(TeamSerializer(team).data)


class TeamUpdateView(TeamView):
    permission_classes = [IsTeamAdminForFields]
    team_admin_fields = frozenset({"team_id", "team_alias", "metadata"})

    @extend_schema(
        operation_id="team_update",
        tags=TAGS,
        summary="Change a team's settings",
        description="Absent fields stay as they are. Team admins may change `team_alias` and `metadata` "
        "only. Members change through /team/member_*.",
        request=TeamUpdateRequest,
        responses={200: TeamSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = dict(self.body(TeamUpdateRequest).validated_data)
        team = self.team_target(fields.pop("team_id"))
        if "models" in fields or "model_aliases" in fields:
            team_aliases_check(
                models=fields.get("models", team.models),
                model_aliases=fields.get("model_aliases", team.model_aliases),
            )
        return Response(TeamSerializer(team_update(team=team, **fields)).data)


class TeamDeleteView(TeamView):
    @extend_schema(
        operation_id="team_delete",
        tags=TAGS,
        summary="Delete teams with their keys",
        request=TeamDeleteRequest,
        responses={200: TeamDeleteResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        teams = [
            self.team_target(team_id) for team_id in self.body(TeamDeleteRequest).validated_data["team_ids"]
        ]
        return Response({"deleted_teams": team_delete(teams=teams)})


class TeamInfoView(TeamView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="team_info",
        tags=TAGS,
        summary="Read a team with its keys and members",
        parameters=[TeamInfoQuery],
        responses={200: TeamInfoResponse, **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        return Response(TeamInfoResponse(self.team_target(self.query(TeamInfoQuery)["team_id"])).data)


class TeamListView(TeamView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="team_list",
        tags=TAGS,
        summary="List teams",
        description="Gateway admins see every team, team admins the teams they administer.",
        parameters=[TeamListQuery],
        responses={200: TeamSerializer(many=True), **ERROR_RESPONSES},
    )
    def get(self, request: Request) -> Response:
        teams = team_list(
            team_ids=None if self.caller.is_admin else self.caller.team_ids,
            user_id=self.query(TeamListQuery).get("user_id"),
        )
        return Response(TeamSerializer(teams, many=True).data)


class TeamMemberAddView(TeamView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="team_member_add",
        tags=TAGS,
        summary="Add members to a team",
        description="`member` is one member or a list; the users must exist (see /user/new). A team "
        "admin may add only users who are already members of a team they administer; anyone else "
        "(existing or not) is a 403.",
        request=TeamMemberAddRequest,
        responses={200: TeamMemberAddResponse, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = self.body(TeamMemberAddRequest).validated_data
        team = self.team_target(fields["team_id"])
        members = [(self.member_target(member), member["role"]) for member in fields["member"]]
        memberships = memberships_add(team=team, members=members)
        return Response(TeamMemberAddResponse(team, context={"memberships": memberships}).data)


class TeamMemberUpdateView(TeamView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="team_member_update",
        tags=TAGS,
        summary="Change a member's role",
        request=TeamMemberUpdateRequest,
        responses={200: MembershipSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = self.body(TeamMemberUpdateRequest).validated_data
        membership = self.membership_found(self.team_target(fields["team_id"]), fields)
        return Response(
            MembershipSerializer(membership_update(membership=membership, role=fields["role"])).data
        )


class TeamMemberDeleteView(TeamView):
    permission_classes = [IsTeamAdmin]

    @extend_schema(
        operation_id="team_member_delete",
        tags=TAGS,
        summary="Remove a member from a team",
        description="The member's keys in the team stay with the team.",
        request=TeamMemberRequest,
        responses={200: TeamSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        fields = self.body(TeamMemberRequest).validated_data
        team = self.team_target(fields["team_id"])
        membership_delete(membership=self.membership_found(team, fields))
        return Response(TeamSerializer(team).data)


class TeamBlockView(TeamView):
    permission_classes = [IsGatewayAdmin]
    blocked = True

    @extend_schema(
        operation_id="team_block",
        tags=TAGS,
        summary="Block a team",
        description="Every key of a blocked team is refused with 401 until the team is unblocked.",
        request=TeamRequest,
        responses={200: TeamSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        team = self.team_target(self.body(TeamRequest).validated_data["team_id"])
        return Response(TeamSerializer(team_block(team=team, blocked=self.blocked)).data)


class TeamUnblockView(TeamBlockView):
    blocked = False

    @extend_schema(
        operation_id="team_unblock",
        tags=TAGS,
        summary="Unblock a team",
        request=TeamRequest,
        responses={200: TeamSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request) -> Response:
        return super().post(request)
