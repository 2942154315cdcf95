"""Writes to organisations, teams and grants: keyword-only, one transaction each."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from teams.models import (
    DefaultGrant,
    Level,
    Membership,
    Namespace,
    Organisation,
    OrganisationAdminRobot,
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
    audit.record(
        action="org.create",
        organisation=name,
        details={
            "after": {"display_name": display_name, "description": description},
            "owner": str(owner.username),
        },
    )
    return org


def _org_fields(organisation: Organisation) -> dict[str, str]:
    return {"display_name": organisation.display_name, "description": organisation.description}


@transaction.atomic
def organisation_update(
    *, organisation: Organisation, display_name: str | None = None, description: str | None = None
) -> Organisation:
    before = _org_fields(organisation)
    if display_name is not None:
        organisation.display_name = display_name
    if description is not None:
        organisation.description = description
    organisation.save(update_fields=["display_name", "description"])
    audit.record(
        action="org.update",
        organisation=organisation.name,
        details={"before": before, "after": _org_fields(organisation)},
    )
    return organisation


@transaction.atomic
def organisation_retention_set(*, organisation: Organisation, days: int | None) -> Organisation:
    """How many days the organisation's audit events are kept (None: the site default,
    0: forever)."""
    if days is not None and days < 0:
        raise ValidationError("retention days must be 0 or more")
    before = organisation.audit_retention_days
    organisation.audit_retention_days = days
    organisation.save(update_fields=["audit_retention_days"])
    audit.record(
        action="org.update",
        organisation=organisation.name,
        details={
            "before": {"audit_retention_days": before},
            "after": {"audit_retention_days": days},
        },
    )
    return organisation


@transaction.atomic
def organisation_delete(*, organisation: Organisation) -> None:
    """Delete an organisation, its namespace, teams, robots; refused while it has repositories."""
    from registry.models import Repository

    if Repository.objects.filter(namespace__organisation=organisation).exists():
        raise ValidationError(
            f"{organisation.name} still has repositories: delete them before the organisation"
        )
    before = _org_fields(organisation)
    Namespace.objects.filter(organisation=organisation).delete()
    organisation.delete()
    audit.record(action="org.delete", organisation=organisation.name, details={"before": before})


LAST_OWNER = "an organisation keeps at least one owner"


def _keep_an_owner(organisation: Organisation, user: Any) -> None:
    """Refuse to demote or remove the organisation's only owner (nobody could manage it)."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(organisation=organisation, role=Membership.Role.OWNER)
        .values_list("user_id", flat=True)
    )
    if owners == [user.pk]:
        raise ValidationError({"role": [LAST_OWNER]})


@transaction.atomic
def membership_set(*, organisation: Organisation, user: Any, role: str) -> Membership:
    if role != Membership.Role.OWNER:
        _keep_an_owner(organisation, user)
    before = _role(Membership.objects.filter(organisation=organisation, user=user))
    membership, _ = Membership.objects.update_or_create(
        organisation=organisation, user=user, defaults={"role": role}
    )
    audit.record(
        action="member.set",
        organisation=organisation.name,
        details={"user": str(user.username), "before": before, "after": {"role": role}},
    )
    return membership


def _role(qs: Any) -> dict[str, str] | None:
    role = qs.values_list("role", flat=True).first()
    return None if role is None else {"role": role}


@transaction.atomic
def membership_remove(*, organisation: Organisation, user: Any) -> None:
    _keep_an_owner(organisation, user)
    before = _role(Membership.objects.filter(organisation=organisation, user=user))
    teams = list(
        TeamMember.objects.filter(team__organisation=organisation, user=user)
        .order_by("team__name")
        .values_list("team__name", flat=True)
    )
    TeamMember.objects.filter(team__organisation=organisation, user=user).delete()
    Membership.objects.filter(organisation=organisation, user=user).delete()
    if before is not None:
        audit.record(
            action="member.remove",
            organisation=organisation.name,
            details={"user": str(user.username), "before": {**before, "teams": teams}},
        )


def _team_fields(team: Team) -> dict[str, Any]:
    return {"description": team.description, "may_create": team.may_create_repositories}


@transaction.atomic
def team_create(
    *, organisation: Organisation, name: str, description: str = "", may_create: bool = False
) -> Team:
    namespace_validator(name)
    team = Team.objects.create(
        organisation=organisation,
        name=name,
        description=description,
        may_create_repositories=may_create,
    )
    audit.record(
        action="team.create",
        organisation=organisation.name,
        details={"team": name, "after": _team_fields(team)},
    )
    return team


@transaction.atomic
def team_member_set(*, team: Team, user: Any, role: str = TeamMember.Role.MEMBER) -> TeamMember:
    # A team member belongs to the organisation too.
    _, joined = Membership.objects.get_or_create(organisation=team.organisation, user=user)
    before = _role(TeamMember.objects.filter(team=team, user=user))
    member, _ = TeamMember.objects.update_or_create(team=team, user=user, defaults={"role": role})
    if joined:
        audit.record(
            action="member.set",
            organisation=team.organisation.name,
            details={
                "user": str(user.username),
                "before": None,
                "after": {"role": Membership.Role.MEMBER.value},
                "via_team": team.name,
            },
        )
    audit.record(
        action="team_member.set",
        organisation=team.organisation.name,
        details={
            "team": team.name,
            "user": str(user.username),
            "before": before,
            "after": {"role": str(role)},
        },
    )
    return member


