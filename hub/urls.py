from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import include, path

from accounts.views.token import token
from hub.metrics_view import metrics_endpoint


def api_schema(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
    """The OpenAPI schema, its generator imported on first use: drf-spectacular (with
    jinja2 and the rest) would otherwise sit in every worker's memory for a rare request."""
    from drf_spectacular.views import SpectacularAPIView

    return SpectacularAPIView.as_view()(request, *args, **kwargs)


urlpatterns = [
    path("v2/", include("registry.urls")),
    path("auth/token", token, name="token"),
    path("metrics", metrics_endpoint, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", api_schema, name="api-schema"),
    path("api/", include("hub.api_urls")),
    # The web UI: every other page.
    path("", include("web.urls")),
]

handler403 = "web.views.errors.forbidden"
handler404 = "web.views.errors.not_found"
handler500 = "web.views.errors.server_error"
