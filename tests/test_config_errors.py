"""Bad documents: each problem names its line and path, and nothing is applied."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Event
from teams.config import apply as apply_module
from teams.config.document import ConfigError, parse
from teams.models import ConfigRevision, Team
from tests.config_support import apply_of, as_user

HEAD = "version: 1\norganisation: acme\n"


def _problems(people: Any, text: str) -> list[str]:
    before = Event.objects.count()
    with pytest.raises(ConfigError) as caught:
        apply_of(text, as_user(people.alice))
    assert Event.objects.count() == before  # nothing applied, nothing recorded
    return [str(p) for p in caught.value.problems]


def test_it_names_the_line_and_path_of_an_unknown_key(people: Any) -> None:
    text = HEAD + "teams:\n  - name: ops\n  - name: qa\n    colour: blue\n"
    assert _problems(people, text) == ["line 6, path teams[1].colour: unknown key 'colour'"]
    assert not Team.objects.filter(name__in=["ops", "qa"]).exists()


def test_it_names_unknown_users(people: Any) -> None:
    text = HEAD + "teams:\n  - name: devs\n    members:\n      - user: bob\n      - user: nobody\n"
    assert _problems(people, text) == [
        "line 7, path teams[0].members[1].user: no user named 'nobody'"
    ]


def test_it_refuses_invalid_patterns_and_names_outside_the_namespace(people: Any) -> None:
    text = HEAD + (
        "grants:\n"
        "  - {repository: 'acme/(x)*', user: bob, level: read}\n"
        "  - {repository: alice/own, user: bob, level: read}\n"
        "  - {repository: acme/missing, user: bob, level: read}\n"
        "repositories:\n"
        "  - name: other/app\n"
    )
    assert _problems(people, text) == [
        "line 4, path grants[0].repository: 'acme/(x)*' is not a valid repository pattern",
        "line 5, path grants[1].repository: 'alice/own' is outside the organisation's "
        "namespace acme/",
        "line 6, path grants[2].repository: no repository named 'acme/missing': "
        "declare it under repositories",
        "line 8, path repositories[0].name: 'other/app' is outside the organisation's "
        "namespace acme/",
    ]


def test_it_refuses_inline_and_unresolvable_secrets(
    people: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    inline = HEAD + "webhooks:\n  - url: https://93.184.215.14/x/\n    secret: hunter2\n"
    assert _problems(people, inline) == [
        "line 5, path webhooks[0].secret: a secret is {env: NAME} or {file: PATH}; "
        "never written inline"
    ]
    missing = HEAD + (
        "webhooks:\n"
        "  - url: https://93.184.215.14/x/\n"
        "    secret: {env: NO_SUCH_SECRET}\n"
        "  - url: https://93.184.215.14/y/\n"
        "    secret: {file: /nonexistent/secret}\n"
    )
    problems = _problems(people, missing)
    assert problems[0] == (
        "line 5, path webhooks[0].secret: the environment variable NO_SUCH_SECRET is not set"
    )
    assert problems[1].startswith("line 7, path webhooks[1].secret: cannot read the secret file")


def test_it_names_unknown_teams_and_robots_of_grants(people: Any) -> None:
    ghosts = HEAD + "default_grants:\n  - {team: ghosts, level: read}\n"
    assert _problems(people, ghosts) == [
        "line 4, path default_grants[0].team: the organisation has no team named 'ghosts'",
    ]
    two = HEAD + "default_grants:\n  - {robot: ci, team: devs, level: read}\n"
    assert _problems(people, two) == [
        "line 4, path default_grants[0]: name exactly one of user, team, robot",
    ]


def test_it_reports_bad_yaml_and_duplicate_keys() -> None:
    with pytest.raises(ConfigError, match=r"^line 4, path \(document\): not valid YAML"):
        parse(HEAD + "teams: [\n")
    with pytest.raises(
        ConfigError, match="line 3, path organisation: 'organisation' is given twice"
    ):
        parse(HEAD + "organisation: other\n")
    with pytest.raises(ConfigError, match="line 1, path version: 1 was expected"):
        parse("version: 2\norganisation: acme\n")


def test_it_applies_nothing_when_a_change_in_the_middle_fails(
    people: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.exceptions import ValidationError

    def failing(**kwargs: Any) -> None:
        raise ValidationError("the store is full")

    # Teams and members go first; the robot fails after they are written.
    monkeypatch.setattr(apply_module.robots, "robot_create", failing)
    text = HEAD + (
        "description: changed\n"
        "teams:\n  - name: ops\n    members: [{user: charlie}]\n"
        "robots:\n  - name: deploy\n"
    )
    problems = _problems(people, text)
    assert problems == ["line 8, path robots[0]: add robot deploy: the store is full"]
    people.acme.refresh_from_db()
    assert people.acme.description == ""
    assert not Team.objects.filter(name="ops").exists()
    assert not people.acme.memberships.filter(user=people.charlie).exists()
    assert not ConfigRevision.objects.exists()


def test_it_refuses_webhooks_into_this_network(people: Any, settings: Any) -> None:
    settings.HUB_WEBHOOK_ALLOW_PRIVATE = False
    text = HEAD + "webhooks:\n  - url: http://127.0.0.1:8080/hook\n"
    problems = _problems(people, text)
    assert len(problems) == 1
    assert problems[0].startswith("line 4, path webhooks[0].url: 127.0.0.1 resolves to 127.0.0.1")


def test_it_refuses_aliases_that_could_multiply() -> None:
    text = HEAD + "teams:\n  - &t {name: ops}\n  - *t\n"
    with pytest.raises(ConfigError, match=r"line 4, path teams\[1\]: aliases"):
        parse(text)
