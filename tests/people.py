"""The alice / bob / charlie permission fixtures, shared by every test that needs people.

alice owns the organisation `acme` (and her own namespace); bob is an acme member in
the team `devs`, which may write `acme/private`; charlie belongs to nothing and may
see nothing of alice's. `acme+ci` is a robot with write on `acme/private`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.actions import robot_create, token_create
from registry.models import Repository
from teams import actions
from teams.models import Level, Namespace, Organisation, Team
from teams.permissions import Actor

PASSWORD = "correct horse battery staple"


@dataclass
class People:
    alice: Any
    bob: Any
    charlie: Any
    admin: Any
    acme: Organisation
    devs: Team
    robot: Any
    robot_secret: str
    private: Repository  # acme/private
    public: Repository  # acme/public
    alice_own: Repository  # alice/own (private)

    def actor(self, who: str) -> Actor:
        if who == "anonymous":
            return Actor()
        if who == "robot":
            return Actor(robot=self.robot, method="robot")
        return Actor(user=getattr(self, who), method="password")


def make_repository(name: str, *, visibility: str = "private") -> Repository:
    head = name.split("/", 1)[0]
    return Repository.objects.create(
        name=name, visibility=visibility, namespace=Namespace.objects.get(name=head)
    )


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db: None, django_user_model: Any, fast_passwords: None) -> People:
    users = {
        name: django_user_model.objects.create_user(name, f"{name}@example.com", PASSWORD)
        for name in ("alice", "bob", "charlie")
    }
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    acme = actions.organisation_create(name="acme", owner=users["alice"])
    devs = actions.team_create(organisation=acme, name="devs")
    actions.team_member_set(team=devs, user=users["bob"])
    private = make_repository("acme/private")
    public = make_repository("acme/public", visibility="public")
    alice_own = make_repository("alice/own")
    actions.grant_set(repository=private, level=Level.WRITE, team=devs)
    robot = robot_create(organisation=acme, name="ci", created_by=users["alice"])
    actions.grant_set(repository=private, level=Level.WRITE, robot=robot)
    _, robot_secret = token_create(name="ci", robot=robot)
    return People(
        alice=users["alice"],
        bob=users["bob"],
        charlie=users["charlie"],
        admin=admin,
        acme=acme,
        devs=devs,
        robot=robot,
        robot_secret=robot_secret,
        private=private,
        public=public,
        alice_own=alice_own,
    )
