"""Each registry write, pull and refusal leaves exactly its audit event; failures leave none."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import Event
from tests.audit_support import actions_after, assert_fields, events_after, mark
from tests.conftest import basic_auth
from tests.helpers import (
    body,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
    start_upload,
    with_query,
)
from tests.people import PASSWORD, People

pytestmark = pytest.mark.django_db


def as_user(who: str, password: str = PASSWORD, **extra: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(who, password), **extra)


def as_robot(people: People) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(people.robot.username, people.robot_secret))


ALICE = {"actor_kind": "user", "actor_name": "alice", "auth_method": "password"}
ACME = {"chain": "org:acme", "organisation": "acme", "outcome": "success"}

# Each case does its setup, takes a mark, acts, and says which events must follow it.
Case = Callable[[People], tuple[int, list[dict[str, Any]]]]


def _monolithic_upload(people: People) -> tuple[int, list[dict[str, Any]]]:
    since = mark()
    digest = push_blob(as_user("alice"), "acme/private", b"a layer")
    return since, [
        {
            "action": "blob.upload",
            "repository": "acme/private",
            "digest": digest,
            "details": {"size": 7},
            **ALICE,
            **ACME,
        }
    ]


def _chunked_upload(people: People) -> tuple[int, list[dict[str, Any]]]:
    robot = as_robot(people)
    since = mark()
    location = start_upload(robot, "acme/private")
    robot.patch(location, b"chunk", content_type="application/octet-stream")
    digest = digest_of(b"chunk")
    response = robot.put(with_query(location, digest=digest))
    assert response.status_code == 201, body(response)
    expected = {"actor_kind": "robot", "actor_name": "acme+ci", "auth_method": "robot"}
    expected["token_id"] = people.robot.tokens.get().pk
    return since, [{"action": "blob.upload", "digest": digest, **expected, **ACME}]


def _mount(people: People) -> tuple[int, list[dict[str, Any]]]:
    alice = as_user("alice")
    digest = push_blob(alice, "acme/public", b"shared layer")
    since = mark()
    response = alice.post(f"/v2/acme/private/blobs/uploads/?mount={digest}&from=acme/public")
    assert response.status_code == 201
    return since, [
        {
            "action": "blob.mount",
            "repository": "acme/private",
            "digest": digest,
            "details": {"from": "acme/public"},
            **ALICE,
        }
    ]


def _push_new_tag(people: People) -> tuple[int, list[dict[str, Any]]]:
    alice = as_user("alice")
    content = image_manifest(alice, "acme/private", layers=(b"one",))
    since = mark()
    assert put_manifest(alice, "acme/private", "v1", content).status_code == 201
    return since, [
        {
            "action": "manifest.push",
            "tag": "v1",
            "digest": digest_of(content),
            "details": {"tags": ["v1"], "previous": {"v1": None}, "created": True},
            **ALICE,
            **ACME,
        }
    ]


def _move_tag(people: People) -> tuple[int, list[dict[str, Any]]]:
    alice = as_user("alice")
    _, old = push_image(alice, "acme/private", "v1", layers=(b"old",))
    content = image_manifest(alice, "acme/private", layers=(b"new",))
    since = mark()
    assert put_manifest(alice, "acme/private", "v1", content).status_code == 201
    new = digest_of(content)
    return since, [
        {
            "action": "manifest.push",
            "tag": "v1",
            "digest": new,
            "details": {"previous": {"v1": old}},
        },
        {"action": "tag.move", "tag": "v1", "digest": new, "details": {"previous_digest": old}},
    ]


def _pull_by_tag_with_a_bearer_token(people: People) -> tuple[int, list[dict[str, Any]]]:
    _, digest = push_image(as_user("alice"), "acme/private", "v1", layers=(b"x",))
    response = as_user("bob").get(
        "/auth/token", {"service": "hub", "scope": "repository:acme/private:pull"}
    )
    token = json.loads(response.content)["token"]
    since = mark()
    bob = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_USER_AGENT="docker/27")
    assert bob.get("/v2/acme/private/manifests/v1").status_code == 200
    assert bob.head("/v2/acme/private/manifests/v1").status_code == 200  # HEAD: no event
    return since, [
        {
            "action": "manifest.pull",
            "tag": "v1",
            "digest": digest,
            "actor_kind": "user",
            "actor_id": str(people.bob.pk),
            "actor_name": "bob",
            "auth_method": "bearer",
            "user_agent": "docker/27",
            **ACME,
        }
    ]


def _anonymous_pull_by_digest(people: People) -> tuple[int, list[dict[str, Any]]]:
    _, digest = push_image(as_user("alice"), "acme/public", "v1", layers=(b"y",))
    since = mark()
    assert Client().get(f"/v2/acme/public/manifests/{digest}").status_code == 200
    return since, [
        {
            "action": "manifest.pull",
            "tag": "",
            "digest": digest,
            "actor_kind": "anonymous",
            "auth_method": "anonymous",
        }
    ]


def _delete_tag(people: People) -> tuple[int, list[dict[str, Any]]]:
    _, digest = push_image(as_user("alice"), "acme/private", "v1", layers=(b"z",))
    since = mark()
    assert as_user("alice").delete("/v2/acme/private/manifests/v1").status_code == 202
    return since, [{"action": "tag.delete", "tag": "v1", "digest": digest, **ALICE, **ACME}]


def _delete_manifest(people: People) -> tuple[int, list[dict[str, Any]]]:
    _, digest = push_image(as_user("alice"), "acme/private", "v1", layers=(b"w",))
    since = mark()
    response = as_user("alice").delete(f"/v2/acme/private/manifests/{digest}")
    assert response.status_code == 202
    return since, [{"action": "manifest.delete", "digest": digest, "details": {"tags": ["v1"]}}]


def _delete_blob(people: People) -> tuple[int, list[dict[str, Any]]]:
    digest = push_blob(as_user("alice"), "acme/private", b"doomed")
    since = mark()
    assert as_user("alice").delete(f"/v2/acme/private/blobs/{digest}").status_code == 202
    return since, [{"action": "blob.delete", "digest": digest, **ALICE, **ACME}]


def _denied(people: People) -> tuple[int, list[dict[str, Any]]]:
    push_image(as_user("alice"), "acme/private", "v1", layers=(b"d",))
    since = mark()
    assert as_user("bob").delete("/v2/acme/private/manifests/v1").status_code == 403
    return since, [
        {
            "action": "request.denied",
            "outcome": "denied",
            "actor_name": "bob",
            "repository": "acme/private",
            "details": {"attempted": "delete", "status": 403, "method": "DELETE"},
        }
    ]


def _hidden(people: People) -> tuple[int, list[dict[str, Any]]]:
    since = mark()
    assert as_user("charlie").get("/v2/acme/private/manifests/v1").status_code == 404
    return since, [
        {
            "action": "request.denied",
            "outcome": "denied",
            "actor_name": "charlie",
            "chain": "org:acme",
            "details": {"attempted": "pull", "status": 404},
        }
    ]


def _wrong_password(people: People) -> tuple[int, list[dict[str, Any]]]:
    since = mark()
    assert as_user("bob", "wrong").get("/v2/acme/private/tags/list").status_code == 401
    return since, [
        {
            "action": "request.denied",
            "outcome": "failure",
            "actor_kind": "anonymous",
            "repository": "acme/private",
            "details": {"status": 401, "username": "bob"},
        }
    ]


def _anonymous_challenge(people: People) -> tuple[int, list[dict[str, Any]]]:
    since = mark()
    assert Client().get("/v2/acme/private/manifests/v1").status_code == 401
    return since, []  # no credentials sent: the challenge is not a refusal worth keeping


CASES: dict[str, Case] = {
    "monolithic upload": _monolithic_upload,
    "chunked upload by a robot": _chunked_upload,
    "mount": _mount,
    "push a new tag": _push_new_tag,
    "move a tag": _move_tag,
    "pull by tag with a bearer token": _pull_by_tag_with_a_bearer_token,
    "anonymous pull by digest": _anonymous_pull_by_digest,
    "delete a tag": _delete_tag,
    "delete a manifest": _delete_manifest,
    "delete a blob": _delete_blob,
    "403 denied": _denied,
    "hidden repository": _hidden,
    "wrong password": _wrong_password,
    "anonymous challenge": _anonymous_challenge,
}


@pytest.mark.parametrize("case", list(CASES))
def test_it_records_exactly_the_event_of_each_registry_action(people: People, case: str) -> None:
    since, expected = CASES[case](people)
    events = events_after(since)
    assert [e.action for e in events] == [x["action"] for x in expected]
    for event, fields in zip(events, expected, strict=True):
        assert_fields(event, {"repository": event.repository or "", **fields})
        assert event.request_id
        assert event.client_address == "127.0.0.1"


def test_it_leaves_no_event_when_a_manifest_names_a_missing_blob(people: People) -> None:
    alice = as_user("alice")
    content = image_manifest(alice, "acme/private", layers=(b"present",))
    doc = json.loads(content)
    doc["layers"][0]["digest"] = digest_of(b"never pushed")
    since = mark()
    response = put_manifest(alice, "acme/private", "v1", json.dumps(doc).encode())
    assert response.status_code == 404  # MANIFEST_BLOB_UNKNOWN
    assert actions_after(since) == []


def test_it_leaves_no_event_when_a_blob_digest_is_wrong(people: People) -> None:
    alice = as_user("alice")
    since = mark()
    response = alice.post(
        f"/v2/acme/private/blobs/uploads/?digest={digest_of(b'other')}",
        b"data",
        content_type="application/octet-stream",
    )
    assert response.status_code == 400
    assert actions_after(since) == []


def test_it_answers_and_records_the_request_id(people: People) -> None:
    push_image(as_user("alice"), "acme/public", "v1", layers=(b"r",))
    since = mark()
    response = Client(HTTP_X_REQUEST_ID="req-123").get("/v2/acme/public/manifests/v1")
    assert response["X-Request-ID"] == "req-123"
    assert Event.objects.get(id__gt=since).request_id == "req-123"
    generated = Client().get("/v2/acme/public/manifests/v1")["X-Request-ID"]
    assert len(generated) == 32 and generated != "req-123"


def test_it_records_the_client_behind_a_trusted_proxy(people: People) -> None:
    push_image(as_user("alice"), "acme/public", "v1", layers=(b"p",))
    since = mark()
    Client(HTTP_X_FORWARDED_FOR="203.0.113.9").get("/v2/acme/public/manifests/v1")
    assert Event.objects.get(id__gt=since).client_address == "203.0.113.9"


def test_it_records_a_repository_made_by_its_first_push(people: People) -> None:
    since = mark()
    push_blob(as_user("alice"), "acme/fresh", b"first")
    actions = actions_after(since)
    assert actions[0] == "repository.create" and actions[-1] == "blob.upload"
    assert "grant.set" in actions  # alice's admin grant, as the creator
    assert {e.chain for e in events_after(since)} == {"org:acme"}


def test_it_records_which_access_token_a_bearer_pull_came_from(people: People) -> None:
    from accounts.actions import token_create

    push_image(as_user("alice"), "acme/private", "v1", layers=(b"bearer pull",))
    token, secret = token_create(
        name="ci", user=people.bob, scopes=[{"repository": "acme/**", "actions": ["pull"]}]
    )
    response = Client(HTTP_AUTHORIZATION=basic_auth("bob", secret)).get(
        "/auth/token", {"service": "hub", "scope": "repository:acme/private:pull"}
    )
    jwt = json.loads(response.content)["token"]
    pulled = Client(HTTP_AUTHORIZATION=f"Bearer {jwt}").get("/v2/acme/private/manifests/v1")
    assert pulled.status_code == 200
    event = Event.objects.filter(action="manifest.pull").latest("id")
    assert (event.actor_name, event.auth_method, event.token_id) == ("bob", "bearer", token.pk)
