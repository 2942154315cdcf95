"""The management API under /api/ (the schema is at /api/schema/, routed in hub.urls)."""

from django.urls import path

from accounts.api import views as accounts
from audit import api as audit
from audit import export_api as audit_exports
from registry.policies import api as policies
from registry.webhooks import api as webhooks
from teams.api import config, organisations, repositories, teams

urlpatterns = [
    path("orgs/", organisations.OrganisationList.as_view(), name="api-orgs"),
    path("orgs/<str:org>/", organisations.OrganisationDetail.as_view(), name="api-org"),
    path("orgs/<str:org>/members/", organisations.MemberList.as_view(), name="api-members"),
    path(
        "orgs/<str:org>/members/<str:username>/",
        organisations.MemberDetail.as_view(),
        name="api-member",
    ),
    path(
        "orgs/<str:org>/activity/",
        audit.OrganisationActivity.as_view(),
        name="api-org-activity",
    ),
    path("orgs/<str:org>/config", config.OrganisationConfig.as_view(), name="api-org-config"),
    path("orgs/<str:org>/config/plan", config.ConfigPlan.as_view(), name="api-org-config-plan"),
    path("orgs/<str:org>/config/apply", config.ConfigApply.as_view(), name="api-org-config-apply"),
    path("config/schema.json", config.ConfigSchema.as_view(), name="api-config-schema"),
    path("orgs/<str:org>/teams/", teams.TeamList.as_view(), name="api-teams"),
    path("orgs/<str:org>/teams/<str:team>/", teams.TeamDetail.as_view(), name="api-team"),
    path(
        "orgs/<str:org>/teams/<str:team>/members/",
        teams.TeamMemberList.as_view(),
        name="api-team-members",
    ),
    path(
        "orgs/<str:org>/teams/<str:team>/members/<str:username>/",
        teams.TeamMemberDetail.as_view(),
        name="api-team-member",
    ),
    path("orgs/<str:org>/robots/", accounts.RobotList.as_view(), name="api-robots"),
    path("orgs/<str:org>/robots/<str:name>/", accounts.RobotDetail.as_view(), name="api-robot"),
    path(
        "orgs/<str:org>/robots/<str:name>/tokens/",
        accounts.RobotTokenList.as_view(),
        name="api-robot-tokens",
    ),
    path(
        "orgs/<str:org>/robots/<str:name>/tokens/<int:token_id>/",
        accounts.RobotTokenDetail.as_view(),
        name="api-robot-token",
    ),
    path(
        "orgs/<str:org>/default-grants/",
        repositories.DefaultGrantList.as_view(),
        name="api-default-grants",
    ),
    path(
        "orgs/<str:org>/default-grants/<int:grant_id>/",
        repositories.DefaultGrantDetail.as_view(),
        name="api-default-grant",
    ),
    path(
        "orgs/<str:org>/webhooks/",
        webhooks.OrganisationWebhookList.as_view(),
        name="api-org-webhooks",
    ),
    path("orgs/<str:org>/policy/", policies.OrganisationPolicy.as_view(), name="api-org-policy"),
    path(
        "namespaces/<str:namespace>/quota/",
        policies.NamespaceQuota.as_view(),
        name="api-namespace-quota",
    ),
    path("webhooks/<int:hook_id>/", webhooks.WebhookDetail.as_view(), name="api-webhook"),
    path(
        "webhooks/<int:hook_id>/deliveries/",
        webhooks.WebhookDeliveryList.as_view(),
        name="api-webhook-deliveries",
    ),
    path("repositories/", repositories.RepositoryList.as_view(), name="api-repositories"),
    # Repository names contain slashes: the most specific patterns come first, so a
    # repository whose last component is "grants" is reached only through its grants.
    path(
        "repositories/<path:name>/grants/<str:subject_type>/<str:subject>/",
        repositories.GrantDetail.as_view(),
        name="api-repository-grant",
    ),
    path(
        "repositories/<path:name>/policy/preview/",
        policies.RepositoryRetentionPreview.as_view(),
        name="api-repository-retention-preview",
    ),
    path(
        "repositories/<path:name>/policy/",
        policies.RepositoryPolicy.as_view(),
        name="api-repository-policy",
    ),
    path(
        "repositories/<path:name>/webhooks/",
        webhooks.RepositoryWebhookList.as_view(),
        name="api-repository-webhooks",
    ),
    path(
        "repositories/<path:name>/grants/",
        repositories.GrantList.as_view(),
        name="api-repository-grants",
    ),
    path(
        "repositories/<path:name>/",
        repositories.RepositoryDetail.as_view(),
        name="api-repository",
    ),
    path("audit/events/", audit.EventList.as_view(), name="api-audit-events"),
    path("audit/export", audit.EventExport.as_view(), name="api-audit-export"),
    path("audit/exports/", audit_exports.ExportJobList.as_view(), name="api-audit-export-jobs"),
    path(
        "audit/exports/<int:job_id>/",
        audit_exports.ExportJobDetail.as_view(),
        name="api-audit-export-job",
    ),
    path(
        "audit/exports/<int:job_id>/download",
        audit_exports.ExportJobDownload.as_view(),
        name="api-audit-export-download",
    ),
    path("user/tokens/", accounts.PersonalTokenList.as_view(), name="api-user-tokens"),
    path(
        "user/tokens/<int:token_id>/",
        accounts.PersonalTokenDetail.as_view(),
        name="api-user-token",
    ),
]
