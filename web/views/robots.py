"""Robot accounts of an organisation (owners only): create, tokens shown once, revoke, disable."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import actions
from accounts.models import Robot
from teams.models import Organisation
from teams.permissions import may_manage_organisation
from web.access import actor_of, visible_organisation
from web.forms import RobotForm, RobotTokenForm
from web.views.errors import forbidden_page


def _managed(request: HttpRequest, org: str) -> Organisation | HttpResponse:
    organisation = visible_organisation(actor_of(request), org)
    if not may_manage_organisation(actor_of(request), organisation):
        return forbidden_page(request, f"Only owners of {organisation.name} manage its robots.")
    return organisation


def _robot(organisation: Organisation, name: str) -> Robot:
    robot = Robot.objects.select_related("organisation").filter(
        organisation=organisation, name=name
    )
    found = robot.first()
    if found is None:
        raise Http404("no such robot")
    return found


@require_http_methods(["GET", "POST"])
def robot_new(request: HttpRequest, org: str) -> HttpResponse:
    organisation = _managed(request, org)
    if isinstance(organisation, HttpResponse):
        return organisation
    form = RobotForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            robot = actions.robot_create(
                organisation=organisation,
                name=form.cleaned_data["name"],
                created_by=actor_of(request).user,
                description=form.cleaned_data["description"],
                may_create=form.cleaned_data["may_create"],
            )
        except ValidationError as exc:
            form.add_error("name", " ".join(exc.messages))
        else:
            messages.success(request, f"Created the robot {robot.username}; now give it a token.")
            return redirect(reverse("web:robot", args=[organisation.name, robot.name]))
    return render(request, "web/robot_new.html", {"organisation": organisation, "form": form})


@require_http_methods(["GET", "POST"])
def robot(request: HttpRequest, org: str, name: str) -> HttpResponse:
    organisation = _managed(request, org)
    if isinstance(organisation, HttpResponse):
        return organisation
    found = _robot(organisation, name)
    form = RobotTokenForm(request.POST or None)
    secret = ""
    if request.method == "POST" and form.is_valid():
        if found.disabled_at is not None:
            form.add_error(None, f"{found.username} is disabled: it cannot have new tokens.")
        else:
            days = int(form.cleaned_data["expires"])
            _, secret = actions.token_create(
                name=form.cleaned_data["name"],
                robot=found,
                expires_at=timezone.now() + timedelta(days=days),
            )
            form = RobotTokenForm()
    response = render(
        request,
        "web/robot.html",
        {
            "organisation": organisation,
            "robot": found,
            "tokens": found.tokens.order_by("-created_at"),
            "grants": found.repository_grants.select_related("repository").order_by(
                "repository__name"
            ),
            "form": form,
            "secret": secret,
        },
    )
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def robot_token_revoke(request: HttpRequest, org: str, name: str, token_id: int) -> HttpResponse:
    organisation = _managed(request, org)
    if isinstance(organisation, HttpResponse):
        return organisation
    found = _robot(organisation, name)
    token = found.tokens.filter(pk=token_id).first()
    if token is None:
        raise Http404("no such token")
    if request.method == "POST":
        actions.token_revoke(token=token)
        messages.success(request, f"Revoked the token {token.name} of {found.username}.")
        return redirect(reverse("web:robot", args=[organisation.name, found.name]))
    return render(
        request,
        "web/confirm.html",
        {
            "title": f"Revoke the token {token.name} of {found.username}?",
            "text": f"Anything signing in with {token.prefix}… (CI jobs) will be refused.",
            "button": "Revoke the token",
            "cancel": reverse("web:robot", args=[organisation.name, found.name]),
        },
    )


@require_http_methods(["GET", "POST"])
def robot_disable(request: HttpRequest, org: str, name: str) -> HttpResponse:
    organisation = _managed(request, org)
    if isinstance(organisation, HttpResponse):
        return organisation
    found = _robot(organisation, name)
    here = reverse("web:robot", args=[organisation.name, found.name])
    if request.method == "POST":
        if found.disabled_at is None:
            actions.robot_disable(robot=found)
            messages.success(request, f"Disabled {found.username}: its tokens stop working.")
        return redirect(here)
    return render(
        request,
        "web/confirm.html",
        {
            "title": f"Disable {found.username}?",
            "text": "Its tokens stop working at once, and it cannot be given new ones.",
            "button": "Disable the robot",
            "cancel": here,
        },
    )