@transaction.atomic
def team_update(
    *,
    team: Team,
    name: str | None = None,
    description: str | None = None,
    may_create: bool | None = None,
) -> Team:
    before = _team_fields(team)
    old_name = team.name
    if name is not None and name != team.name:
        namespace_validator(name)
        if Team.objects.filter(organisation_id=team.organisation_id, name=name).exists():
            raise ValidationError(f"{team.organisation.name} already has a team named {name!r}")
        team.name = name
    if description is not None:
        team.description = description
    if may_create is not None:
        team.may_create_repositories = may_create
    team.save(update_fields=["name", "description", "may_create_repositories"])
    after = _team_fields(team)
    if team.name != old_name:  # a rename says both names
        before["name"], after["name"] = old_name, team.name
    audit.record(
        action="team.update",
        organisation=team.organisation.name,
        details={"team": team.name, "before": before, "after": after},
    )
    return team


@transaction.atomic
def team_delete(*, team: Team) -> None:
    before = _team_fields(team)
    members = list(team.members.order_by("user__username").values_list("user__username", flat=True))
    team.delete()
    audit.record(
        action="team.delete",
        organisation=team.organisation.name,
        details={"team": team.name, "before": {**before, "members": members}},
    )


@transaction.atomic
def team_member_remove(*, team: Team, user: Any) -> None:
    """Remove a user from a team (they stay a member of the organisation)."""
    before = _role(TeamMember.objects.filter(team=team, user=user))
    TeamMember.objects.filter(team=team, user=user).delete()
    if before is not None:
        audit.record(
            action="team_member.remove",
            organisation=team.organisation.name,
            details={"team": team.name, "user": str(user.username), "before": before},
        )


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
    with transaction.atomic():
        existing = RepositoryGrant.objects.filter(repository=repository, **lookup)
        before = existing.values_list("level", flat=True).first()
        grant: RepositoryGrant | None = None
        if level == Level.NONE:
            existing.delete()
        else:
            grant, _ = RepositoryGrant.objects.update_or_create(
                repository=repository, **lookup, defaults={"level": level}
            )
        if level != Level.NONE or before is not None:
            audit.record(
                action="grant.set" if level != Level.NONE else "grant.remove",
                repository=repository.name,
                details={
                    "subject": _subject_name(subject),
                    "before": None if before is None else {"level": Level(before).label},
                    "after": None if level == Level.NONE else {"level": Level(level).label},
                },
            )
    return grant


def _subject_name(subject: dict[str, Any]) -> dict[str, str]:
    if subject["user"] is not None:
        return {"user": str(subject["user"].username)}
    if subject["team"] is not None:
        return {"team": str(subject["team"].name)}
    return {"robot": str(subject["robot"].username)}


def default_grant_add(
    *,
    organisation: Organisation,
    level: int,
    user: Any = None,
    team: Team | None = None,
    robot: Any = None,
) -> DefaultGrant:
    subject = _subject(user=user, team=team, robot=robot)
    with transaction.atomic():
        default = DefaultGrant.objects.create(organisation=organisation, level=level, **subject)
        audit.record(
            action="default_grant.add",
            organisation=organisation.name,
            details={
                "default_grant_id": default.pk,
                "subject": _subject_name(subject),
                "after": {"level": Level(level).label},
            },
        )
    return default


@transaction.atomic
def default_grant_remove(*, default_grant: DefaultGrant) -> None:
    """Stop copying this grant onto new repositories (existing grants stay)."""
    subject = {"user": default_grant.user, "team": default_grant.team, "robot": default_grant.robot}
    grant_id = default_grant.pk
    default_grant.delete()
    audit.record(
        action="default_grant.remove",
        organisation=default_grant.organisation.name,
        details={
            "default_grant_id": grant_id,
            "subject": _subject_name(subject),
            "before": {"level": Level(default_grant.level).label},
        },
    )


_UNCHANGED: Any = object()


def repository_update(
    *,
    repository: Any,
    description: str | None = None,
    visibility: str | None = None,
    untagged_manifest_hours: int | None = _UNCHANGED,
) -> Any:
    fields = ["description", "visibility"]
    if untagged_manifest_hours is not _UNCHANGED:
        fields.append("untagged_manifest_hours")
    before = {name: getattr(repository, name) for name in fields}
    if description is not None:
        repository.description = description
    if visibility is not None:
        if visibility not in ("private", "public"):
            raise ValidationError("visibility must be private or public")
        repository.visibility = visibility
    if untagged_manifest_hours is not _UNCHANGED:
        if untagged_manifest_hours is not None and untagged_manifest_hours < 0:
            raise ValidationError("untagged_manifest_hours must be 0 or more, or null")
        repository.untagged_manifest_hours = untagged_manifest_hours
    with transaction.atomic():
        repository.save(update_fields=fields)
        audit.record(
            action="repository.update",
            repository=repository.name,
            details={
                "before": before,
                "after": {name: getattr(repository, name) for name in fields},
            },
        )
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


@transaction.atomic
def robot_admin_set(*, robot: Any, admin: bool) -> None:
    """Make a robot an administrator of its organisation (it may apply its document), or not."""
    before = OrganisationAdminRobot.objects.filter(robot=robot).exists()
    if admin == before:
        return
    if admin:
        OrganisationAdminRobot.objects.create(robot=robot)
    else:
        OrganisationAdminRobot.objects.filter(robot=robot).delete()
    audit.record(
        action="robot.update",
        organisation=robot.organisation.name,
        details={
            "robot": robot.username,
            "before": {"organisation_admin": before},
            "after": {"organisation_admin": admin},
        },
    )
