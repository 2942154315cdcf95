"""Operations policies of a repository or an organisation, on their settings pages:
webhooks (with their recent deliveries), immutable tags and retention (with a preview of
what retention would remove). Writes go through registry.webhooks.actions and
registry.policies.actions, which record the audit events; the pages that include these
forms have already checked that the viewer administers the repository or owns the
organisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from registry.models import Repository
from registry.policies import actions as policy_actions
from registry.policies.models import Policy
from registry.policies.retention import Removal, effective_policy, plan
from registry.webhooks import actions as webhook_actions
from registry.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from teams.models import Organisation
from teams.permissions import Actor, visible_repositories
from web import forms
from web.views.common import posted_id, unconfirmed

FORMS = ("webhook", "delete-webhook", "policy")
RECENT_DELIVERIES = 5
# An organisation's preview looks at this many of its repositories at most.
PREVIEW_REPOSITORIES = 50


@dataclass(frozen=True)
class Scope:
    """A repository's or an organisation's operations, and the page they are on."""

    url: str
    repository: Repository | None = None
    organisation: Organisation | None = None

    @property
    def filter(self) -> dict[str, Any]:
        if self.repository is not None:
            return {"repository": self.repository}
        return {"organisation": self.organisation}


def context(scope: Scope, shown: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the operations part of a settings page shows; `shown` holds forms to show
    again (with their errors) and a retention preview."""
    shown = shown or {}
    recent = WebhookDelivery.objects.prefetch_related("attempt_log").order_by("-created_at")
    hooks = (
        Webhook.objects.filter(**scope.filter)
        .prefetch_related(
            Prefetch("deliveries", queryset=recent[:RECENT_DELIVERIES], to_attr="recent")
        )
        .order_by("pk")
    )
    policy = Policy.objects.filter(**scope.filter).first()
    return {
        "ops_url": scope.url,
        "webhooks": [
            {
                "hook": hook,
                "events": webhook_actions.events_of(hook),
                # Each delivery with its last attempt (prefetched: no query per row).
                "deliveries": [(d, _last_attempt(d)) for d in hook.recent],
            }
            for hook in hooks
        ],
        "webhook_form": shown.get("webhook_form") or forms.WebhookForm(prefix="hook"),
        "policy_form": shown.get("policy_form")
        or forms.PolicyForm(prefix="policy", initial=forms.PolicyForm.initial_of(policy)),
        "preview": shown.get("preview"),
        "inherits_retention": scope.repository is not None
        and (policy is None or not policy.has_retention)
        and effective_policy(scope.repository) is not None,
    }


def _last_attempt(delivery: WebhookDelivery) -> WebhookAttempt | None:
    return max(delivery.attempt_log.all(), key=lambda a: a.number, default=None)


def handle(
    request: HttpRequest, actor: Actor, scope: Scope, shown: dict[str, Any]
) -> HttpResponse | None:
    """One of the operations forms: an answer, or None with what to show again in `shown`."""
    what = request.POST.get("form")
    here = redirect(scope.url)
    if what == "webhook":
        form = forms.WebhookForm(request.POST, prefix="hook")
        shown["webhook_form"] = form
        if not form.is_valid():
            return None
        given_secret = form.cleaned_data["secret"] or None
        hook = webhook_actions.webhook_create(
            url=form.cleaned_data["url"],
            events=list(form.cleaned_data["events"]),
            secret=given_secret,
            created_by=actor.name,
            **scope.filter,
        )
        if given_secret is None:
            # Shown once, as the API does: Hub keeps it only to sign deliveries.
            messages.success(request, f"Added the webhook. Its secret (shown once): {hook.secret}")
        else:
            messages.success(request, "Added the webhook.")
        return here
    if what == "delete-webhook":
        found = (
            Webhook.objects.filter(**scope.filter, pk=posted_id(request))
            .select_related("repository", "organisation")
            .first()
        )
        if found is not None:
            asked = unconfirmed(
                request,
                f"Delete the webhook to {found.url}?",
                "It will not be told of anything from now on; its delivery log goes with it.",
            )
            if asked is not None:
                return asked
            webhook_actions.webhook_delete(hook=found)
            messages.success(request, f"Deleted the webhook to {found.url}.")
        return here
    if what == "policy":
        policy_form = forms.PolicyForm(request.POST, prefix="policy")
        shown["policy_form"] = policy_form
        if not policy_form.is_valid():
            return None
        values = dict(policy_form.cleaned_data)
        if request.POST.get("preview"):
            shown["preview"] = _preview(actor, scope, Policy(**values))
            return None
        policy_actions.policy_set(values=values, **scope.filter)
        messages.success(request, "Saved the policy.")
        return here
    return None


def _preview(actor: Actor, scope: Scope, policy: Policy) -> list[Removal]:
    """What the policy's retention would remove now, removing nothing."""
    if not policy.has_retention:
        return []
    if scope.repository is not None:
        return plan(scope.repository, policy)
    # An organisation's rules apply to its repositories that have none of their own.
    repositories = (
        visible_repositories(actor)
        .filter(namespace__organisation=scope.organisation)
        .select_related("namespace")
        .order_by("name")[:PREVIEW_REPOSITORIES]
    )
    own_rules = {
        p.repository_id
        for p in Policy.objects.filter(repository__in=list(repositories))
        if p.has_retention
    }
    removals: list[Removal] = []
    for repository in repositories:
        if repository.pk not in own_rules:
            removals += plan(repository, policy)
    return removals
