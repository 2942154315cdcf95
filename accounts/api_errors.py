"""Django's own errors, raised by the actions, answered as DRF errors."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code in (401, 403):
        _record_refusal(exc, response.status_code, context)
    return response


def _record_refusal(exc: Exception, status: int, context: dict[str, Any]) -> None:
    """Every 403, and every 401 where credentials were sent, goes to the audit trail."""
    import audit
    from teams.models import Organisation

    request = context.get("request")
    if request is None or (status == 401 and not request.META.get("HTTP_AUTHORIZATION")):
        return
    kwargs = context.get("kwargs") or {}
    org = kwargs.get("org")
    if org and not Organisation.objects.filter(name=org).exists():
        org = None
    audit.record(
        action="request.denied",
        outcome="failure" if status == 401 else "denied",
        organisation=org,
        repository=kwargs.get("name") if not org else None,
        details={
            "method": request.method,
            "path": request.path[:300],
            "status": status,
            "reason": str(getattr(exc, "detail", exc))[:300],
        },
        request=request._request if hasattr(request, "_request") else request,
    )
