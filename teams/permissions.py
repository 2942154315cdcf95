"""The one place that decides what an actor may do with a repository or an organisation.

The registry, the management API, the token endpoint and the UI all ask here,
and every list is filtered by `visible_repositories`, so no query can show an
actor something it may not see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import connections, router
from django.db.models import Exists, Max, OuterRef, Q, QuerySet

from teams.models import (
    Level,
    Membership,
    Namespace,
    Organisation,
    OrganisationAdminRobot,
    RepositoryGrant,
    Team,
    TeamMember,
)

if TYPE_CHECKING:
    from accounts.models import AccessToken, Robot
    from registry.models import Repository

# Registry actions and the level each needs.
ACTIONS: dict[str, Level] = {"pull": Level.READ, "push": Level.WRITE, "delete": Level.ADMIN}
ALL_ACTIONS = frozenset(ACTIONS)


@dataclass(frozen=True)
class Actor:
    """Who is asking: a user, a robot, or nobody; and through which credential."""

    user: Any = None  # django.contrib.auth User
    robot: Robot | None = None
    token: AccessToken | None = None
    # How the actor proved who it is: anonymous, password, token, robot, session, bearer.
    method: str = "anonymous"
    # Bearer (JWT) actors carry exactly what the token endpoint granted them, and who
    # they are as the token says (no database lookup on the hot path).
    granted: Mapping[str, frozenset[str]] | None = field(default=None, hash=False)
    subject_key: str = ""
    subject_name: str = ""
    token_id: int | None = None  # the access token a bearer token was issued for, if any
    catalog: bool = False  # a bearer token that may list the catalog

    @property
    def is_anonymous(self) -> bool:
        return self.user is None and self.robot is None and not self.subject_key

    @property
    def is_superuser(self) -> bool:
        return bool(self.user is not None and self.user.is_active and self.user.is_superuser)

    @property
    def name(self) -> str:
        if self.robot is not None:
            return self.robot.username
        if self.user is not None:
            return str(self.user.username)
        return self.subject_name or "anonymous"

    @property
    def key(self) -> str:
        """A stable identity, e.g. to bind an upload session to whoever opened it."""
        if self.robot is not None:
            return f"robot:{self.robot.pk}"
        if self.user is not None:
            return f"user:{self.user.pk}"
        return self.subject_key or "anonymous"


ANONYMOUS = Actor()


def namespace_of(repository_name: str) -> str | None:
    head, sep, _ = repository_name.partition("/")
    return head if sep else None


# --- token scopes ---------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    # `*` matches within one path component, `**` across components.
    escaped = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*")
    return re.compile("^" + escaped.replace("\0", ".*") + "$")


def scope_actions(scopes: Iterable[Mapping[str, Any]], repository_name: str) -> frozenset[str]:
    """The actions a list of token scopes allows on a repository."""
    allowed: set[str] = set()
    for scope in scopes:
        pattern = str(scope.get("repository", ""))
        if pattern and _pattern(pattern).match(repository_name):
            allowed.update(a for a in scope.get("actions", ()) if a in ALL_ACTIONS)
    return frozenset(allowed)


def _token_cap(actor: Actor, repository_name: str) -> frozenset[str]:
    token = actor.token
    if token is None or token.robot_id is not None:
        return ALL_ACTIONS  # passwords, sessions and robot tokens carry their owner's rights
    return scope_actions(token.scopes, repository_name)


def pattern_matches(pattern: str, repository_name: str) -> bool:
    """Whether a repository pattern (`*` within a component, `**` across) names it."""
    return bool(_pattern(pattern).match(repository_name))


def valid_scope_pattern(pattern: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9._/*-]+", pattern))


# --- repository levels ----------------------------------------------------------------------


def _teams_of(user: Any) -> QuerySet[TeamMember, Any]:
    # A subquery (IN), not a join: the database can use the indexes on both sides.
    return TeamMember.objects.filter(user=user).values("team_id")


def _may_hold_grants(actor: Actor) -> bool:
    if actor.robot is not None:
        return actor.robot.disabled_at is None
    return actor.user is not None and bool(actor.user.is_active)


def _grants_for(actor: Actor) -> QuerySet[RepositoryGrant] | None:
    """The grants that count for this actor (None: none can)."""
    if not _may_hold_grants(actor):
        return None
    if actor.robot is not None:
        return RepositoryGrant.objects.filter(robot=actor.robot)
    return RepositoryGrant.objects.filter(Q(user=actor.user) | Q(team__in=_teams_of(actor.user)))


def _base_level(actor: Actor, repository: Repository) -> Level:
    level = Level.READ if repository.visibility == "public" else Level.NONE
    if actor.is_superuser:
        return Level.ADMIN
    if not _may_hold_grants(actor):
        return level
    namespace = repository.namespace
    if actor.user is not None and namespace is not None:
        if namespace.user_id == actor.user.pk:
            return Level.ADMIN
        org_owner = getattr(repository, "hub_org_owner", None)
        if org_owner is None and namespace.organisation_id is not None:
            org_owner = Membership.objects.filter(
                organisation_id=namespace.organisation_id,
                user=actor.user,
                role=Membership.Role.OWNER,
            ).exists()
        if org_owner:
            return Level.ADMIN
    if hasattr(repository, "hub_granted"):
        granted = repository.hub_granted
    else:
        grants = _grants_for(actor)
        assert grants is not None  # noqa: S101 - _may_hold_grants said so
        granted = grants.filter(repository=repository).aggregate(m=Max("level"))["m"]
    return Level(max(level, granted or 0))


_REPOSITORY_SQL = """
SELECT r.id, r.name, r.namespace_id, r.visibility, n.name, n.user_id, n.organisation_id,
       {owner} AS org_owner, {granted} AS granted
