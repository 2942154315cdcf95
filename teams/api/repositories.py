"""/api/repositories/ (with their grants) and /api/orgs/{org}/default-grants/.

A repository the actor may not see answers 404 exactly as a missing one does.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_auth import api_actor
from accounts.models import Robot
from registry.models import Repository
from teams import actions
from teams.api.common import (
    LEVELS,
    ReadOnlyForAnyone,
    managed_organisation,
    paginated,
    person,
    user_named,
)
from teams.api.serializers import (
    DefaultGrantSerializer,
    GrantInputSerializer,
    GrantSerializer,
    RepositorySerializer,
    RepositoryUpdateSerializer,
)
from teams.models import DefaultGrant, Level, Organisation, RepositoryGrant
from teams.permissions import (
    Actor,
    may_administer_repository,
    repository_level,
    visible_repositories,
)

NAME_PARAMETER = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. acme/app (slashes allowed)"
)


def visible_repository(actor: Actor, name: str) -> Repository:
    repository = visible_repositories(actor).select_related("namespace").filter(name=name).first()
    if repository is None:
        raise NotFound(f"no repository named {name!r}")
    return repository


def administered_repository(actor: Actor, name: str) -> Repository:
    repository = visible_repository(actor, name)
    if not may_administer_repository(actor, repository):
        raise PermissionDenied(f"only administrators of {repository.name} may do this")
    return repository


def _subject(organisation: Organisation | None, kind: str, name: str) -> dict[str, Any]:
    """The user, team or robot a grant names; teams and robots of the organisation only."""
    if kind == "user":
        try:
            return {"user": user_named(name)}
        except ValidationError:
            raise ValidationError({"subject": [f"no user named {name!r}"]}) from None
    if organisation is None:
        raise ValidationError({"subject_type": ["only users can be granted outside organisations"]})
    if kind == "team":
        team = organisation.teams.filter(name=name).first()
        if team is None:
            raise ValidationError({"subject": [f"{organisation.name} has no team named {name!r}"]})
        return {"team": team}
    org_name, plus, robot_name = name.partition("+")
    if plus and org_name != organisation.name:
        raise ValidationError({"subject": [f"{organisation.name} has no robot named {name!r}"]})
    robot = Robot.objects.filter(organisation=organisation, name=robot_name if plus else name)
    found = robot.select_related("organisation").first()
    if found is None:
        raise ValidationError({"subject": [f"{organisation.name} has no robot named {name!r}"]})
    return {"robot": found}


def _organisation_of(repository: Repository) -> Organisation | None:
    namespace = repository.namespace
    return namespace.organisation if namespace is not None else None


def _with_subjects(qs: Any) -> Any:
    return qs.select_related("user", "team", "robot__organisation")


class RepositoryList(ListModelMixin, GenericAPIView):
    serializer_class = RepositorySerializer
    queryset = Repository.objects.none()
    permission_classes = [ReadOnlyForAnyone]

    @extend_schema(
        summary="Repositories the caller may see, with the caller's level",
        parameters=[OpenApiParameter("namespace", OpenApiTypes.STR, description="only this one")],
    )
    def get(self, request: Request) -> Response:
        actor = api_actor(request)
        repositories = visible_repositories(actor).select_related("namespace").order_by("name")
        namespace = request.query_params.get("namespace")
        if namespace:
            repositories = repositories.filter(namespace__name=namespace)

        def serialize(page: Any) -> Any:
            levels = {repo.pk: repository_level(actor, repo) for repo in page}
            return RepositorySerializer(page, many=True, context={"levels": levels}).data

        return paginated(self, repositories, serialize)


class RepositoryDetail(GenericAPIView):
    serializer_class = RepositorySerializer
    queryset = Repository.objects.none()
    permission_classes = [ReadOnlyForAnyone]

    def _answer(self, actor: Actor, repository: Repository) -> Response:
        levels = {repository.pk: repository_level(actor, repository)}
        return Response(RepositorySerializer(repository, context={"levels": levels}).data)

    @extend_schema(
        summary="A repository (404 unless the caller may see it)", parameters=[NAME_PARAMETER]
    )
    def get(self, request: Request, name: str) -> Response:
        actor = api_actor(request)
        return self._answer(actor, visible_repository(actor, name))

    @extend_schema(
        summary="Change description or visibility (repository administrators)",
        parameters=[NAME_PARAMETER],
        request=RepositoryUpdateSerializer,
    )
    def patch(self, request: Request, name: str) -> Response:
        actor = api_actor(request)
        repository = administered_repository(actor, name)
        data = RepositoryUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actions.repository_update(repository=repository, **data.validated_data)
        return self._answer(actor, repository)


class GrantList(ListModelMixin, GenericAPIView):
    serializer_class = GrantSerializer
    queryset = RepositoryGrant.objects.none()

    @extend_schema(summary="Grants on a repository (administrators)", parameters=[NAME_PARAMETER])
    def get(self, request: Request, name: str) -> Response:
        repository = administered_repository(api_actor(request), name)
        grants = _with_subjects(repository.grants.order_by("pk"))
        return paginated(self, grants, lambda page: GrantSerializer(page, many=True).data)

    @extend_schema(
        summary="Give a user, team or robot a level, or change it (administrators)",
        parameters=[NAME_PARAMETER],
        request=GrantInputSerializer,
    )
    def post(self, request: Request, name: str) -> Response:
        repository = administered_repository(api_actor(request), name)
        data = GrantInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = _subject(
            _organisation_of(repository),
            data.validated_data["subject_type"],
            data.validated_data["subject"],
        )
        grant = actions.grant_set(
            repository=repository, level=LEVELS[data.validated_data["level"]], **subject
        )
        return Response(GrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class GrantDetail(GenericAPIView):
    serializer_class = GrantSerializer
    queryset = RepositoryGrant.objects.none()

    @extend_schema(
        summary="Remove a grant (administrators)",
        parameters=[NAME_PARAMETER],
        responses={204: None},
    )
    def delete(self, request: Request, name: str, subject_type: str, subject: str) -> Response:
        repository = administered_repository(api_actor(request), name)
        if subject_type not in ("user", "team", "robot"):
            raise NotFound("subject type must be user, team or robot")
        try:
            found = _subject(_organisation_of(repository), subject_type, subject)
        except ValidationError:
            raise NotFound(f"no grant to {subject_type} {subject!r}") from None
        if not repository.grants.filter(**found).exists():
            raise NotFound(f"no grant to {subject_type} {subject!r}")
        actions.grant_set(repository=repository, level=Level.NONE, **found)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DefaultGrantList(ListModelMixin, GenericAPIView):
    serializer_class = DefaultGrantSerializer
    queryset = DefaultGrant.objects.none()

    @extend_schema(summary="Grants copied onto the organisation's new repositories (owners)")
    def get(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        grants = _with_subjects(organisation.default_grants.order_by("pk"))
        return paginated(self, grants, lambda page: DefaultGrantSerializer(page, many=True).data)

    @extend_schema(summary="Add a default grant (owners)", request=GrantInputSerializer)
    def post(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(person(request), org)
        data = GrantInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = _subject(
            organisation, data.validated_data["subject_type"], data.validated_data["subject"]
        )
        grant = actions.default_grant_add(
            organisation=organisation, level=LEVELS[data.validated_data["level"]], **subject
        )
        return Response(DefaultGrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class DefaultGrantDetail(GenericAPIView):
    serializer_class = DefaultGrantSerializer
    queryset = DefaultGrant.objects.none()

    @extend_schema(summary="Remove a default grant (owners)", responses={204: None})
    def delete(self, request: Request, org: str, grant_id: int) -> Response:
        organisation = managed_organisation(person(request), org)
        grant = organisation.default_grants.filter(pk=grant_id).first()
        if grant is None:
            raise NotFound(f"{organisation.name} has no default grant {grant_id}")
        actions.default_grant_remove(default_grant=grant)
        return Response(status=status.HTTP_204_NO_CONTENT)
