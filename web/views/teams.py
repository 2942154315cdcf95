"""Team pages: who is in a team and what it may do; managers (organisation owners and
team maintainers) change them through teams.actions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from teams import actions
from teams.models import Level, RepositoryGrant, Team
from teams.permissions import may_administer_repository, may_manage_team, visible_repositories
from web import forms
from web.access import actor_of, visible_organisation, visible_team
from web.views.common import (
    active_user,
    messages_of,
    posted_id,
    posted_user_to_remove,
    subject_label,
    unconfirmed,
)
from web.views.errors import forbidden_page


@require_http_methods(["GET", "POST"])
def team(request: HttpRequest, org: str, name: str) -> HttpResponse:
    actor = actor_of(request)
    found_org = visible_organisation(actor, org)
    found = visible_team(actor, found_org, name)
    manager = may_manage_team(actor, found)
    shown: dict[str, Any] = {
        "member_form": forms.TeamMemberForm(prefix="member"),
        "grant_form": forms.GrantForm(prefix="grant"),
        "edit_form": forms.TeamEditForm(
            prefix="edit",
            initial={
                "name": found.name,
                "description": found.description,
                "may_create": found.may_create_repositories,
            },
        ),
    }
    if request.method == "POST":
        if not manager:
            return forbidden_page(
                request, f"Only owners of {org} and maintainers of {name} may change this team."
            )
        answer = _team_post(request, actor, found, shown)
        if answer is not None:
            return answer
    visible = visible_repositories(actor).values("pk")
    context = {
        "organisation": found_org,
        "team": found,
        "is_manager": manager,
        "members": found.members.select_related("user").order_by("user__username"),
        "grants": RepositoryGrant.objects.filter(team=found, repository__in=visible)
        .select_related("repository")
        .order_by("repository__name"),
        **shown,
    }
    return render(request, "web/team.html", context)


def _team_post(
    request: HttpRequest, actor: Any, team: Team, shown: dict[str, Any]
) -> HttpResponse | None:
    """Handle one of a manager's forms: an answer, or None with the form to show again
    (with its errors) put in `shown`."""
    here = redirect(reverse("web:team", args=[team.organisation.name, team.name]))
    what = request.POST.get("form")
    if what == "edit":
        form = forms.TeamEditForm(request.POST, prefix="edit")
        shown["edit_form"] = form
        if form.is_valid():
            try:
                actions.team_update(
                    team=team,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    may_create=form.cleaned_data["may_create"],
                )
            except ValidationError as exc:
                form.add_error("name", messages_of(exc))
                team.refresh_from_db()
                return None
            messages.success(request, f"Saved the team {team.name}.")
            return redirect(reverse("web:team", args=[team.organisation.name, team.name]))
        return None
    if what == "delete":
        asked = unconfirmed(
            request,
            f"Delete the team {team.name}?",
            "Its members stay in the organisation but lose what the team grants; "
            "its repository grants go with it.",
        )
        if asked is not None:
            return asked
        actions.team_delete(team=team)
        messages.success(request, f"Deleted the team {team.name}.")
        return redirect(reverse("web:organisation", args=[team.organisation.name]))
    if what == "member":
        member_form = forms.TeamMemberForm(request.POST, prefix="member")
        shown["member_form"] = member_form
        if member_form.is_valid():
            user = active_user(member_form.cleaned_data["username"])
            if user is None:
                member_form.add_error("username", "There is no user of that name.")
                return None
            actions.team_member_set(team=team, user=user, role=member_form.cleaned_data["role"])
            messages.success(request, f"Added {user.username} to {team.name}.")
            return here
        return None
    if what == "remove-member":
        user, asked = posted_user_to_remove(
            request,
            f"Remove {{user}} from the team {team.name}?",
            "They stay in the organisation but lose what this team grants.",
        )
        if asked is not None:
            return asked
        if user is not None:
            actions.team_member_remove(team=team, user=user)
            messages.success(request, f"Removed {user.username} from {team.name}.")
        return here
    if what == "grant":
        grant_form = forms.GrantForm(request.POST, prefix="grant")
        shown["grant_form"] = grant_form
        if grant_form.is_valid() and _grant(request, actor, team, grant_form):
            return here
        return None
    if what == "revoke-grant":
        return _revoke_team_grant(request, actor, team) or here
    messages.error(request, "Unknown form.")
    return here


def _grant(request: HttpRequest, actor: Any, team: Team, form: forms.GrantForm) -> bool:
    name = form.cleaned_data["repository"].strip()
    repository = visible_repositories(actor).select_related("namespace").filter(name=name).first()
    if repository is None or not may_administer_repository(actor, repository):
        form.add_error("repository", "You administer no repository of that name.")
        return False
    level = int(form.cleaned_data["level"])
    try:
        actions.grant_set(repository=repository, level=level, team=team)
    except ValidationError as exc:
        form.add_error("repository", messages_of(exc))
        return False
    if level == Level.NONE:
        messages.success(request, f"{team.name} no longer has a grant on {name}.")
    else:
        messages.success(request, f"{team.name} may now {Level(level).label} {name}.")
    return True


def _revoke_team_grant(request: HttpRequest, actor: Any, team: Team) -> HttpResponse | None:
    grant = (
        RepositoryGrant.objects.select_related("repository__namespace", "team")
        .filter(team=team, pk=posted_id(request))
        .first()
    )
    if grant is None or not may_administer_repository(actor, grant.repository):
        messages.error(request, "You administer no such grant.")
        return None
    asked = unconfirmed(
        request,
        f"Revoke {subject_label(grant)}'s grant on {grant.repository.name}?",
        f"Its members lose {grant.get_level_display()} access that this grant gave them.",
    )
    if asked is not None:
        return asked
    actions.grant_set(repository=grant.repository, level=Level.NONE, team=team)
    messages.success(request, f"{team.name} no longer has a grant on {grant.repository.name}.")
    return None
