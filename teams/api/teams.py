"""/api/orgs/{org}/teams/: teams and their members.

Owners manage every team; a team's maintainers manage its description and
members (only among the organisation's members), never may_create_repositories.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.request import Request
from rest_framework.response import Response

from teams import actions
from teams.api.common import (
    Conflict,
    managed_organisation,
    managed_team,
    paginated,
    person,
    user_named,
    visible_organisation,
    visible_team,
)
from teams.api.serializers import (
    TeamMemberAddSerializer,
    TeamMemberSerializer,
    TeamRoleSerializer,
    TeamSerializer,
    TeamUpdateSerializer,
)
from teams.models import Team, TeamMember
from teams.permissions import may_manage_organisation


class TeamList(ListModelMixin, GenericAPIView):
    serializer_class = TeamSerializer
    queryset = Team.objects.none()

    @extend_schema(summary="Teams of an organisation (members only)")
    def get(self, request: Request, org: str) -> Response:
        organisation = visible_organisation(person(request), org)
        teams = organisation.teams.order_by("name")
        return paginated(self, teams, lambda page: TeamSerializer(page, many=True).data)

    @extend_schema(summary="Create a team (owners)")
    def post(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        data = TeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        if organisation.teams.filter(name=name).exists():
            raise Conflict(f"{organisation.name} already has a team named {name!r}")
        team = actions.team_create(
            organisation=organisation,
            name=name,
            description=data.validated_data.get("description", ""),
            may_create=data.validated_data.get("may_create_repositories", False),
        )
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)


class TeamDetail(GenericAPIView):
    serializer_class = TeamSerializer
    queryset = Team.objects.none()

    @extend_schema(summary="A team (organisation members)")
    def get(self, request: Request, org: str, team: str) -> Response:
        actor = person(request)
        found = visible_team(actor, visible_organisation(actor, org), team)
        return Response(TeamSerializer(found).data)

    @extend_schema(
        summary="Change a team (owners and the team's maintainers; "
        "may_create_repositories by owners only)",
        request=TeamUpdateSerializer,
    )
    def patch(self, request: Request, org: str, team: str) -> Response:
        actor = person(request)
        found = managed_team(actor, visible_organisation(actor, org), team)
        data = TeamUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        may_create = data.validated_data.get("may_create_repositories")
        if (
            may_create is not None
            and may_create != found.may_create_repositories
            and not may_manage_organisation(actor, found.organisation)
        ):
            raise PermissionDenied(
                f"only owners of {found.organisation.name} may change may_create_repositories"
            )
        actions.team_update(
            team=found, description=data.validated_data.get("description"), may_create=may_create
        )
        return Response(TeamSerializer(found).data)

    @extend_schema(summary="Delete a team (owners)", responses={204: None})
    def delete(self, request: Request, org: str, team: str) -> Response:
        organisation = managed_organisation(person(request), org)
        actions.team_delete(team=visible_team(person(request), organisation, team))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TeamMemberList(ListModelMixin, GenericAPIView):
    serializer_class = TeamMemberSerializer
    queryset = TeamMember.objects.none()

    @extend_schema(summary="Members of a team (organisation members)")
    def get(self, request: Request, org: str, team: str) -> Response:
        actor = person(request)
        found = visible_team(actor, visible_organisation(actor, org), team)
        members = found.members.select_related("user").order_by("user__username")
        return paginated(self, members, lambda page: TeamMemberSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a member (owners: anyone, who joins the organisation; "
        "maintainers: organisation members only)",
        request=TeamMemberAddSerializer,
    )
    def post(self, request: Request, org: str, team: str) -> Response:
        actor = person(request)
        found = managed_team(actor, visible_organisation(actor, org), team)
        data = TeamMemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_named(data.validated_data["username"])
        organisation = found.organisation
        if (
            not may_manage_organisation(actor, organisation)
            and not organisation.memberships.filter(user=user).exists()
        ):
            raise PermissionDenied(
                f"only owners of {organisation.name} may add people from outside it"
            )
        if found.members.filter(user=user).exists():
            raise Conflict(f"{user.username} is already in {found.name}; PATCH to change the role")
        member = actions.team_member_set(team=found, user=user, role=data.validated_data["role"])
        return Response(TeamMemberSerializer(member).data, status=status.HTTP_201_CREATED)


class TeamMemberDetail(GenericAPIView):
    serializer_class = TeamMemberSerializer
    queryset = TeamMember.objects.none()

    def _member(self, team: Team, username: str) -> TeamMember:
        member = team.members.select_related("user").filter(user__username=username).first()
        if member is None:
            raise NotFound(f"{team.name} has no member named {username!r}")
        return member

    @extend_schema(
        summary="Change a team member's role (owners and maintainers)", request=TeamRoleSerializer
    )
    def patch(self, request: Request, org: str, team: str, username: str) -> Response:
        actor = person(request)
        found = managed_team(actor, visible_organisation(actor, org), team)
        member = self._member(found, username)
        data = TeamRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = actions.team_member_set(
            team=found, user=member.user, role=data.validated_data["role"]
        )
        return Response(TeamMemberSerializer(member).data)

    @extend_schema(summary="Remove a team member (owners and maintainers)", responses={204: None})
    def delete(self, request: Request, org: str, team: str, username: str) -> Response:
        actor = person(request)
        found = managed_team(actor, visible_organisation(actor, org), team)
        actions.team_member_remove(team=found, user=self._member(found, username).user)
        return Response(status=status.HTTP_204_NO_CONTENT)
