"""/api/audit/exports/: background export jobs, their status and their download links.

`GET /api/audit/export` answers 202 with a job (below) instead of streaming when more
than HUB_AUDIT_EXPORT_SYNC_LIMIT sealed events match; `POST /api/audit/exports/` starts
a job whatever the size. A job is seen (404 otherwise) by its requester and site
administrators only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import export_jobs, exporting
from audit.models import ExportJob
from audit.queries import BadFilter
from registry.storage import ObjectNotFound, get_storage
from teams.api.common import person


class LinkGone(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "this download link has expired or is not valid: GET the job for a new one"
    default_code = "gone"


class ExportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    download_expires_in = serializers.SerializerMethodField()
    requester = serializers.CharField(source="requester.username", read_only=True)

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "url",
            "requester",
            "format",
            "filters",
            "status",
            "row_count",
            "size",
            "sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "download_url",
            "download_expires_in",
        ]

    def get_url(self, job: ExportJob) -> str:
        return reverse("api-audit-export-job", args=[job.id])

    def get_download_url(self, job: ExportJob) -> str | None:
        return download_url(job) if export_jobs.downloadable(job) else None

    def get_download_expires_in(self, job: ExportJob) -> int | None:
        return export_jobs.link_ttl(job) if export_jobs.downloadable(job) else None


def download_url(job: ExportJob) -> str:
    """A link to the job's file, valid HUB_AUDIT_EXPORT_LINK_TTL seconds."""
    query = urlencode({"token": export_jobs.download_token(job)})
    return f"{reverse('api-audit-export-download', args=[job.id])}?{query}"


def start(request: Request, fmt: str, params: Any) -> Response:
    """Queue a job for the caller; 202 with the job and its URL in Location."""
    if fmt not in exporting.FORMATS:
        raise ValidationError({"format": [f"one of {', '.join(exporting.FORMATS)}"]})
    try:
        job = export_jobs.export_job_start(actor=person(request), fmt=fmt, filters=params)
    except BadFilter as exc:
        raise ValidationError({"detail": str(exc)}) from None
    data = ExportJobSerializer(job).data
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


class StartSerializer(serializers.Serializer):
    """The format and audit.queries.FILTERS, as for GET /api/audit/export."""

    format = serializers.ChoiceField(choices=exporting.FORMATS, default="jsonl")
    since = serializers.CharField(required=False)
    until = serializers.CharField(required=False)
    actor = serializers.CharField(required=False)
    action = serializers.CharField(required=False)
    organisation = serializers.CharField(required=False)
    repository = serializers.CharField(required=False)
    outcome = serializers.CharField(required=False)
    client_address = serializers.CharField(required=False)


class ExportJobList(APIView):
    @extend_schema(summary="The caller's export jobs, newest first", responses=ExportJobSerializer)
    def get(self, request: Request) -> Response:
        jobs = export_jobs.visible_jobs(person(request)).select_related("requester")
        return Response(ExportJobSerializer(jobs.order_by("-id")[:100], many=True).data)

    @extend_schema(
        summary="Export the caller's readable, sealed events in the background",
        request=StartSerializer,
        responses={202: ExportJobSerializer},
    )
    def post(self, request: Request) -> Response:
        given = StartSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        filters = {k: v for k, v in given.validated_data.items() if k != "format"}
        return start(request, given.validated_data["format"], filters)


class ExportJobDetail(APIView):
    @extend_schema(summary="An export job's status, and its download link when done")
    def get(self, request: Request, job_id: int) -> Response:
        jobs = export_jobs.visible_jobs(person(request)).select_related("requester")
        return Response(ExportJobSerializer(get_object_or_404(jobs, id=job_id)).data)


class ExportJobDownload(APIView):
    @extend_schema(
        summary="Download an export job's file (the link from the job)",
        parameters=[OpenApiParameter("token", str, required=True)],
        responses={200: bytes, 302: None},
    )
    def get(self, request: Request, job_id: int) -> Any:
        actor = person(request)
        job = get_object_or_404(export_jobs.visible_jobs(actor), id=job_id)
        if not export_jobs.downloadable(job):
            raise LinkGone("this export is not ready, or has expired")
        if not export_jobs.token_valid(job, str(request.query_params.get("token", ""))):
            raise LinkGone()
        export_jobs.export_downloaded(actor=actor, job=job)
        return _file_response(job)


def _file_response(job: ExportJob) -> HttpResponse | FileResponse | StreamingHttpResponse:
    storage = get_storage()
    name = export_jobs.filename(job)
    content_type = exporting.CONTENT_TYPES[job.format]
    redirect = storage.object_redirect_url(
        job.storage_key,
        ttl=max(export_jobs.link_ttl(job), 1),
        filename=name,
        content_type=content_type,
    )
    if redirect is not None:
        return HttpResponse(status=302, headers={"Location": redirect})
    path = storage.object_path(job.storage_key)
    if path is not None:
        # FileResponse goes out through wsgi.file_wrapper: gunicorn uses sendfile.
        return FileResponse(
            open(path, "rb"),  # noqa: SIM115 - closed by the response
            as_attachment=True,
            filename=name,
            content_type=content_type,
        )
    try:
        chunks = storage.object_read(job.storage_key)
    except ObjectNotFound:
        raise LinkGone("this export's file is gone") from None
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    if job.size is not None:
        response["Content-Length"] = str(job.size)
    return response