FROM registry_repository r LEFT JOIN teams_namespace n ON n.id = r.namespace_id
WHERE r.name = %s
"""
_OWNER_SQL = (
    "EXISTS (SELECT 1 FROM teams_membership m WHERE m.organisation_id = n.organisation_id"
    " AND m.user_id = %s AND m.role = 'owner')"
)
_USER_GRANT_SQL = (
    "(SELECT MAX(g.level) FROM teams_repositorygrant g WHERE g.repository_id = r.id"
    " AND (g.user_id = %s OR g.team_id IN"
    " (SELECT tm.team_id FROM teams_teammember tm WHERE tm.user_id = %s)))"
)
_ROBOT_GRANT_SQL = (
    "(SELECT MAX(g.level) FROM teams_repositorygrant g WHERE g.repository_id = r.id"
    " AND g.robot_id = %s)"
)


def repository_for(actor: Actor, repository_name: str) -> Repository | None:
    """The repository with what `_base_level` needs for this actor, in one query.

    Plain SQL: this runs on every registry request, and building the same query with
    subqueries through the ORM cost more than running it.
    """
    from registry.models import Repository

    params: list[Any] = []
    owner, granted = "NULL", "NULL"
    if not actor.is_superuser and _may_hold_grants(actor):
        if actor.robot is not None:
            granted = _ROBOT_GRANT_SQL
            params.append(actor.robot.pk)
        else:
            owner, granted = _OWNER_SQL, _USER_GRANT_SQL
            params += [actor.user.pk, actor.user.pk, actor.user.pk]
    sql = _REPOSITORY_SQL.format(owner=owner, granted=granted)
    db = router.db_for_read(Repository)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, [*params, repository_name])
        row = cursor.fetchone()
    if row is None:
        return None
    repo_id, name, namespace_id, visibility, ns_name, ns_user, ns_org, org_owner, best = row
    repository = Repository.from_db(
        db, ["id", "name", "namespace_id", "visibility"], [repo_id, name, namespace_id, visibility]
    )
    if namespace_id is not None:
        repository.namespace = Namespace.from_db(
            db,
            ["id", "name", "user_id", "organisation_id"],
            [namespace_id, ns_name, ns_user, ns_org],
        )
    else:
        repository.namespace = None
    if owner != "NULL":
        repository.hub_org_owner = bool(org_owner)  # type: ignore[attr-defined]
    if granted != "NULL":
        repository.hub_granted = best  # type: ignore[attr-defined]
    return repository


_UNLOADED: Any = object()


def allowed_actions(
    actor: Actor, repository_name: str, *, repository: Repository | None = _UNLOADED
) -> frozenset[str]:
    """Every registry action (pull, push, delete) the actor may take on this repository.

    For a repository that does not exist yet, pull and push are allowed to those who
    may create it in its namespace. Pass `repository` (or None) when already looked up.
    """
    if actor.granted is not None:
        return actor.granted.get(repository_name, frozenset())
    repo = repository_for(actor, repository_name) if repository is _UNLOADED else repository
    if repo is None:
        may_create = may_create_repository(actor, repository_name)
        actions = frozenset({"pull", "push"}) if may_create else frozenset()
    else:
        level = _base_level(actor, repo)
        actions = frozenset(a for a, needed in ACTIONS.items() if level >= needed)
    return actions & _token_cap(actor, repository_name)


def may(actor: Actor, action: str, repository_name: str) -> bool:
    return action in allowed_actions(actor, repository_name)


def repository_level(actor: Actor, repository: Repository) -> Level:
    """The actor's level on an existing repository (for the API and the UI)."""
    if actor.granted is not None:
        actions = actor.granted.get(repository.name, frozenset())
        return max((ACTIONS[a] for a in actions if a in ACTIONS), default=Level.NONE)
    cap = _token_cap(actor, repository.name)
    level = _base_level(actor, repository)
    capped = max((ACTIONS[a] for a in cap), default=Level.NONE)
    return Level(min(level, capped))


