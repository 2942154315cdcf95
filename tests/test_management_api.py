"""The management API, table-driven: who x endpoint x method -> allowed, denied or not found."""

from __future__ import annotations

import pytest
from django.test import Client

from teams.permissions import visible_repositories
from tests.management_api import as_
from tests.people import People

pytestmark = pytest.mark.django_db

ORG = "/api/orgs/acme/"
REPO = "/api/repositories/acme/private/"
TEAM_BODY = {"name": "ops"}
GRANT_BODY = {"subject_type": "user", "subject": "charlie", "level": "read"}
TOKEN_BODY = {"name": "ci", "scopes": [{"repository": "acme/*", "actions": ["pull"]}]}

# endpoint, method, body, {who: status}
TABLE: list[tuple[str, str, object, dict[str, int]]] = [
    (
        "/api/orgs/",
        "GET",
        None,
        {
            "alice": 200,
            "bob": 200,
            "charlie": 200,
            "anonymous": 401,
            "robot": 403,
            "alice-token": 403,
            "admin": 200,
        },
    ),
    (
        "/api/orgs/",
        "POST",
        {"name": "widgets"},
        {"charlie": 201, "anonymous": 401, "robot": 403, "alice-token": 403},
    ),
    (
        ORG,
        "GET",
        None,
        {
            "alice": 200,
            "bob": 200,
            "charlie": 404,
            "anonymous": 401,
            "robot": 403,
            "alice-token": 403,
            "admin": 200,
        },
    ),
    (
        ORG,
        "PATCH",
        {"description": "we make anvils"},
        {"alice": 200, "bob": 403, "charlie": 404, "anonymous": 401, "robot": 403, "admin": 200},
    ),
    (ORG, "DELETE", None, {"alice": 400, "bob": 403, "charlie": 404, "robot": 403}),
    ("/api/orgs/nothing/", "GET", None, {"alice": 404, "charlie": 404}),
    (ORG + "members/", "GET", None, {"alice": 200, "bob": 200, "charlie": 404, "robot": 403}),
    (
        ORG + "members/",
        "POST",
        {"username": "charlie"},
        {"alice": 201, "bob": 403, "charlie": 404, "robot": 403, "anonymous": 401},
    ),
    (ORG + "members/bob/", "GET", None, {"alice": 200, "bob": 200, "charlie": 404}),
    (
        ORG + "members/bob/",
        "PATCH",
        {"role": "owner"},
        {"alice": 200, "bob": 403, "charlie": 404, "robot": 403},
    ),
    (ORG + "members/bob/", "DELETE", None, {"alice": 204, "bob": 403, "charlie": 404}),
    (ORG + "members/charlie/", "GET", None, {"alice": 404, "charlie": 404}),
    (ORG + "teams/", "GET", None, {"alice": 200, "bob": 200, "charlie": 404, "robot": 403}),
    (ORG + "teams/", "POST", TEAM_BODY, {"alice": 201, "bob": 403, "charlie": 404}),
    (ORG + "teams/devs/", "GET", None, {"alice": 200, "bob": 200, "charlie": 404}),
    (
        ORG + "teams/devs/",
        "PATCH",
        {"description": "developers"},
        {"alice": 200, "bob": 403, "charlie": 404, "robot": 403},
    ),
    (ORG + "teams/devs/", "DELETE", None, {"alice": 204, "bob": 403, "charlie": 404}),
    (ORG + "teams/nothing/", "GET", None, {"alice": 404, "charlie": 404}),
    (ORG + "teams/devs/members/", "GET", None, {"alice": 200, "bob": 200, "charlie": 404}),
    (
        ORG + "teams/devs/members/",
        "POST",
        {"username": "charlie"},
        {"alice": 201, "bob": 403, "charlie": 404},
    ),
    (
        ORG + "teams/devs/members/bob/",
        "PATCH",
        {"role": "maintainer"},
        {"alice": 200, "bob": 403, "charlie": 404},
    ),
    (ORG + "teams/devs/members/bob/", "DELETE", None, {"alice": 204, "bob": 403, "charlie": 404}),
    (
        ORG + "robots/",
        "GET",
        None,
        {"alice": 200, "bob": 403, "charlie": 404, "robot": 403, "anonymous": 401},
    ),
    (ORG + "robots/", "POST", {"name": "deploy"}, {"alice": 201, "bob": 403, "charlie": 404}),
    (ORG + "robots/ci/", "GET", None, {"alice": 200, "bob": 403, "charlie": 404}),
    (ORG + "robots/ci/", "DELETE", None, {"alice": 200, "bob": 403, "charlie": 404, "robot": 403}),
    (ORG + "robots/ci/tokens/", "GET", None, {"alice": 200, "bob": 403, "robot": 403}),
    (
        ORG + "robots/ci/tokens/",
        "POST",
        {"name": "deploy"},
        {"alice": 201, "bob": 403, "charlie": 404, "robot": 403, "alice-token": 403},
    ),
    (ORG + "default-grants/", "GET", None, {"alice": 200, "bob": 403, "charlie": 404}),
    (
        ORG + "default-grants/",
        "POST",
        {"subject_type": "team", "subject": "devs", "level": "read"},
        {"alice": 201, "bob": 403, "charlie": 404, "robot": 403},
    ),
    (
        "/api/repositories/",
        "GET",
        None,
        {"alice": 200, "bob": 200, "charlie": 200, "anonymous": 200, "robot": 200},
    ),
    (
        REPO,
        "GET",
        None,
        {
            "alice": 200,
            "bob": 200,
            "charlie": 404,
            "anonymous": 404,
            "robot": 200,
            "alice-token": 200,
            "admin": 200,
        },
    ),
    ("/api/repositories/alice/own/", "GET", None, {"alice": 200, "bob": 404, "robot": 404}),
    ("/api/repositories/acme/nothing/", "GET", None, {"alice": 404, "admin": 404}),
    (
        "/api/repositories/acme/public/",
        "GET",
        None,
        {"charlie": 200, "anonymous": 200, "robot": 200},
    ),
    (
        REPO,
        "PATCH",
        {"description": "the app"},
        {
            "alice": 200,
            "bob": 403,
            "charlie": 404,
            "anonymous": 401,
            "robot": 403,
            "alice-token": 200,
        },
    ),
    (
        "/api/repositories/acme/public/",
        "PATCH",
        {"visibility": "private"},
        {"alice": 200, "bob": 403, "charlie": 403, "anonymous": 401},
    ),
    (
        REPO + "grants/",
        "GET",
        None,
        {"alice": 200, "bob": 403, "charlie": 404, "anonymous": 401, "robot": 403},
    ),
    (
        REPO + "grants/",
        "POST",
        GRANT_BODY,
        {"alice": 201, "bob": 403, "charlie": 404, "robot": 403, "alice-token": 201},
    ),
    (REPO + "grants/team/devs/", "DELETE", None, {"alice": 204, "bob": 403, "charlie": 404}),
    (REPO + "grants/user/charlie/", "DELETE", None, {"alice": 404}),
    (
        "/api/user/tokens/",
        "GET",
        None,
        {"alice": 200, "charlie": 200, "anonymous": 401, "robot": 403, "alice-token": 403},
    ),
    (
        "/api/user/tokens/",
        "POST",
        TOKEN_BODY,
        {"alice": 201, "charlie": 201, "anonymous": 401, "robot": 403, "alice-token": 403},
    ),
]

