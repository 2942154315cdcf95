"""Organisation and team pages; writes go through teams.actions (which record audit events)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.models import Robot
from teams import actions
from teams.config.status import config_status
from teams.models import DefaultGrant, Level, Membership, Organisation, Team
from teams.permissions import (
    may_manage_organisation,
    visible_repositories,
)
from web import forms
from web.access import actor_of, visible_organisation
from web.views import operations
from web.views.common import (
    active_user,
    grant_subject,
    messages_of,
    posted_id,
    posted_user_to_remove,
    unconfirmed,
)
from web.views.errors import forbidden_page


@login_required
@require_http_methods(["GET", "POST"])
def organisation_new(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    form = forms.OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = actions.organisation_create(
                name=form.cleaned_data["name"],
                owner=actor.user,
                display_name=form.cleaned_data["display_name"],
                description=form.cleaned_data["description"],
            )
        except (ValidationError, IntegrityError) as exc:
            text = messages_of(exc) if isinstance(exc, ValidationError) else "That name is taken."
            form.add_error("name", text)
        else:
            messages.success(request, f"Created the organisation {org.name}.")
            return redirect(reverse("web:organisation", args=[org.name]))
    return render(request, "web/organisation_new.html", {"form": form})


@require_http_methods(["GET", "POST"])
def organisation(request: HttpRequest, org: str) -> HttpResponse:
    actor = actor_of(request)
    found = visible_organisation(actor, org)
    owner = may_manage_organisation(actor, found)
    member_form = forms.MemberForm(prefix="member")
    team_form = forms.TeamForm(prefix="team")
    if request.method == "POST":
        if not owner:
            return forbidden_page(request, f"Only owners of {found.name} may change it.")
        done, member_form, team_form = _organisation_post(request, found, member_form, team_form)
        if done is not None:
            return done
    context = {
        "organisation": found,
        "config": config_status(found),
        "is_owner": owner,
        "members": Membership.objects.filter(organisation=found)
        .select_related("user")
        .order_by("user__username"),
        "teams": Team.objects.filter(organisation=found).order_by("name"),
        "repositories": visible_repositories(actor)
        .filter(namespace__organisation=found)
        .order_by("name"),
        "robots": Robot.objects.filter(organisation=found).order_by("name") if owner else [],
        "default_grants": DefaultGrant.objects.filter(organisation=found).select_related(
            "user", "team", "robot"
        )
        if owner
        else [],
        "member_form": member_form,
        "team_form": team_form,
        "default_form": forms.SubjectGrantForm(prefix="default"),
        "settings_form": forms.OrganisationSettingsForm(
            initial={"display_name": found.display_name, "description": found.description}
        ),
    }
    return render(request, "web/organisation.html", context)


def _organisation_post(
    request: HttpRequest, org: Organisation, member_form: Any, team_form: Any
) -> tuple[HttpResponse | None, Any, Any]:
    """Handle one of the owner's forms: a redirect, or the forms to show again with errors."""
    here = redirect(reverse("web:organisation", args=[org.name]))
    what = request.POST.get("form")
    if what == "member":
        form = forms.MemberForm(request.POST, prefix="member")
        if form.is_valid():
            user = active_user(form.cleaned_data["username"])
            if user is None:
                form.add_error("username", "There is no user of that name.")
            else:
                try:
                    actions.membership_set(
                        organisation=org, user=user, role=form.cleaned_data["role"]
                    )
                except ValidationError:
                    form.add_error("role", "This is the last owner: make someone else owner first.")
                    return None, form, team_form
                messages.success(request, f"{user.username} is now a {form.cleaned_data['role']}.")
                return here, form, team_form
        return None, form, team_form
    if what == "remove-member":
        user, asked = posted_user_to_remove(
            request,
            f"Remove {{user}} from {org.name}?",
            "They leave every team of the organisation and lose what those teams grant.",
        )
        if asked is not None:
            return asked, member_form, team_form
        if user is not None:
            try:
                actions.membership_remove(organisation=org, user=user)
            except ValidationError:
                messages.error(request, "The last owner cannot leave; make someone else owner.")
            else:
                messages.success(request, f"Removed {user.username} from {org.name}.")
        return here, member_form, team_form
    if what == "team":
        new_team = forms.TeamForm(request.POST, prefix="team")
        if new_team.is_valid():
            if Team.objects.filter(organisation=org, name=new_team.cleaned_data["name"]).exists():
                new_team.add_error("name", f"{org.name} already has a team of that name.")
            else:
                team = actions.team_create(
                    organisation=org,
                    name=new_team.cleaned_data["name"],
                    description=new_team.cleaned_data["description"],
                )
                messages.success(request, f"Created the team {team.name}.")
                return (
                    redirect(reverse("web:team", args=[org.name, team.name])),
                    member_form,
                    new_team,
                )
        return None, member_form, new_team
    if what == "default-grant":
        default_form = forms.SubjectGrantForm(request.POST, prefix="default")
        subject = None
        if default_form.is_valid():
            data = default_form.cleaned_data
            subject = grant_subject(data["kind"], data["name"], org)
        if subject is None:
            messages.error(request, f"{org.name} has no such user, team or robot: nothing added.")
        else:
            level = int(default_form.cleaned_data["level"])
            actions.default_grant_add(organisation=org, level=level, **subject)
            messages.success(request, f"New repositories will grant {Level(level).label}.")
        return here, member_form, team_form
    if what == "remove-default-grant":
        default = DefaultGrant.objects.filter(organisation=org, pk=posted_id(request))
        found = default.select_related("organisation", "user", "team", "robot").first()
        if found is not None:
            asked = unconfirmed(
                request,
                "Remove this default grant?",
                "Repositories created from now on will not get it; existing grants stay.",
            )
            if asked is not None:
                return asked, member_form, team_form
            actions.default_grant_remove(default_grant=found)
            messages.success(request, "Removed the default grant (existing grants stay).")
        return here, member_form, team_form
    if what == "settings":
        settings_form = forms.OrganisationSettingsForm(request.POST)
        if settings_form.is_valid():
            actions.organisation_update(
                organisation=org,
                display_name=settings_form.cleaned_data["display_name"],
                description=settings_form.cleaned_data["description"],
            )
            messages.success(request, f"Saved the settings of {org.name}.")
        return here, member_form, team_form
    messages.error(request, "Unknown form.")
    return here, member_form, team_form


@require_http_methods(["GET", "POST"])
def organisation_operations(request: HttpRequest, org: str) -> HttpResponse:
    """The organisation's webhooks and policies, for all its repositories (owners)."""
    actor = actor_of(request)
    found = visible_organisation(actor, org)
    if not may_manage_organisation(actor, found):
        return forbidden_page(
            request, f"Only owners of {found.name} manage its webhooks and policies."
        )
    scope = operations.Scope(
        url=reverse("web:organisation-operations", args=[found.name]), organisation=found
    )
    shown: dict[str, Any] = {}
    if request.method == "POST":
        answer = operations.handle(request, actor, scope, shown)
        if answer is not None:
            return answer
    return render(
        request,
        "web/organisation_operations.html",
        {"organisation": found, **operations.context(scope, shown)},
    )
