"""Organisation and team pages; writes go through teams.actions (which record audit events)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
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
from teams.models import DefaultGrant, Level, Membership, Organisation, RepositoryGrant, Team
from teams.permissions import (
    may_administer_repository,
    may_manage_organisation,
    may_manage_team,
    visible_repositories,
)
from web import forms
from web.access import actor_of, visible_organisation, visible_team


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "403.html", {"reason": reason}, status=403)


def _user(username: str) -> Any:
    return get_user_model().objects.filter(username=username.strip(), is_active=True).first()


def _messages(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def _unconfirmed(request: HttpRequest, title: str, text: str) -> HttpResponse | None:
    """A destructive form posts twice: first it answers with a confirmation page, whose
    form posts the same fields again with confirmed=yes."""
    if request.POST.get("confirmed") == "yes":
        return None
    fields = [(k, v) for k, v in request.POST.items() if k != "csrfmiddlewaretoken"]
    context = {
        "title": title,
        "text": text,
        "button": "Yes, " + title[0].lower() + title[1:].rstrip("?"),
        "cancel": request.path,
        "fields": [*fields, ("confirmed", "yes")],
    }
    return render(request, "web/confirm.html", context)


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
            text = _messages(exc) if isinstance(exc, ValidationError) else "That name is taken."
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
            return _forbidden(request, f"Only owners of {found.name} may change it.")
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
        "default_form": forms.DefaultGrantForm(prefix="default"),
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
            user = _user(form.cleaned_data["username"])
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
        user = _user(request.POST.get("username", ""))
        if user is not None:
            asked = _unconfirmed(
                request,
                f"Remove {user.username} from {org.name}?",
                "They leave every team of the organisation and lose what those teams grant.",
            )
            if asked is not None:
                return asked, member_form, team_form
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
        default_form = forms.DefaultGrantForm(request.POST, prefix="default")
        granted: Team | None = None
        if default_form.is_valid():
            name = default_form.cleaned_data["team"]
            granted = Team.objects.filter(organisation=org, name=name).first()
        if granted is None:
            messages.error(request, f"{org.name} has no such team: no default grant added.")
        else:
            level = int(default_form.cleaned_data["level"])
            actions.default_grant_add(organisation=org, level=level, team=granted)
            messages.success(
                request, f"New repositories will grant {granted.name} {Level(level).label}."
            )
        return here, member_form, team_form
    if what == "remove-default-grant":
        given = str(request.POST.get("id", ""))
        default = DefaultGrant.objects.filter(
            organisation=org, pk=int(given) if given.isdigit() else 0
        )
        found = default.select_related("organisation", "user", "team", "robot").first()
        if found is not None:
            asked = _unconfirmed(
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
def team(request: HttpRequest, org: str, name: str) -> HttpResponse:
    actor = actor_of(request)
    found_org = visible_organisation(actor, org)
    found = visible_team(actor, found_org, name)
    manager = may_manage_team(actor, found)
    member_form = forms.TeamMemberForm(prefix="member")
    grant_form = forms.GrantForm(prefix="grant")
    if request.method == "POST":
        if not manager:
            return _forbidden(
                request, f"Only owners of {org} and maintainers of {name} may change this team."
            )
        here = redirect(reverse("web:team", args=[org, name]))
        what = request.POST.get("form")
        if what == "member":
            member_form = forms.TeamMemberForm(request.POST, prefix="member")
            if member_form.is_valid():
                user = _user(member_form.cleaned_data["username"])
                if user is None:
                    member_form.add_error("username", "There is no user of that name.")
                else:
                    actions.team_member_set(
                        team=found, user=user, role=member_form.cleaned_data["role"]
                    )
                    messages.success(request, f"Added {user.username} to {found.name}.")
                    return here
        elif what == "remove-member":
            user = _user(request.POST.get("username", ""))
            if user is not None:
                asked = _unconfirmed(
                    request,
                    f"Remove {user.username} from the team {found.name}?",
                    "They stay in the organisation but lose what this team grants.",
                )
                if asked is not None:
                    return asked
                actions.team_member_remove(team=found, user=user)
                messages.success(request, f"Removed {user.username} from {found.name}.")
            return here
        elif what == "grant":
            grant_form = forms.GrantForm(request.POST, prefix="grant")
            if grant_form.is_valid() and _grant(request, actor, found, grant_form):
                return here
    visible = visible_repositories(actor).values("pk")
    context = {
        "organisation": found_org,
        "team": found,
        "is_manager": manager,
        "members": found.members.select_related("user").order_by("user__username"),
        "grants": RepositoryGrant.objects.filter(team=found, repository__in=visible)
        .select_related("repository")
        .order_by("repository__name"),
        "member_form": member_form,
        "grant_form": grant_form,
    }
    return render(request, "web/team.html", context)


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
        form.add_error("repository", _messages(exc))
        return False
    if level == Level.NONE:
        messages.success(request, f"{team.name} no longer has a grant on {name}.")
    else:
        messages.success(request, f"{team.name} may now {Level(level).label} {name}.")
    return True