CASES = [
    pytest.param(who, method, url, body, expected, id=f"{method} {url} as {who}")
    for url, method, body, outcomes in TABLE
    for who, expected in outcomes.items()
]


@pytest.mark.parametrize(("who", "method", "url", "body", "expected"), CASES)
def test_it_allows_denies_or_hides_each_endpoint(
    client: Client, people: People, who: str, method: str, url: str, body: object, expected: int
) -> None:
    response = as_(client, people, who, method, url, body)
    assert response.status_code == expected, response.content[:300]
    assert expected == 204 or response["Content-Type"].startswith("application/json")
    if expected >= 400:
        assert isinstance(response.json()["detail"], str) or response.json()


@pytest.mark.parametrize(
    ("who", "orgs"),
    [("alice", {"acme": "owner"}), ("bob", {"acme": "member"}), ("charlie", {})],
)
def test_it_lists_only_the_organisations_one_belongs_to(
    client: Client, people: People, who: str, orgs: dict[str, str]
) -> None:
    as_(client, people, "charlie", "POST", "/api/orgs/", {"name": "charlies"})
    if who == "charlie":
        orgs = {"charlies": "owner"}
    body = as_(client, people, who, "GET", "/api/orgs/").json()
    assert {o["name"]: o["role"] for o in body["results"]} == orgs
    assert body["count"] == len(orgs)


@pytest.mark.parametrize("who", ["alice", "bob", "charlie", "anonymous", "robot", "admin"])
def test_it_lists_exactly_the_visible_repositories_with_levels(
    client: Client, people: People, who: str
) -> None:
    body = as_(client, people, who, "GET", "/api/repositories/").json()
    names = [r["name"] for r in body["results"]]
    assert set(names) == set(visible_repositories(people.actor(who)).values_list("name", flat=True))
    assert names == sorted(names)
    levels = {r["name"]: r["level"] for r in body["results"]}
    expected = {
        "alice": {"acme/private": "admin", "acme/public": "admin", "alice/own": "admin"},
        "bob": {"acme/private": "write", "acme/public": "read"},
        "charlie": {"acme/public": "read"},
        "anonymous": {"acme/public": "read"},
        "robot": {"acme/private": "write", "acme/public": "read"},
        "admin": {"acme/private": "admin", "acme/public": "admin", "alice/own": "admin"},
    }[who]
    assert levels == expected


def test_it_filters_repositories_by_namespace(client: Client, people: People) -> None:
    body = as_(client, people, "alice", "GET", "/api/repositories/?namespace=alice").json()
    assert [r["name"] for r in body["results"]] == ["alice/own"]


def test_it_answers_a_hidden_repository_exactly_as_a_missing_one(
    client: Client, people: People
) -> None:
    hidden = as_(client, people, "charlie", "GET", "/api/repositories/acme/private/")
    missing = as_(client, people, "charlie", "GET", "/api/repositories/acme/privatf/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("private", "X") == missing.json()["detail"].replace(
        "privatf", "X"
    )
    hidden_org = as_(client, people, "charlie", "GET", "/api/orgs/acme/")
    missing_org = as_(client, people, "charlie", "GET", "/api/orgs/acmf/")
    assert hidden_org.status_code == missing_org.status_code == 404
    assert hidden_org.json()["detail"].replace("acme", "X") == missing_org.json()["detail"].replace(
        "acmf", "X"
    )


def test_it_serves_a_valid_schema_naming_the_endpoints(client: Client, people: People) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/orgs/",
        "/api/orgs/{org}/members/{username}/",
        "/api/orgs/{org}/robots/{name}/tokens/",
        "/api/repositories/{name}/grants/",
        "/api/user/tokens/",
    ):
        assert path in paths
