"""The web UI's pages. Repository names contain slashes, so their pages put `/-/` between
the name and what follows (a name component is never just `-`)."""

from django.urls import path

from web.views import (
    account,
    audit,
    browse,
    organisations,
    repositories,
    repository_settings,
    robots,
    teams,
)

app_name = "web"

urlpatterns = [
    path("", browse.home, name="home"),
    path("explore/", browse.explore, name="explore"),
    path("n/<str:name>/", browse.namespace, name="namespace"),
    path("orgs/new/", organisations.organisation_new, name="organisation-new"),
    path("orgs/<str:org>/", organisations.organisation, name="organisation"),
    path(
        "orgs/<str:org>/operations/",
        organisations.organisation_operations,
        name="organisation-operations",
    ),
    path("orgs/<str:org>/teams/<str:name>/", teams.team, name="team"),
    path("orgs/<str:org>/robots/new/", robots.robot_new, name="robot-new"),
    path("orgs/<str:org>/robots/<str:name>/", robots.robot, name="robot"),
    path("orgs/<str:org>/robots/<str:name>/disable/", robots.robot_disable, name="robot-disable"),
    path(
        "orgs/<str:org>/robots/<str:name>/tokens/<int:token_id>/revoke/",
        robots.robot_token_revoke,
        name="robot-token-revoke",
    ),
    path("settings/", account.settings_home, name="settings"),
    path("settings/tokens/", account.tokens, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke/", account.token_revoke_page, name="token-revoke"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit/export", audit.audit_export, name="audit-export"),
    path("r/<path:name>/-/manifests/<str:digest>/", repositories.manifest, name="manifest"),
    path("r/<path:name>/-/tags/<str:tag>/delete/", repositories.tag_delete, name="tag-delete"),
    path(
        "r/<path:name>/-/settings/",
        repository_settings.repository_settings,
        name="repository-settings",
    ),
    path("r/<path:name>/", repositories.repository, name="repository"),
]
