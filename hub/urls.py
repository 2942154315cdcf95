from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts.views.token import token
from hub.metrics_view import metrics_endpoint

urlpatterns = [
    path("v2/", include("registry.urls")),
    path("auth/token", token, name="token"),
    path("metrics", metrics_endpoint, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("hub.api_urls")),
    # The web UI: every other page.
    path("", include("web.urls")),
]

handler403 = "web.views.errors.forbidden"
handler404 = "web.views.errors.not_found"
handler500 = "web.views.errors.server_error"
