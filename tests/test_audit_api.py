"""/api/audit/events/, /api/audit/export and /api/orgs/<org>/activity/: filters and visibility."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

import audit
from audit.sealing import seal_pending
from tests.conftest import basic_auth
from tests.helpers import body, push_image
from tests.people import PASSWORD, People, make_repository

pytestmark = pytest.mark.django_db

VERIFY_EXPORT = Path(__file__).resolve().parent.parent / "audit" / "verify_export.py"


def as_user(who: str, **extra: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(who, PASSWORD), **extra)


def events(who: str, **params: Any) -> list[dict[str, Any]]:
    response = as_user(who).get("/api/audit/events/", params)
    assert response.status_code == 200, response.content
    return json.loads(response.content)["results"]


@pytest.fixture
def activity(people: People) -> dict[str, str]:
    """alice pushes to acme/private and to acme/secret (no grant for bob's team),
    charlie pushes to his own namespace, from another address."""
    alice = as_user("alice")
    make_repository("acme/secret")
    _, private = push_image(alice, "acme/private", "v1", layers=(b"p",))
    _, secret = push_image(alice, "acme/secret", "v1", layers=(b"s",))
    charlie = as_user("charlie", REMOTE_ADDR="198.51.100.7")
    _, own = push_image(charlie, "charlie/tool", "v1", layers=(b"c",))
    assert charlie.get("/v2/acme/private/tags/list").status_code == 404  # denied, hidden
    assert as_user("bob").get("/auth/token", {"service": "hub"}).status_code == 200
    return {"private": private, "secret": secret, "charlie": own}


def test_it_shows_site_administrators_everything(people: People, activity: Any) -> None:
    seen = events("admin", limit=1000)
    assert {e["chain"] for e in seen} >= {"org:acme", "user:charlie", "site"}


def test_it_shows_owners_their_organisation_and_nobody_else_anything_of_it(
    people: People, activity: Any
) -> None:
    alice = events("alice", limit=1000)
    assert alice and {e["organisation"] for e in alice if e["chain"] != "user:alice"} <= {
        "acme",
        "",
    }
    assert "acme/secret" in {e["repository"] for e in alice}
    assert not any(e["chain"] == "user:charlie" for e in alice)
    charlie = events("charlie", limit=1000)
    assert charlie and all(e["organisation"] != "acme" for e in charlie)
    assert {e["chain"] for e in charlie} <= {"user:charlie", "site"}
    assert not any(e["action"] == "request.denied" for e in charlie)  # that one is acme's
    assert not any("acme" in e["repository"] for e in charlie)
    # bob is a member of acme, not an owner: no audit log, only the activity feed.
    assert all(e["organisation"] != "acme" for e in events("bob", limit=1000))


def test_it_refuses_tokens_and_robots(people: People, activity: Any) -> None:
    robot = Client(HTTP_AUTHORIZATION=basic_auth(people.robot.username, people.robot_secret))
    assert robot.get("/api/audit/events/").status_code == 403
    assert Client().get("/api/audit/events/").status_code in (401, 403)


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"action": "manifest.push"}, lambda e: e["action"] == "manifest.push"),
        ({"action": "blob.*"}, lambda e: e["action"].startswith("blob.")),
        ({"repository": "acme/secret"}, lambda e: e["repository"] == "acme/secret"),
        ({"actor": "charlie"}, lambda e: e["actor_name"] == "charlie"),
        ({"organisation": "acme"}, lambda e: e["organisation"] == "acme"),
        ({"outcome": "success"}, lambda e: e["outcome"] == "success"),
        ({"client_address": "198.51.100.7"}, lambda e: e["actor_name"] == "charlie"),
    ],
)
def test_it_filters_events(people: People, activity: Any, params: Any, check: Any) -> None:
    seen = events("admin", limit=1000, **params)
    assert seen and all(check(e) for e in seen)
    assert len(seen) < len(events("admin", limit=1000))


def test_it_filters_by_time_and_pages_with_a_cursor(people: People, activity: Any) -> None:
    cut = timezone.now()
    audit.record(action="auth.login", organisation="acme")
    later = events("admin", since=cut.isoformat())
    assert [e["action"] for e in later] == ["auth.login"]
    assert all(e["action"] != "auth.login" for e in events("admin", until=cut.isoformat()))
    assert as_user("admin").get("/api/audit/events/", {"since": "yesterday"}).status_code == 400
    seen: list[int] = []
    url: str | None = "/api/audit/events/?limit=3&organisation=acme"
    while url:
        page = json.loads(as_user("admin").get(url).content)
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) > 3


def test_it_pages_a_time_range_newest_first_by_time(people: People) -> None:
    from audit.recording import build

    start = timezone.now() + timedelta(days=1)  # after every other event
    expected = {}
    for minutes in (3, 1, 4, 0, 2):  # written in this order: ids and times disagree
        event = build(action="auth.login", organisation="acme")
        event.occurred_at = start + timedelta(minutes=minutes)
        event.save(force_insert=True)
        expected[minutes] = event.id
    seen: list[int] = []
    url: str | None = "/api/audit/events/?" + urlencode({"limit": 2, "since": start.isoformat()})
    while url:
        page = json.loads(as_user("admin").get(url).content)
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert seen == [expected[m] for m in (4, 3, 2, 1, 0)]


def test_it_shows_members_their_organisations_activity(people: People, activity: Any) -> None:
    response = as_user("bob").get("/api/orgs/acme/activity/", {"limit": 100})
    assert response.status_code == 200
    seen = json.loads(response.content)["results"]
    actions = {e["action"] for e in seen}
    assert "manifest.push" in actions
    assert {"member.set", "team_member.set"} <= actions  # from the people fixture
    assert actions <= {
        "manifest.push",
        "tag.move",
        "member.set",
        "member.remove",
        "team_member.set",
        "team_member.remove",
    }
    repositories = {e["repository"] for e in seen}
    assert "acme/private" in repositories and "acme/secret" not in repositories
    assert as_user("charlie").get("/api/orgs/acme/activity/").status_code == 404


def test_it_exports_only_what_the_caller_may_read(
    people: People, activity: Any, tmp_path: Path
) -> None:
    seal_pending()
    response = as_user("alice").get("/api/audit/export", {"format": "jsonl"})
    assert response.status_code == 200 and response.streaming
    lines = body(response).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows and all(r["organisation"] == "acme" or r["chain"] != "org:acme" for r in rows)
    assert not any(r["chain"] == "user:charlie" for r in rows)
    acme_only = tmp_path / "acme.jsonl"
    acme_only.write_text("".join(line + "\n" for line in lines if '"chain":"org:acme"' in line))
    checked = subprocess.run(
        [sys.executable, "-I", str(VERIFY_EXPORT), str(acme_only)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    charlie = body(as_user("charlie").get("/api/audit/export", {"format": "csv"})).decode()
    assert "acme" not in charlie.split("\n", 1)[1]
    ocsf = body(as_user("admin").get("/api/audit/export", {"format": "ocsf"})).decode()
    assert json.loads(ocsf.splitlines()[0])["class_uid"] == 6003
    assert as_user("admin").get("/api/audit/export", {"format": "xml"}).status_code == 400
