"""/api/orgs/: organisations and their members."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.request import Request
from rest_framework.response import Response

from teams import actions
from teams.api.common import (
    Conflict,
    managed_organisation,
    paginated,
    person,
    user_named,
    visible_organisation,
)
from teams.api.serializers import (
    MemberAddSerializer,
    MemberSerializer,
    OrganisationSerializer,
    OrganisationUpdateSerializer,
    RoleSerializer,
)
from teams.models import Membership, Organisation
from teams.permissions import organisation_role


class OrganisationList(ListModelMixin, GenericAPIView):
    serializer_class = OrganisationSerializer
    queryset = Organisation.objects.none()

    @extend_schema(summary="Organisations the caller belongs to")
    def get(self, request: Request) -> Response:
        actor = person(request)
        candidates = Organisation.objects.order_by("name")
        if not actor.is_superuser:
            candidates = candidates.filter(memberships__user=actor.user)
        roles = {org.pk: organisation_role(actor, org) for org in candidates}
        visible = [org for org in candidates if roles.get(org.pk) is not None]
        return paginated(
            self,
            visible,
            lambda page: OrganisationSerializer(page, many=True, context={"roles": roles}).data,
        )

    @extend_schema(summary="Create an organisation; the caller becomes its owner")
    def post(self, request: Request) -> Response:
        actor = person(request)
        data = OrganisationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = actions.organisation_create(
            name=data.validated_data["name"],
            owner=actor.user,
            display_name=data.validated_data.get("display_name", ""),
            description=data.validated_data.get("description", ""),
        )
        body = OrganisationSerializer(org, context={"roles": {org.pk: "owner"}}).data
        return Response(body, status=status.HTTP_201_CREATED)


class OrganisationDetail(GenericAPIView):
    serializer_class = OrganisationSerializer
    queryset = Organisation.objects.none()

    def _answer(self, request: Request, org: Organisation) -> Response:
        roles = {org.pk: organisation_role(person(request), org)}
        return Response(OrganisationSerializer(org, context={"roles": roles}).data)

    @extend_schema(summary="An organisation (members only)")
    def get(self, request: Request, org: str) -> Response:
        return self._answer(request, visible_organisation(person(request), org))

    @extend_schema(
        summary="Change the display name or description (owners)",
        request=OrganisationUpdateSerializer,
    )
    def patch(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        data = OrganisationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actions.organisation_update(organisation=organisation, **data.validated_data)
        return self._answer(request, organisation)

    @extend_schema(
        summary="Delete an organisation without repositories (owners)", responses={204: None}
    )
    def delete(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        actions.organisation_delete(organisation=organisation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberList(ListModelMixin, GenericAPIView):
    serializer_class = MemberSerializer
    queryset = Membership.objects.none()

    @extend_schema(summary="Members of an organisation (members only)")
    def get(self, request: Request, org: str) -> Response:
        organisation = visible_organisation(person(request), org)
        members = organisation.memberships.select_related("user").order_by("user__username")
        return paginated(self, members, lambda page: MemberSerializer(page, many=True).data)

    @extend_schema(summary="Add a member (owners)", request=MemberAddSerializer)
    def post(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_named(data.validated_data["username"])
        if organisation.memberships.filter(user=user).exists():
            raise Conflict(f"{user.username} is already a member; PATCH to change the role")
        membership = actions.membership_set(
            organisation=organisation, user=user, role=data.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetail(GenericAPIView):
    serializer_class = MemberSerializer
    queryset = Membership.objects.none()

    def _membership(self, organisation: Organisation, username: str) -> Membership:
        membership = (
            organisation.memberships.select_related("user").filter(user__username=username).first()
        )
        if membership is None:
            raise NotFound(f"{organisation.name} has no member named {username!r}")
        return membership

    @extend_schema(summary="One member (members only)")
    def get(self, request: Request, org: str, username: str) -> Response:
        organisation = visible_organisation(person(request), org)
        return Response(MemberSerializer(self._membership(organisation, username)).data)

    @extend_schema(summary="Change a member's role (owners)", request=RoleSerializer)
    def patch(self, request: Request, org: str, username: str) -> Response:
        organisation = managed_organisation(person(request), org)
        membership = self._membership(organisation, username)
        data = RoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role: Any = data.validated_data["role"]
        membership = actions.membership_set(
            organisation=organisation, user=membership.user, role=role
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(summary="Remove a member and their team places (owners)", responses={204: None})
    def delete(self, request: Request, org: str, username: str) -> Response:
        organisation = managed_organisation(person(request), org)
        membership = self._membership(organisation, username)
        actions.membership_remove(organisation=organisation, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
