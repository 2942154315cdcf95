"""Helpers for the management API tests: who calls, with which credentials."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.test import Client

from accounts.actions import token_create
from tests.people import PASSWORD, People

ALICE_TOKEN_SCOPES = [{"repository": "acme/**", "actions": ["pull", "push", "delete"]}]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def credentials(people: People, who: str) -> dict[str, str]:
    """Client keyword arguments that sign in as `who`."""
    if who == "anonymous":
        return {}
    if who == "robot":
        return {"HTTP_AUTHORIZATION": basic(people.robot.username, people.robot_secret)}
    if who == "alice-token":
        _, secret = token_create(name="t", user=people.alice, scopes=ALICE_TOKEN_SCOPES)
        return {"HTTP_AUTHORIZATION": basic("alice", secret)}
    return {"HTTP_AUTHORIZATION": basic(who, PASSWORD)}


def call(
    client: Client,
    method: str,
    url: str,
    data: Any = None,
    auth: dict[str, str] | None = None,
) -> Any:
    kwargs: dict[str, Any] = dict(auth or {})
    if data is not None:
        kwargs["data"] = json.dumps(data)
        kwargs["content_type"] = "application/json"
    return getattr(client, method.lower())(url, **kwargs)


def as_(client: Client, people: People, who: str, method: str, url: str, data: Any = None) -> Any:
    return call(client, method, url, data, credentials(people, who))
