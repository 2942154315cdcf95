"""/api/user/tokens/ (personal access tokens) and /api/orgs/{org}/robots/ (robots, their tokens).

Only a person signed in with a password or a session may make tokens: a token or a
robot can never mint another credential. A personal token's scopes only narrow
what its owner may do (teams.permissions caps every use).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import actions
from accounts.api import schema  # noqa: F401 - registers the authentication scheme
from accounts.api.serializers import (
    NewPersonalTokenSerializer,
    NewTokenSerializer,
    PersonalTokenCreateSerializer,
    PersonalTokenSerializer,
    RobotSerializer,
    RobotUpdateSerializer,
    TokenCreateSerializer,
    TokenSerializer,
)
from accounts.models import AccessToken, Robot
from teams.api.common import Conflict, managed_organisation, paginated, person
from teams.models import Organisation


class PersonalTokenList(ListModelMixin, GenericAPIView):
    serializer_class = PersonalTokenSerializer
    queryset = AccessToken.objects.none()

    @extend_schema(summary="The caller's personal access tokens (no secrets)")
    def get(self, request: Request) -> Response:
        actor = person(request)
        tokens = AccessToken.objects.filter(user=actor.user).order_by("-created_at", "-pk")
        return paginated(self, tokens, lambda page: PersonalTokenSerializer(page, many=True).data)

    @extend_schema(
        summary="Make a personal access token; its secret is in this response only",
        request=PersonalTokenCreateSerializer,
        responses={201: NewPersonalTokenSerializer},
    )
    def post(self, request: Request) -> Response:
        actor = person(request)
        data = PersonalTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = actions.token_create(
            name=data.validated_data["name"],
            user=actor.user,
            scopes=data.validated_data["scopes"],
            expires_at=data.validated_data.get("expires_at"),
        )
        body = NewPersonalTokenSerializer(token, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PersonalTokenDetail(GenericAPIView):
    serializer_class = PersonalTokenSerializer
    queryset = AccessToken.objects.none()

    def _token(self, request: Request, token_id: int) -> AccessToken:
        actor = person(request)
        token = AccessToken.objects.filter(user=actor.user, pk=token_id).first()
        if token is None:
            raise NotFound(f"you have no token {token_id}")
        return token

    @extend_schema(summary="One of the caller's tokens (no secret)")
    def get(self, request: Request, token_id: int) -> Response:
        return Response(PersonalTokenSerializer(self._token(request, token_id)).data)

    @extend_schema(summary="Revoke a token: it stops working at once", responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        actions.token_revoke(token=self._token(request, token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _robot(organisation: Organisation, name: str) -> Robot:
    robot = (
        Robot.objects.select_related("organisation", "created_by")
        .filter(organisation=organisation, name=name)
        .first()
    )
    if robot is None:
        raise NotFound(f"{organisation.name} has no robot named {name!r}")
    return robot


class RobotList(ListModelMixin, GenericAPIView):
    serializer_class = RobotSerializer
    queryset = Robot.objects.none()

    @extend_schema(summary="The organisation's robots (owners)")
    def get(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        robots = organisation.robots.select_related("organisation", "created_by").order_by("name")
        return paginated(self, robots, lambda page: RobotSerializer(page, many=True).data)

    @extend_schema(summary="Make a robot (owners)")
    def post(self, request: Request, org: str) -> Response:
        actor = person(request)
        organisation = managed_organisation(actor, org)
        data = RobotSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"]
        if organisation.robots.filter(name=name).exists():
            raise Conflict(f"{organisation.name} already has a robot named {name!r}")
        robot = actions.robot_create(
            organisation=organisation,
            name=name,
            created_by=actor.user,
            description=data.validated_data.get("description", ""),
            may_create=data.validated_data.get("may_create_repositories", False),
        )
        return Response(RobotSerializer(robot).data, status=status.HTTP_201_CREATED)


class RobotDetail(GenericAPIView):
    serializer_class = RobotSerializer
    queryset = Robot.objects.none()

    @extend_schema(summary="A robot (owners)")
    def get(self, request: Request, org: str, name: str) -> Response:
        organisation = managed_organisation(person(request), org)
        return Response(RobotSerializer(_robot(organisation, name)).data)

    @extend_schema(summary="Change a robot (owners)", request=RobotUpdateSerializer)
    def patch(self, request: Request, org: str, name: str) -> Response:
        robot = _robot(managed_organisation(person(request), org), name)
        data = RobotUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actions.robot_update(
            robot=robot,
            description=data.validated_data.get("description"),
            may_create=data.validated_data.get("may_create_repositories"),
        )
        return Response(RobotSerializer(robot).data)

    @extend_schema(summary="Disable a robot: its tokens stop working (owners)")
    def delete(self, request: Request, org: str, name: str) -> Response:
        robot = _robot(managed_organisation(person(request), org), name)
        actions.robot_disable(robot=robot)
        return Response(RobotSerializer(robot).data)


class RobotTokenList(ListModelMixin, GenericAPIView):
    serializer_class = TokenSerializer
    queryset = AccessToken.objects.none()

    @extend_schema(summary="A robot's tokens, without secrets (owners)")
    def get(self, request: Request, org: str, name: str) -> Response:
        robot = _robot(managed_organisation(person(request), org), name)
        tokens = robot.tokens.order_by("-created_at", "-pk")
        return paginated(self, tokens, lambda page: TokenSerializer(page, many=True).data)

    @extend_schema(
        summary="Make a robot token; its secret is in this response only (owners)",
        request=TokenCreateSerializer,
        responses={201: NewTokenSerializer},
    )
    def post(self, request: Request, org: str, name: str) -> Response:
        robot = _robot(managed_organisation(person(request), org), name)
        if robot.disabled_at is not None:
            raise ValidationError({"detail": [f"{robot.username} is disabled"]})
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, secret = actions.token_create(
            name=data.validated_data["name"],
            robot=robot,
            expires_at=data.validated_data.get("expires_at"),
        )
        body: Any = NewTokenSerializer(token, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)


class RobotTokenDetail(GenericAPIView):
    serializer_class = TokenSerializer
    queryset = AccessToken.objects.none()

    @extend_schema(summary="Revoke a robot token (owners)", responses={204: None})
    def delete(self, request: Request, org: str, name: str, token_id: int) -> Response:
        robot = _robot(managed_organisation(person(request), org), name)
        token = robot.tokens.filter(pk=token_id).first()
        if token is None:
            raise NotFound(f"{robot.username} has no token {token_id}")
        actions.token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