def may_create_repository(actor: Actor, repository_name: str) -> bool:
    if "push" not in _token_cap(actor, repository_name):
        return False
    if actor.is_superuser:
        return True
    ns_name = namespace_of(repository_name)
    if ns_name is None:
        return False
    namespace = Namespace.objects.filter(name=ns_name).first()
    if namespace is None:
        return False
    if actor.robot is not None:
        return (
            actor.robot.disabled_at is None
            and actor.robot.may_create_repositories
            and namespace.organisation_id == actor.robot.organisation_id
        )
    user = actor.user
    if user is None or not user.is_active:
        return False
    if namespace.user_id == user.pk:
        return True
    if namespace.organisation_id is None:
        return False
    return (
        Membership.objects.filter(
            organisation_id=namespace.organisation_id, user=user, role=Membership.Role.OWNER
        ).exists()
        or Team.objects.filter(
            organisation_id=namespace.organisation_id,
            may_create_repositories=True,
            members__user=user,
        ).exists()
    )


def visible_repositories(actor: Actor) -> QuerySet[Repository]:
    """Every repository the actor may pull, as one query."""
    from registry.models import Repository

    qs = Repository.objects.all()
    if actor.granted is not None:
        names = [n for n, actions in actor.granted.items() if "pull" in actions]
        return qs.filter(name__in=names)
    if actor.is_superuser:
        visible = qs
    elif actor.robot is not None and actor.robot.disabled_at is None:
        robot_grant = _grants_for(actor).filter(repository=OuterRef("pk"))  # type: ignore[union-attr]
        visible = qs.filter(Q(visibility="public") | Exists(robot_grant))
    elif actor.user is not None and actor.user.is_active:
        user = actor.user
        owner_of = Membership.objects.filter(
            organisation_id=OuterRef("namespace__organisation_id"),
            user=user,
            role=Membership.Role.OWNER,
        )
        grant = _grants_for(actor).filter(repository=OuterRef("pk"))  # type: ignore[union-attr]
        visible = qs.filter(
            Q(visibility="public") | Q(namespace__user=user) | Exists(owner_of) | Exists(grant)
        )
    else:
        visible = qs.filter(visibility="public")
    token = actor.token
    if token is not None and token.robot_id is None:
        patterns = [
            _pattern(str(s.get("repository", ""))).pattern
            for s in token.scopes
            if "pull" in s.get("actions", ())
        ]
        if not patterns:
            return visible.none()
        visible = visible.filter(name__regex="|".join(f"(?:{p})" for p in patterns))
    return visible


# --- organisations --------------------------------------------------------------------------


def organisation_role(actor: Actor, organisation: Organisation) -> str | None:
    """ "owner", "member" or None; robots and tokens (access or bearer) never manage them."""
    if actor.granted is not None:
        return None
    if actor.user is None or not actor.user.is_active or actor.token is not None:
        return "owner" if actor.is_superuser and actor.token is None else None
    if actor.is_superuser:
        return "owner"
    return (
        Membership.objects.filter(organisation=organisation, user=actor.user)
        .values_list("role", flat=True)
        .first()
    )


def member_organisations(actor: Actor) -> QuerySet[Organisation]:
    """The organisations the actor has a role in (as `organisation_role` says), in one
    query; a site administrator's "owner" of every organisation is not membership."""
    user = actor.user
    if actor.granted is not None or actor.token is not None or user is None or not user.is_active:
        return Organisation.objects.none()
    return Organisation.objects.filter(memberships__user=user)


def may_manage_organisation(actor: Actor, organisation: Organisation) -> bool:
    return organisation_role(actor, organisation) == "owner"


def may_see_organisation(actor: Actor, organisation: Organisation) -> bool:
    return organisation_role(actor, organisation) is not None


def may_manage_team(actor: Actor, team: Team) -> bool:
    if may_manage_organisation(actor, team.organisation):
        return True
    if actor.user is None or actor.token is not None:
        return False
    return team.members.filter(user=actor.user, role="maintainer").exists()


def may_administer_repository(actor: Actor, repository: Repository) -> bool:
    return repository_level(actor, repository) >= Level.ADMIN


def is_admin_robot(actor: Actor, organisation: Organisation) -> bool:
    """A robot of this organisation, enabled, that its owners made an administrator."""
    robot = actor.robot
    if robot is None or actor.granted is not None or robot.disabled_at is not None:
        return False
    return (
        robot.organisation_id == organisation.pk
        and OrganisationAdminRobot.objects.filter(robot=robot).exists()
    )


def may_administer_organisation(actor: Actor, organisation: Organisation) -> bool:
    """Owners, and the organisation's admin robots: who may plan and apply its document."""
    return may_manage_organisation(actor, organisation) or is_admin_robot(actor, organisation)
