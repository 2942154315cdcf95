"""`hub config export | plan | apply`: exit codes, messages, and who the command acts as."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command

from audit.models import Event
from teams.models import ConfigRevision, Team


def _run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("config", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def document(people: Any, tmp_path: Path) -> Path:
    path = tmp_path / "acme.yaml"
    assert _run("export", "acme", "-o", str(path))[0] == 0
    return path


def test_it_exits_0_with_nothing_to_change_and_2_with_changes(document: Path) -> None:
    assert _run("plan", "-f", str(document)) == (0, "acme: nothing to change\n", "")
    data = yaml.safe_load(document.read_text())
    data["teams"].append({"name": "ops"})
    document.write_text(yaml.safe_dump(data))
    code, out, _ = _run("plan", "-f", str(document))
    assert code == 2
    assert out.splitlines() == [
        "+ team ops: {'description': '', 'may_create_repositories': False}",
        "acme: 1 to add, 0 to change, 0 to remove",
    ]
    assert not Team.objects.filter(name="ops").exists()
    code, out, _ = _run("apply", "-f", str(document))
    assert code == 0
    assert Team.objects.filter(name="ops").exists()
    assert _run("plan", "-f", str(document))[0] == 0


def test_it_exits_1_naming_the_line_and_path(document: Path) -> None:
    document.write_text(document.read_text() + "colour: blue\n")
    code, out, err = _run("apply", "-f", str(document))
    assert code == 1
    assert err.strip().endswith("path colour: unknown key 'colour'")
    assert err.startswith("line ")


def test_it_records_the_operator_without_as(document: Path, people: Any) -> None:
    data = yaml.safe_load(document.read_text())
    data["description"] = "by the operator"
    document.write_text(yaml.safe_dump(data))
    assert _run("apply", "-f", str(document))[0] == 0
    event = Event.objects.get(action="org.update")
    assert event.actor_kind == "operator"
    assert event.actor_name.startswith("operator:")
    assert event.auth_method == "cli"
    assert ConfigRevision.objects.get().applied_by_kind == "operator"


def test_it_applies_with_the_rights_of_the_user_given(document: Path, people: Any) -> None:
    data = yaml.safe_load(document.read_text())
    data["description"] = "by bob"
    document.write_text(yaml.safe_dump(data))
    code, _, err = _run("apply", "-f", str(document), "--as", "bob")
    assert code == 1
    assert "bob may not administer an organisation named 'acme'" in err
    assert _run("apply", "-f", str(document), "--as", "alice")[0] == 0
    assert Event.objects.get(action="org.update").actor_name == "alice"


def test_it_exports_to_standard_output(people: Any) -> None:
    code, out, _ = _run("export", "acme")
    assert code == 0
    assert yaml.safe_load(out)["organisation"] == "acme"
    with pytest.raises(CommandError, match="no organisation named 'nowhere'"):
        call_command("config", "export", "nowhere")
