"""/api/orgs/{org}/config (export), .../config/plan and .../config/apply, /api/config/schema.json.

Owners, and the organisation's admin robots (so a delivery pipeline applies the
document with a robot token), send the document as the body, YAML or JSON.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.http.request import RawPostDataException
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotAuthenticated, NotFound, ParseError, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_auth import api_actor
from audit.context import set_actor
from teams.config.apply import apply
from teams.config.changes import Applier
from teams.config.document import ConfigError
from teams.config.export import export_text
from teams.config.plan import make_plan
from teams.config.schema import SCHEMA
from teams.models import Organisation
from teams.permissions import may_administer_organisation, may_see_organisation

PRUNE = OpenApiParameter("prune", OpenApiTypes.BOOL, description="also remove what is left out")


def _administered(request: Request, name: str) -> tuple[Organisation, Applier]:
    actor = api_actor(request)
    if actor.is_anonymous:
        raise NotAuthenticated()
    organisation = Organisation.objects.filter(name=name).first()
    if organisation is None or not (
        may_see_organisation(actor, organisation)
        or may_administer_organisation(actor, organisation)
    ):
        raise NotFound(f"no organisation named {name!r}")
    if not may_administer_organisation(actor, organisation):
        raise PermissionDenied(f"only owners and admin robots of {organisation.name} may do this")
    set_actor(actor)
    return organisation, Applier(actor=actor)


def _body(request: Request) -> str:
    try:
        text = request._request.body.decode()
    except UnicodeDecodeError:
        raise ParseError("the document must be UTF-8") from None
    except RawPostDataException:
        # A form body was read as a form already (by the CSRF check).
        raise ParseError("send the document as application/yaml or application/json") from None
    if not text.strip():
        raise ParseError("send the document (YAML or JSON) as the body")
    return text


def _error(exc: ConfigError) -> Response:
    problems = [p.as_dict() for p in exc.problems]
    return Response({"detail": str(exc), "errors": problems}, status=400)


class ConfigSchema(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The JSON Schema of organisation configuration documents",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response(SCHEMA)


class OrganisationConfig(APIView):
    @extend_schema(
        summary="The organisation's current document, as YAML (owners, admin robots)",
        responses={(200, "application/yaml"): OpenApiTypes.STR},
    )
    def get(self, request: Request, org: str) -> HttpResponse:
        organisation, _ = _administered(request, org)
        return HttpResponse(export_text(organisation), content_type="application/yaml")


class _ConfigRun(APIView):
    apply = False

    def post(self, request: Request, org: str) -> Response:
        organisation, applier = _administered(request, org)
        text = _body(request)
        prune = request.query_params.get("prune", "").lower() in ("1", "true", "yes")
        run: Any = apply if self.apply else make_plan
        try:
            plan = run(
                text,
                applier=applier,
                prune=prune,
                server_secrets=False,
                organisation=organisation.name,
            )
        except ConfigError as exc:
            return _error(exc)
        body = plan.as_dict()
        body["changed" if self.apply else "pending"] = bool(plan.changes)
        return Response(body)


class ConfigPlan(_ConfigRun):
    @extend_schema(
        summary="What applying the document would change (owners, admin robots)",
        request={"application/yaml": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        parameters=[PRUNE],
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, org: str) -> Response:
        return super().post(request, org)


class ConfigApply(_ConfigRun):
    apply = True

    @extend_schema(
        summary="Apply the document, all or nothing (owners, admin robots)",
        request={"application/yaml": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        parameters=[PRUNE],
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, org: str) -> Response:
        return super().post(request, org)
