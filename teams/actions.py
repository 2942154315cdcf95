"""Writes to organisations, teams and grants: keyword-only, one transaction each."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from teams.models import (
    DefaultGrant,
    Level,
    Membership,
    Namespace,
    Organisation,
    RepositoryGrant,
    Team,
    TeamMember,
    namespace_validator,
)
from teams.permissions import Actor


def _check_namespace_free(name: str) -> None:
    namespace_validator(name)
    if Namespace.objects.filter(name=name).exists():
        raise ValidationError(f"the name {name!r} is taken")


def user_namespace_ensure(*, user: Any) -> Namespace | None:
    """Every user whose name fits the grammar owns the namespace of that name."""
    existing = Namespace.objects.filter(user=user).first()
    if existing is not None:
        return existing
    name = str(user.username)
    try:
        namespace_validator(name)
    except ValidationError:
        return None
    if Namespace.objects.filter(name=name).exists():
        return None
    return Namespace.objects.create(name=name, user=user)


@transaction.atomic
def organisation_create(
    *, name: str, owner: Any, display_name: str = "", description: str = ""
) -> Organisation:
    _check_namespace_free(name)
    org = Organisation.objects.create(name=name, display_name=display_name, description=description)
    Namespace.objects.create(name=name, organisation=org)
    Membership.objects.create(organisation=org, user=owner, role=Membership.Role.OWNER)
    return org


def organisation_update(
    *, organisation: Organisation, display_name: str | None = None, description: str | None = None
) -> Organisation:
    if display_name is not None:
        organisation.display_name = display_name
    if description is not None:
        organisation.description = description
    organisation.save(update_fields=["display_name", "description"])
    return organisation


@transaction.atomic
def organisation_delete(*, organisation: Organisation) -> None:
    """Delete an organisation, its namespace, teams, robots; refused while it has repositories."""
    from registry.models import Repository

    if Repository.objects.filter(namespace__organisation=organisation).exists():
        raise ValidationError(
            f"{organisation.name} still has repositories: delete them before the organisation"
        )
    Namespace.objects.filter(organisation=organisation).delete()
    organisation.delete()


def membership_set(*, organisation: Organisation, user: Any, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organisation=organisation, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def membership_remove(*, organisation: Organisation, user: Any) -> None:
    TeamMember.objects.filter(team__organisation=organisation, user=user).delete()
    Membership.objects.filter(organisation=organisation, user=user).delete()


def team_create(
    *, organisation: Organisation, name: str, description: str = "", may_create: bool = False
) -> Team:
    namespace_validator(name)
    return Team.objects.create(
        organisation=organisation,
        name=name,
        description=description,
        may_create_repositories=may_create,
    )


@transaction.atomic
def team_member_set(*, team: Team, user: Any, role: str = TeamMember.Role.MEMBER) -> TeamMember:
    # A team member belongs to the organisation too.
    Membership.objects.get_or_create(organisation=team.organisation, user=user)
    member, _ = TeamMember.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return member


def team_update(
    *, team: Team, description: str | None = None, may_create: bool | None = None
) -> Team:
    if description is not None:
        team.description = description
    if may_create is not None:
        team.may_create_repositories = may_create
    team.save(update_fields=["description", "may_create_repositories"])
    return team


def team_delete(*, team: Team) -> None:
    team.delete()


def team_member_remove(*, team: Team, user: Any) -> None:
    """Remove a user from a team (they stay a member of the organisation)."""
    TeamMember.objects.filter(team=team, user=user).delete()


def _subject(*, user: Any = None, team: Team | None = None, robot: Any = None) -> dict[str, Any]:
    given = [s for s in (user, team, robot) if s is not None]
    if len(given) != 1:
        raise ValidationError("a grant names exactly one user, team or robot")
    return {"user": user, "team": team, "robot": robot}


def grant_set(
    *, repository: Any, level: int, user: Any = None, team: Team | None = None, robot: Any = None
) -> RepositoryGrant | None:
    """Give (or change, or with Level.NONE remove) a subject's level on a repository."""
    subject = _subject(user=user, team=team, robot=robot)
    org_id = repository.namespace.organisation_id if repository.namespace else None
    if team is not None and team.organisation_id != org_id:
        raise ValidationError("a team can be granted only its organisation's repositories")
    if robot is not None and robot.organisation_id != org_id:
        raise ValidationError("a robot can be granted only its organisation's repositories")
    lookup = {k: v for k, v in subject.items() if v is not None}
    if level == Level.NONE:
        RepositoryGrant.objects.filter(repository=repository, **lookup).delete()
        return None
    grant, _ = RepositoryGrant.objects.update_or_create(
        repository=repository, **lookup, defaults={"level": level}
    )
    return grant


def default_grant_add(
    *,
    organisation: Organisation,
    level: int,
    user: Any = None,
    team: Team | None = None,
    robot: Any = None,
) -> DefaultGrant:
    subject = _subject(user=user, team=team, robot=robot)
    return DefaultGrant.objects.create(organisation=organisation, level=level, **subject)


def default_grant_remove(*, default_grant: DefaultGrant) -> None:
    """Stop copying this grant onto new repositories (existing grants stay)."""
    default_grant.delete()


def repository_update(
    *, repository: Any, description: str | None = None, visibility: str | None = None
) -> Any:
    if description is not None:
        repository.description = description
    if visibility is not None:
        if visibility not in ("private", "public"):
            raise ValidationError("visibility must be private or public")
        repository.visibility = visibility
    repository.save(update_fields=["description", "visibility"])
    return repository


def repository_created(*, repository: Any, actor: Actor) -> None:
    """A repository was created by a push: file it under its namespace and apply grants."""
    from registry.models import Repository

    head, sep, _ = repository.name.partition("/")
    namespace = Namespace.objects.filter(name=head).first() if sep else None
    if namespace is None:
        return
    Repository.objects.filter(pk=repository.pk).update(namespace=namespace)
    repository.namespace = namespace
    if namespace.organisation_id is not None:
        for default in DefaultGrant.objects.filter(organisation_id=namespace.organisation_id):
            grant_set(
                repository=repository,
                level=default.level,
                user=default.user,
                team=default.team,
                robot=default.robot,
            )
        # Whoever created it may administer it, visibly, as a grant like any other.
        if actor.robot is not None:
            grant_set(repository=repository, level=Level.ADMIN, robot=actor.robot)
        elif actor.user is not None and not actor.is_superuser:
            grant_set(repository=repository, level=Level.ADMIN, user=actor.user)
