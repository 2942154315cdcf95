"""/metrics (Prometheus text format) and the middleware that counts requests."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from hub import metrics

# Clients may send any method name; a label must not grow with what they send.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts every request by route and status, and how long it took (outermost)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        # labels() validates and locks on each call; a request needs only a dict lookup.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        route = match.view_name if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        key = (str(method), route, response.status_code)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.REQUESTS.labels(*key)
        counter.inc()
        timer = self._timers.get(route)
        if timer is None:
            timer = self._timers[route] = metrics.REQUEST_DURATION.labels(route)
        timer.observe(elapsed)
        return response


class OpenUploads(Collector):
    """Open upload sessions, counted in the database at scrape time (any node's)."""

    def collect(self) -> Iterable[Metric]:
        from registry.models import Upload

        cutoff = timezone.now() - timedelta(seconds=settings.HUB_UPLOAD_IDLE_TIMEOUT)
        gauge = GaugeMetricFamily(
            "hub_registry_upload_sessions_open",
            "Upload sessions not idle for longer than HUB_UPLOAD_IDLE_TIMEOUT.",
        )
        gauge.add_metric([], Upload.objects.filter(updated_at__gte=cutoff).count())
        yield gauge


class _ThisProcess(Collector):
    """Outside `hub serve` (no multiprocess directory) the counts live in this process."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def _may_read(request: HttpRequest) -> bool:
    scheme, _, value = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    scheme = scheme.lower()
    token = settings.HUB_METRICS_TOKEN
    if scheme == "bearer" and token:
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme == "basic":
        from accounts.request_auth import (
            TooManyAttempts,
            Unauthenticated,
            basic_actor,
            parse_basic,
        )

        try:
            return basic_actor(request, *parse_basic(value)).is_superuser
        except (Unauthenticated, TooManyAttempts):
            return False
    return False


def metrics_endpoint(request: HttpRequest) -> HttpResponse:
    if not settings.HUB_METRICS_ENABLED:
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    if not _may_read(request):
        return HttpResponse(
            "site administrator credentials or the metrics token are required\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Basic realm="Hub metrics"'},
        )
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(OpenUploads())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
