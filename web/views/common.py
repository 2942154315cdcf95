"""What several pages' forms share: confirmations, looking people up, grant subjects."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Robot
from teams.models import Organisation, Team


def active_user(username: str) -> Any:
    return get_user_model().objects.filter(username=username.strip(), is_active=True).first()


def posted_id(request: HttpRequest) -> int:
    """The `id` a row's button posts (0, which no row has, when it is not a number)."""
    given = str(request.POST.get("id", ""))
    return int(given) if given.isdigit() else 0


def messages_of(exc: ValidationError) -> str:
    return " ".join(str(m) for m in exc.messages)


def unconfirmed(request: HttpRequest, title: str, text: str) -> HttpResponse | None:
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


def posted_user_to_remove(
    request: HttpRequest, question: str, consequence: str
) -> tuple[Any, HttpResponse | None]:
    """The active user a remove-member form posts (None if there is none of that name),
    and the confirmation page to answer first (None once confirmed); `question` names
    them as {user}."""
    user = active_user(request.POST.get("username", ""))
    if user is None:
        return None, None
    return user, unconfirmed(request, question.replace("{user}", user.username), consequence)


def grant_subject(kind: str, name: str, organisation: Organisation | None) -> dict[str, Any] | None:
    """The user, team or robot a grant form names (team and robot: of `organisation`),
    as grant_set's keyword arguments; None if there is none of that name."""
    name = name.strip()
    if kind == "user":
        user = active_user(name)
        return None if user is None else {"user": user}
    if organisation is None:
        return None
    if kind == "team":
        team = Team.objects.filter(organisation=organisation, name=name).first()
        return None if team is None else {"team": team}
    if kind == "robot":
        short = name.removeprefix(f"{organisation.name}+")
        robot = (
            Robot.objects.select_related("organisation")
            .filter(organisation=organisation, name=short)
            .first()
        )
        return None if robot is None else {"robot": robot}
    return None


def subject_label(grant: Any) -> str:
    """How a grant's subject is named on a confirmation page."""
    if grant.team_id is not None:
        return f"the team {grant.team.name}"
    if grant.robot_id is not None:
        return f"the robot {grant.robot.username}"
    return str(grant.user.username)
