from django.urls import path, re_path

from registry.views import base, blobs, listing, manifests, uploads

# Repository names contain slashes, so each route is anchored on its suffix. The names
# (v2:manifest, ...) are the `route` label of the request metrics.
app_name = "v2"
urlpatterns = [
    path("", base.base, name="base"),
    path("_catalog", listing.catalog, name="catalog"),
    re_path(r"^(?P<name>.+)/tags/list$", listing.tags_list, name="tags-list"),
    re_path(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$", manifests.manifest, name="manifest"),
    re_path(r"^(?P<name>.+)/blobs/uploads/?$", uploads.upload_start, name="upload-start"),
    re_path(r"^(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$", uploads.upload, name="upload"),
    re_path(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$", blobs.blob, name="blob"),
    re_path(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$", listing.referrers, name="referrers"),
    # Any other path, newlines included, gets the spec's JSON error, not an HTML page.
    re_path(r"^(?P<path>[\s\S]*)$", base.not_found, name="not-found"),
]
