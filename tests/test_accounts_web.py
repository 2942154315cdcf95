"""Sign-up, sign-in, sign-out, password reset, e-mail verification and two-factor (allauth)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from teams.models import Namespace
from tests.people import PASSWORD, People

pytestmark = pytest.mark.django_db


def _signup(client: Client, username: str, **extra: str) -> Any:
    return client.post(
        "/accounts/signup/",
        {
            "username": username,
            "email": extra.get("email", f"{username}@example.com"),
            "password1": "a-long-enough-password-1",
            "password2": "a-long-enough-password-1",
        },
    )


def test_it_signs_up_and_gives_the_user_a_namespace(
    client: Client, django_user_model: Any, fast_passwords: None
) -> None:
    response = _signup(client, "dora")
    assert response.status_code == 302, response.content[:500]
    user = django_user_model.objects.get(username="dora")
    assert Namespace.objects.get(name="dora").user == user
    # E-mail verification is sent (console backend by default).
    assert any("dora@example.com" in m.to for m in mail.outbox)


@pytest.mark.parametrize("username", ["Upper", "-dash", "under__", "a/b", "x" * 65])
def test_it_refuses_usernames_that_are_not_namespaces(
    client: Client, django_user_model: Any, username: str, fast_passwords: None
) -> None:
    response = _signup(client, username, email="x@example.com")
    if response.status_code == 302:
        # Allowed only after lower-casing, which must then fit the grammar.
        created = django_user_model.objects.get()
        assert created.username == username.lower()
        assert Namespace.objects.filter(name=created.username).exists()
    else:
        assert response.status_code == 200
        assert not django_user_model.objects.exists()


def test_it_refuses_a_username_taken_by_an_organisation(client: Client, people: People) -> None:
    response = _signup(client, "acme", email="acme@example.com")
    assert response.status_code == 200
    assert b"taken" in response.content


def test_it_can_close_sign_up(client: Client, settings: Any, django_user_model: Any) -> None:
    settings.HUB_SIGNUP_OPEN = False
    _signup(client, "eve")
    assert not django_user_model.objects.filter(username="eve").exists()


def test_it_signs_in_and_out(client: Client, people: People) -> None:
    response = client.post("/accounts/login/", {"login": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(people.bob.pk)
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session


def test_it_refuses_a_wrong_password(client: Client, people: People) -> None:
    response = client.post("/accounts/login/", {"login": "bob", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_it_rate_limits_failed_sign_ins(client: Client, people: People, settings: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/5m/key"}
    for _ in range(3):
        client.post("/accounts/login/", {"login": "bob", "password": "nope"})
    response = client.post("/accounts/login/", {"login": "bob", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code in (200, 429)


def test_it_sends_a_password_reset(client: Client, people: People) -> None:
    response = client.post("/accounts/password/reset/", {"email": "bob@example.com"})
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_it_turns_on_totp_and_then_asks_for_it(client: Client, people: People) -> None:
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import (
        TOTP,
        format_hotp_value,
        generate_totp_secret,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    secret = generate_totp_secret()
    TOTP.activate(people.bob, secret)
    assert Authenticator.objects.filter(user=people.bob, type="totp").exists()
    response = client.post("/accounts/login/", {"login": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert "/2fa/authenticate" in response["Location"]
    assert "_auth_user_id" not in client.session
    code = format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))
    response = client.post(response["Location"], {"code": code})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(people.bob.pk)


def test_it_asks_two_factor_accounts_for_tokens_not_passwords(people: People) -> None:
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from tests.conftest import basic_auth

    TOTP.activate(people.bob, generate_totp_secret())
    response = Client(HTTP_AUTHORIZATION=basic_auth("bob", PASSWORD)).get("/v2/")
    assert response.status_code == 401
    assert b"access token" in response.content


def test_it_offers_openid_connect_when_configured(client: Client, settings: Any) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": [
                {
                    "provider_id": "corp",
                    "name": "Corp SSO",
                    "client_id": "hub",
                    "secret": "s3cret",
                    "settings": {"server_url": "https://sso.example.com"},
                }
            ]
        }
    }
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Corp SSO" in response.content
