"""People, organisations, robots and tokens in a served node, made through its own database.

A served node is set up as an operator would: `hub shell -c` with the node's environment
runs the write functions (teams.actions, accounts.actions), and prints back the secrets
that only exist once (token secrets).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import ROOT, VENV_BIN, HubProcess

# Served nodes import Hub from the work tree these tests sit in (the `hub` entry point
# alone would import whichever checkout the virtualenv was installed from).
WORKTREE_ENV = {"PYTHONPATH": str(ROOT)}

PASSWORD = "correct horse battery staple"
_MARKER = "HUB-ACCOUNTS-JSON:"


def node_env(node: HubProcess) -> dict[str, str]:
    env = {**os.environ, "HUB_DATA_DIR": str(node.data_dir), **WORKTREE_ENV, **node.env}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def hub_shell(node: HubProcess, code: str, *, timeout: float = 120) -> str:
    """Run Python in the node's Django (`hub shell -c`); its stdout."""
    proc = subprocess.run(
        [str(VENV_BIN / "hub"), "shell", "--no-imports", "-c", code],
        env=node_env(node),
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hub shell failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def hub_shell_json(node: HubProcess, code: str) -> object:
    """Run `code`, which sets `result`, and return `result` (JSON round trip)."""
    out = hub_shell(node, code + f"\nimport json as _j\nprint({_MARKER!r} + _j.dumps(result))\n")
    for line in out.splitlines():
        if line.startswith(_MARKER):
            return json.loads(line[len(_MARKER) :])
    raise RuntimeError(f"no result from hub shell:\n{out}")


@dataclass(frozen=True)
class Accounts:
    """Who exists in the node, and the secrets to sign in as them."""

    password: str
    bob_token: str  # personal access token: acme/** pull, push
    bob_pull_token: str  # personal access token: acme/** pull only
    robot_user: str  # acme+ci
    robot_token: str

    def creds(self, who: str) -> tuple[str, str]:
        """(username, secret) for alice, bob, charlie, bob-token, bob-pull-token, robot."""
        if who == "robot":
            return self.robot_user, self.robot_token
        if who == "bob-token":
            return "bob", self.bob_token
        if who == "bob-pull-token":
            return "bob", self.bob_pull_token
        return who, self.password


_SETUP = """
from django.contrib.auth import get_user_model
from accounts.actions import robot_create, token_create
from registry.models import Repository
from teams import actions
from teams.models import Level, Namespace

PASSWORD = {password!r}
User = get_user_model()
users = {{n: User.objects.create_user(n, n + "@example.com", PASSWORD)
         for n in ("alice", "bob", "charlie")}}
for user in users.values():
    actions.user_namespace_ensure(user=user)
acme = actions.organisation_create(name="acme", owner=users["alice"])
devs = actions.team_create(organisation=acme, name="devs")
actions.team_member_set(team=devs, user=users["bob"])
namespace = Namespace.objects.get(name="acme")
private = Repository.objects.create(name="acme/private", visibility="private", namespace=namespace)
public = Repository.objects.create(name="acme/public", visibility="public", namespace=namespace)
readonly = Repository.objects.create(
    name="acme/readonly", visibility="private", namespace=namespace
)
actions.grant_set(repository=private, level=Level.WRITE, team=devs)
actions.grant_set(repository=readonly, level=Level.READ, team=devs)
robot = robot_create(organisation=acme, name="ci", created_by=users["alice"])
actions.grant_set(repository=private, level=Level.WRITE, robot=robot)
_, robot_secret = token_create(name="ci", robot=robot)
_, bob_token = token_create(
    name="laptop", user=users["bob"],
    scopes=[{{"repository": "acme/**", "actions": ["pull", "push"]}}],
)
_, bob_pull_token = token_create(
    name="read-only", user=users["bob"], scopes=[{{"repository": "acme/**", "actions": ["pull"]}}]
)
result = {{
    "robot_user": robot.username, "robot_token": robot_secret,
    "bob_token": bob_token, "bob_pull_token": bob_pull_token,
}}
"""


def create_people(node: HubProcess, password: str = PASSWORD) -> Accounts:
    """alice owns `acme` (acme/private private, acme/public public, acme/readonly private);
    bob is in acme's team `devs`, which may write acme/private and read acme/readonly;
    charlie has nothing; the robot `acme+ci` may write acme/private. bob has two
    personal access tokens on acme/**: one to pull and push, one to pull only."""
    result = hub_shell_json(node, _SETUP.format(password=password))
    assert isinstance(result, dict)
    return Accounts(password=password, **result)


def tags_of(node: HubProcess, repository: str) -> list[str]:
    """The tags a repository holds, straight from the node's database ([] if it is unknown)."""
    code = f"""
from registry.models import Tag
result = sorted(Tag.objects.filter(repository__name={repository!r}).values_list("name", flat=True))
"""
    out = hub_shell_json(node, code)
    assert isinstance(out, list)
    return out


def repository_exists(node: HubProcess, repository: str) -> bool:
    code = f"""
from registry.models import Repository
result = Repository.objects.filter(name={repository!r}).exists()
"""
    return bool(hub_shell_json(node, code))


def empty_authfile(directory: Path) -> Path:
    """A containers auth file with no credentials (so no default one is read)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "auth.json"
    path.write_text('{"auths": {}}')
    return path
