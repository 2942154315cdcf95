"""A repository's settings page, for its administrators: description and visibility,
who may do what (grants to users, teams and robots), and its operations policies."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from registry.models import Repository
from teams import actions
from teams.models import Level, RepositoryGrant
from teams.permissions import Actor
from web import forms
from web.access import actor_of, readable_repository
from web.views import operations
from web.views.common import grant_subject, messages_of, posted_id, subject_label, unconfirmed
from web.views.errors import forbidden_page


@require_http_methods(["GET", "POST"])
def repository_settings(request: HttpRequest, name: str) -> HttpResponse:
    actor = actor_of(request)
    repo, level = readable_repository(actor, name)
    if level < Level.ADMIN:
        return forbidden_page(
            request, f"Only administrators of {repo.name} may change its settings."
        )
    full = Repository.objects.select_related("namespace__organisation").get(pk=repo.pk)
    here = reverse("web:repository-settings", args=[full.name])
    scope = operations.Scope(url=here, repository=full)
    initial = {"description": full.description, "visibility": full.visibility}
    shown: dict[str, Any] = {
        "form": forms.RepositorySettingsForm(initial=initial),
        "grant_form": forms.SubjectGrantForm(prefix="grant"),
    }
    if request.method == "POST":
        what = request.POST.get("form", "settings")
        if what in operations.FORMS:
            answer = operations.handle(request, actor, scope, shown)
        else:
            answer = _post(request, actor, full, what, shown)
        if answer is not None:
            return answer
    grants = (
        RepositoryGrant.objects.filter(repository=full)
        .select_related("user", "team__organisation", "robot__organisation")
        .order_by("team__name", "user__username", "robot__name")
    )
    context = {
        "repository": full,
        "grants": grants,
        "is_org": full.namespace is not None and full.namespace.organisation_id is not None,
        **shown,
        **operations.context(scope, shown),
    }
    return render(request, "web/repository_settings.html", context)


def _post(
    request: HttpRequest, actor: Actor, repository: Repository, what: str, shown: dict[str, Any]
) -> HttpResponse | None:
    here = redirect(reverse("web:repository-settings", args=[repository.name]))
    if what == "settings":
        form = forms.RepositorySettingsForm(request.POST)
        shown["form"] = form
        if not form.is_valid():
            return None
        actions.repository_update(
            repository=repository,
            description=form.cleaned_data["description"],
            visibility=form.cleaned_data["visibility"],
        )
        messages.success(request, f"Saved the settings of {repository.name}.")
        return redirect(reverse("web:repository", args=[repository.name]))
    if what == "grant":
        grant_form = forms.SubjectGrantForm(request.POST, prefix="grant")
        shown["grant_form"] = grant_form
        if grant_form.is_valid() and _grant(request, repository, grant_form):
            return here
        return None
    if what == "revoke-grant":
        grant = (
            RepositoryGrant.objects.select_related("user", "team", "robot__organisation")
            .filter(repository=repository, pk=posted_id(request))
            .first()
        )
        if grant is not None:
            who = subject_label(grant)
            asked = unconfirmed(
                request,
                f"Revoke {who}'s {grant.get_level_display()} grant on {repository.name}?",
                "They keep only what other grants, their teams or the repository's "
                "visibility give them.",
            )
            if asked is not None:
                return asked
            subject: dict[str, Any] = {"user": grant.user, "team": grant.team, "robot": grant.robot}
            actions.grant_set(
                repository=repository,
                level=Level.NONE,
                **{k: v for k, v in subject.items() if v is not None},
            )
            messages.success(request, f"Revoked {who}'s grant on {repository.name}.")
        return here
    messages.error(request, "Unknown form.")
    return here


def _grant(request: HttpRequest, repository: Repository, form: forms.SubjectGrantForm) -> bool:
    data = form.cleaned_data
    namespace = repository.namespace
    organisation = namespace.organisation if namespace is not None else None
    subject = grant_subject(data["kind"], data["name"], organisation)
    if subject is None:
        where = f" in {organisation.name}" if organisation is not None else ""
        form.add_error("name", f"There is no {data['kind']} of that name{where}.")
        return False
    level = int(data["level"])
    try:
        actions.grant_set(repository=repository, level=level, **subject)
    except ValidationError as exc:
        form.add_error("name", messages_of(exc))
        return False
    messages.success(
        request, f"{data['name'].strip()} may now {Level(level).label} {repository.name}."
    )
    return True
