"""Personal settings: profile links and personal access tokens (accounts.actions)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.actions import token_create, token_revoke
from accounts.models import AccessToken
from web.access import actor_of
from web.forms import TokenForm


@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/settings.html")


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user = actor_of(request).user
    form = TokenForm(request.POST or None)
    secret = ""
    if request.method == "POST" and form.is_valid():
        try:
            _, secret = token_create(
                name=form.cleaned_data["name"],
                user=user,
                scopes=form.cleaned_data["scopes"],
                expires_at=form.cleaned_data["expires_at"],
            )
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            form = TokenForm()
    own = (
        AccessToken.objects.filter(user=user, parent__isnull=True)
        .order_by("-created_at")
        .select_related("parent")
    )
    response = render(request, "web/tokens.html", {"form": form, "tokens": own, "secret": secret})
    if secret:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke_page(request: HttpRequest, token_id: int) -> HttpResponse:
    token = AccessToken.objects.filter(pk=token_id, user=actor_of(request).user).first()
    if token is None:
        raise Http404("no such token")
    if request.method == "POST":
        token_revoke(token=token)
        messages.success(request, f"Revoked the token {token.name}.")
        return redirect(reverse("web:tokens"))
    return render(request, "web/token_revoke.html", {"token": token})
