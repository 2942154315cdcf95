from django.urls import path, re_path

from registry.views import base, blobs, listing, manifests, uploads

# Repository names contain slashes, so each route is anchored on its suffix.
urlpatterns = [
    path("", base.base),
    path("_catalog", listing.catalog),
    re_path(r"^(?P<name>.+)/tags/list$", listing.tags_list),
    re_path(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$", manifests.manifest),
    re_path(r"^(?P<name>.+)/blobs/uploads/?$", uploads.upload_start),
    re_path(r"^(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)$", uploads.upload),
    re_path(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$", blobs.blob),
    re_path(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$", listing.referrers),
    # Any other path, newlines included, gets the spec's JSON error, not an HTML page.
    re_path(r"^(?P<path>[\s\S]*)$", base.not_found),
]
