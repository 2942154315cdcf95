"""Every role x action x visibility on the registry routes, as the clients meet it over HTTP."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.conftest import basic_auth
from tests.helpers import body, push_image
from tests.people import PASSWORD, People
from tests.test_permissions import TABLE

pytestmark = pytest.mark.django_db


def _client(people: People, who: str) -> Client:
    if who == "anonymous":
        return Client()
    if who == "robot":
        return Client(HTTP_AUTHORIZATION=basic_auth("acme+ci", people.robot_secret))
    return Client(HTTP_AUTHORIZATION=basic_auth(who, PASSWORD))


@pytest.fixture
def images(people: People) -> dict[str, str]:
    admin = Client(HTTP_AUTHORIZATION=basic_auth("admin", PASSWORD))
    return {
        name: push_image(admin, name, "v1", layers=(name.encode(),))[1]
        for name in ("acme/private", "acme/public", "alice/own")
    }


def _attempt(client: Client, action: str, name: str, digest: str) -> int:
    if action == "pull":
        return client.get(f"/v2/{name}/manifests/v1").status_code
    if action == "push":
        return client.post(f"/v2/{name}/blobs/uploads/").status_code
    return client.delete(f"/v2/{name}/manifests/{digest}").status_code


@pytest.mark.parametrize("action", ["pull", "push", "delete"])
@pytest.mark.parametrize(("who", "name", "allowed"), TABLE)
def test_it_answers_each_role_action_and_visibility(
    people: People, images: dict[str, str], who: str, name: str, allowed: set[str], action: str
) -> None:
    status = _attempt(_client(people, who), action, name, images[name])
    if action in allowed:
        assert status == {"pull": 200, "push": 202, "delete": 202}[action]
    elif who == "anonymous":
        assert status == 401  # challenged, so a client can sign in and try again
    elif "pull" in allowed:
        assert status == 403  # may read, may not do this: DENIED
    else:
        # May not even read: exactly what a repository that does not exist answers.
        missing = _attempt(_client(people, who), action, "acme/missing", images[name])
        assert status == missing == {"pull": 404, "push": 403, "delete": 404}[action]


def test_it_lists_tags_only_for_readers(people: People, images: dict[str, str]) -> None:
    for who, name, allowed in TABLE:
        response = _client(people, who).get(f"/v2/{name}/tags/list")
        if "pull" in allowed:
            assert json.loads(body(response))["tags"] == ["v1"], (who, name)
        else:
            assert response.status_code in (401, 404), (who, name)
