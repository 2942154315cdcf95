"""/api/orgs/{org}/config, .../plan, .../apply and /api/config/schema.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

from audit.models import Event
from registry.webhooks.models import Webhook
from teams import actions
from teams.config.schema import SCHEMA, schema_text
from teams.models import ConfigRevision, Team
from tests.management_api import credentials


def _post(client: Client, url: str, body: str, auth: dict[str, str]) -> Any:
    return client.post(url, data=body, content_type="application/yaml", **auth)


@pytest.fixture
def admin_robot(people: Any) -> dict[str, str]:
    actions.robot_admin_set(robot=people.robot, admin=True)
    return credentials(people, "robot")


def test_it_publishes_the_schema_as_the_repository_has_it(client: Client) -> None:
    response = client.get("/api/config/schema.json")
    assert response.status_code == 200
    assert response.json() == SCHEMA
    assert (Path(__file__).parent.parent / "teams/config/schema.json").read_text() == schema_text()


def test_it_plans_and_applies_with_a_robot_token(
    client: Client, people: Any, admin_robot: dict[str, str]
) -> None:
    exported = client.get("/api/orgs/acme/config", **admin_robot)
    assert exported.status_code == 200
    data = yaml.safe_load(exported.content)
    data["teams"].append({"name": "ops"})
    body = yaml.safe_dump(data)
    plan = _post(client, "/api/orgs/acme/config/plan", body, admin_robot)
    assert plan.status_code == 200
    assert plan.json()["pending"] is True
    assert [(c["op"], c["kind"], c["key"]) for c in plan.json()["changes"]] == [
        ("add", "team", "ops")
    ]
    assert not Team.objects.filter(name="ops").exists()
    applied = _post(client, "/api/orgs/acme/config/apply", body, admin_robot)
    assert applied.status_code == 200
    assert applied.json()["changed"] is True
    assert Team.objects.filter(name="ops").exists()
    event = Event.objects.get(action="team.create", details__team="ops")
    assert (event.actor_kind, event.actor_name) == ("robot", "acme+ci")
    assert event.details["config_sha256"] == applied.json()["sha256"]
    revision = ConfigRevision.objects.get()
    assert (revision.applied_by_kind, revision.applied_by_name) == ("robot", "acme+ci")
    again = _post(client, "/api/orgs/acme/config/plan", body, admin_robot)
    assert again.json()["pending"] is False


def test_it_takes_json_and_prunes_when_asked(client: Client, people: Any) -> None:
    alice = credentials(people, "alice")
    body = json.dumps({"version": 1, "organisation": "acme", "teams": []})
    kept = client.post("/api/orgs/acme/config/apply", body, "application/json", **alice)
    assert kept.json()["changes"] == []
    pruned = client.post(
        "/api/orgs/acme/config/apply?prune=true", body, "application/json", **alice
    )
    assert [c["key"] for c in pruned.json()["changes"]] == ["devs"]
    assert not Team.objects.exists()


def test_it_answers_bad_documents_with_their_lines(client: Client, people: Any) -> None:
    body = "version: 1\norganisation: acme\nteams:\n  - name: ops\n    owner: bob\n"
    response = _post(client, "/api/orgs/acme/config/apply", body, credentials(people, "alice"))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"line": 5, "path": "teams[0].owner", "message": "unknown key 'owner'"}
    ]
    assert not Team.objects.filter(name="ops").exists()


def test_it_refuses_a_document_for_another_organisation(client: Client, people: Any) -> None:
    actions.organisation_create(name="globex", owner=people.alice)
    body = "version: 1\norganisation: globex\ndescription: moved\n"
    response = _post(client, "/api/orgs/acme/config/apply", body, credentials(people, "alice"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "the document is for globex, not acme"


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 401), ("charlie", 404), ("bob", 403), ("robot", 404)]
)
def test_it_keeps_others_out(client: Client, people: Any, who: str, status: int) -> None:
    body = "version: 1\norganisation: acme\ndescription: taken over\n"
    response = _post(client, "/api/orgs/acme/config/apply", body, credentials(people, who))
    assert response.status_code == status
    people.acme.refresh_from_db()
    assert people.acme.description == ""


def test_it_takes_only_config_secrets_through_the_api(
    client: Client, people: Any, admin_robot: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_CONFIG_SECRET_CI", "from-the-server")
    hook = "version: 1\norganisation: acme\nwebhooks:\n  - url: https://93.184.215.14/\n"
    refused = _post(
        client, "/api/orgs/acme/config/plan", hook + "    secret: {env: HOME}\n", admin_robot
    )
    assert refused.status_code == 400
    assert "HUB_CONFIG_SECRET_" in refused.json()["errors"][0]["message"]
    taken = _post(
        client,
        "/api/orgs/acme/config/apply",
        hook + "    secret: {env: HUB_CONFIG_SECRET_CI}\n",
        admin_robot,
    )
    assert taken.status_code == 200
    assert Webhook.objects.get().secret == "from-the-server"


def test_it_shows_the_last_revision_and_what_it_manages(client: Client, people: Any) -> None:
    body = "version: 1\norganisation: acme\nteams:\n  - name: ops\n"
    applied = _post(client, "/api/orgs/acme/config/apply", body, credentials(people, "alice"))
    client.force_login(people.bob)  # any member sees it
    page = client.get("/orgs/acme/").content.decode()
    assert applied.json()["sha256"][:12] in page
    assert "by user <strong>alice</strong>" in page
    assert page.count("managed by config") == 1  # ops, not devs
    assert 'ops</a> <span class="badge">managed by config' in page
