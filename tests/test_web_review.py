"""Review findings on the web UI, kept fixed: the home page asks for the viewer's
organisations in one query, and the web audit export answers as the API's does."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from teams import actions
from teams.permissions import Actor, member_organisations
from tests.people import People
from tests.test_web_pages import signed_in

pytestmark = pytest.mark.django_db


def _home_queries(people: People) -> int:
    client = signed_in(people.bob)
    client.get("/")  # the session and the like, once
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return len(captured.captured_queries)


def test_it_builds_the_home_page_in_as_many_queries_for_many_organisations(
    people: People,
) -> None:
    one = _home_queries(people)
    for n in range(5):
        org = actions.organisation_create(name=f"org{n}", owner=people.alice)
        actions.membership_set(organisation=org, user=people.bob, role="member")
    assert _home_queries(people) == one
    html = signed_in(people.bob).get("/").content.decode()
    assert all(f"/orgs/org{n}/" in html for n in range(5))


def test_it_lists_only_memberships_and_none_for_tokens_or_charlie(people: People) -> None:
    assert [o.name for o in member_organisations(people.actor("bob"))] == ["acme"]
    assert not member_organisations(people.actor("charlie")).exists()
    assert not member_organisations(Actor()).exists()
    assert not member_organisations(people.actor("robot")).exists()


def test_it_exports_the_audit_log_as_the_api_does(people: People) -> None:
    alice = signed_in(people.alice)
    web = alice.get("/audit/export?format=jsonl")
    api = alice.get("/api/audit/export?format=jsonl")
    assert web.status_code == api.status_code == 200
    assert web["Content-Type"] == api["Content-Type"] == "application/x-ndjson"
    assert web["Content-Disposition"].startswith('attachment; filename="audit-')
    assert web["Content-Disposition"].endswith('.jsonl"')


def test_it_builds_the_repository_pages_activity_query_once(
    people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web import queries

    built: list[str] = []
    real = queries.repository_activity

    def counted(actor: Actor, repository: Any) -> Any:
        built.append(repository.name)
        return real(actor, repository)

    monkeypatch.setattr(queries, "repository_activity", counted)
    html = signed_in(people.alice).get("/r/acme/private/").content.decode()
    assert "Activity" in html
    assert built == ["acme/private"]
