"""/api/audit/events/, /api/audit/export and /api/orgs/<org>/activity/."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import export_api, export_jobs, exporting
from audit.canonical import CONTENT_FIELDS
from audit.models import Event
from audit.queries import (
    FILTERS,
    BadFilter,
    apply_filters,
    organisation_activity,
    visible_events,
    whole_chains,
)
from teams.api.common import person, visible_organisation


class EventSerializer(serializers.ModelSerializer):
    seq = serializers.SerializerMethodField()

    class Meta:
        model = Event
        # The hashed content, with the event's place in its chain after `chain`.
        fields = [*CONTENT_FIELDS[:3], "seq", *CONTENT_FIELDS[3:]]

    def get_seq(self, event: Event) -> int | None:
        seal = getattr(event, "seal", None)
        return seal.seq if seal is not None else None


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        # Within a time range, newest first by time: the occurred_at index finds the page
        # at once, where walking ids down from the newest passes every later event first.
        if request.query_params.get("since") or request.query_params.get("until"):
            return ("-occurred_at", "-id")
        return ("-id",)


_FILTER_PARAMETERS = [OpenApiParameter(name, str, required=False) for name in FILTERS]


def _filtered(qs: Any, request: Request) -> Any:
    try:
        return apply_filters(qs, request.query_params)
    except BadFilter as exc:
        raise ValidationError({"detail": str(exc)}) from None


class _Listing(ListModelMixin, GenericAPIView):
    serializer_class = EventSerializer
    pagination_class = NewestFirst
    queryset = Event.objects.none()

    def page(self, request: Request, events: Any) -> Response:
        events = _filtered(events, request).select_related("seal")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventSerializer(page, many=True).data)


class EventList(_Listing):
    @extend_schema(
        summary="Audit events the caller may read, newest first",
        parameters=_FILTER_PARAMETERS,
    )
    def get(self, request: Request) -> Response:
        return self.page(request, visible_events(person(request)))


class OrganisationActivity(_Listing):
    @extend_schema(summary="Pushes, tag moves and membership changes of an organisation")
    def get(self, request: Request, org: str) -> Response:
        actor = person(request)
        organisation = visible_organisation(actor, org)
        return self.page(request, organisation_activity(actor, organisation))


class _AnyFormat(BaseContentNegotiation):
    """`?format=` names the export format here, not a DRF renderer."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


class EventExport(APIView):
    content_negotiation_class = _AnyFormat

    @extend_schema(
        summary="Stream the caller's readable, sealed events with their seals (or, past "
        "HUB_AUDIT_EXPORT_SYNC_LIMIT events, start an export job: 202 and its URL)",
        parameters=[OpenApiParameter("format", str, enum=list(exporting.FORMATS))]
        + _FILTER_PARAMETERS,
        responses={200: bytes, 202: export_api.ExportJobSerializer},
    )
    def get(self, request: Request) -> Any:
        events = _filtered(visible_events(person(request)), request)
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in exporting.FORMATS:
            raise ValidationError({"format": [f"one of {', '.join(exporting.FORMATS)}"]})
        if export_jobs.over_limit(events):
            # Too big for one request: written in the background, offered as a link.
            return export_api.start(request, fmt, request.query_params)
        return exporting.download(fmt, events, whole_chains(request.query_params))
