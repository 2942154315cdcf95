"""Each section of a document against the organisation's state: the changes it asks for.

A section the document leaves out is not looked at; an item's field left out is not
compared; what exists but is not in the document is removed only when pruning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.policies.actions import FIELDS, describe
from registry.policies.models import Policy
from registry.webhooks.safety import UnsafeTarget, resolve
from teams.config.changes import Change
from teams.config.document import Path
from teams.config.references import References
from teams.models import Level
from teams.permissions import pattern_matches

SUBJECTS = ("user", "team", "robot")


@dataclass
class Diff:
    data: dict[str, Any]  # the document
    current: dict[str, Any]  # the state (export.state)
    refs: References
    prune: bool
    hook_secrets: dict[tuple[str, str], str]
    changes: list[Change] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # repositories the document creates

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.changes.append(Change(*args, **kwargs))

    def pruning(self, section: str) -> bool:
        return self.prune and section in self.data

    def unique(self, seen: set[Any], key: Any, path: Path) -> bool:
        if key in seen:
            self.refs.fail(path, f"{key} is given twice")
            return False
        seen.add(key)
        return True

    # --- the organisation and its people -----------------------------------------------

    def organisation(self) -> None:
        given = {k: self.data[k] for k in ("display_name", "description") if k in self.data}
        before = {k: self.current[k] for k in given if self.current[k] != given[k]}
        if before:
            after = {k: given[k] for k in before}
            path = (next(iter(before)),)
            self.add("change", "organisation", self.data["organisation"], before, after, path)

    def team_users(self) -> set[str]:
        """Users the document puts in a team: members of the organisation by that."""
        users = set()
        for i, team in enumerate(self.data.get("teams", [])):
            for j, member in enumerate(team.get("members", [])):
                path = ("teams", i, "members", j, "user")
                name = self.refs.username(member["user"], path)
                if name is not None:
                    users.add(name)
        return users

    def members(self) -> None:
        if "members" not in self.data:
            return
        current = {m["user"]: m["role"] for m in self.current["members"]}
        seen: set[str] = set()
        changes = []
        for i, item in enumerate(self.data["members"]):
            path: Path = ("members", i)
            name = self.refs.username(item["user"], (*path, "user"))
            if name is None or not self.unique(seen, name, (*path, "user")):
                continue
            role = item.get("role")
            if name not in current:
                role = role or "member"
                changes.append(
                    Change(
                        "add",
                        "member",
                        name,
                        None,
                        {"role": role},
                        path,
                        owner_only=role == "owner",
                    )
                )
            elif role is not None and role != current[name]:
                changes.append(
                    Change(
                        "change",
                        "member",
                        name,
                        {"role": current[name]},
                        {"role": role},
                        path,
                        owner_only=True,
                    )
                )
        if self.pruning("members"):
            keep = seen | self.team_users()
            for name, role in sorted(current.items()):
                if name not in keep:
                    before = {"role": role}
                    changes.append(
                        Change(
                            "remove",
                            "member",
                            name,
                            before,
                            None,
                            ("members",),
                            owner_only=role == "owner",
                        )
                    )
        # Owners are made before others stop being owners: there is always one.
        changes.sort(key=lambda c: not (c.after or {}).get("role") == "owner")
        self.changes.extend(changes)

    def teams(self) -> None:
        if "teams" not in self.data:
            return
        current = {t["name"]: t for t in self.current["teams"]}
        seen: set[str] = set()
        for i, item in enumerate(self.data["teams"]):
            path: Path = ("teams", i)
            name = item["name"]
            if not self.unique(seen, name, (*path, "name")):
                continue
            fields = {"description": "", "may_create_repositories": False}
            self._item("team", name, item, current.get(name), fields, path)
            if "members" in item:
                before = current[name]["members"] if name in current else []
                self._team_members(name, item["members"], before, (*path, "members"))
        if self.pruning("teams"):
            for name in sorted(set(current) - seen):
                self.add("remove", "team", name, current[name], None, ("teams",))

    def _item(
        self,
        kind: str,
        key: str,
        item: dict[str, Any],
        current: dict[str, Any] | None,
        fields: dict[str, Any],
        path: Path,
        repository: str | None = None,
    ) -> None:
        """An add with the fields (defaults for those not given), or a change of those given."""
        if current is None:
            after = {f: item.get(f, default) for f, default in fields.items()}
            self.add("add", kind, key, None, after, path, repository=repository)
            return
        before = {f: current[f] for f in fields if f in item and item[f] != current[f]}
        if before:
            after = {f: item[f] for f in before}
            self.add("change", kind, key, before, after, path, repository=repository)

    def _team_members(
        self, team: str, members: list[dict[str, Any]], current: list[dict[str, str]], path: Path
    ) -> None:
        roles = {m["user"]: m["role"] for m in current}
        seen: set[str] = set()
        for j, member in enumerate(members):
            name = self.refs.username(member["user"], (*path, j, "user"))
            if name is None or not self.unique(seen, name, (*path, j, "user")):
                continue
            role = member.get("role")
            key = f"{team}/{name}"
            if name not in roles:
                self.add("add", "team_member", key, None, {"role": role or "member"}, (*path, j))
            elif role is not None and role != roles[name]:
                self.add(
                    "change", "team_member", key, {"role": roles[name]}, {"role": role}, (*path, j)
                )
        if self.prune:
            for name in sorted(set(roles) - seen):
                self.add(
                    "remove", "team_member", f"{team}/{name}", {"role": roles[name]}, None, path
                )

    def robots(self, disabled: set[str]) -> None:
        if "robots" not in self.data:
            return
        current = {r["name"]: r for r in self.current["robots"]}
        seen: set[str] = set()
        fields = {"description": "", "may_create_repositories": False, "organisation_admin": False}
        for i, item in enumerate(self.data["robots"]):
            path: Path = ("robots", i)
            name = item["name"]
            if not self.unique(seen, name, (*path, "name")):
                continue
            if name in disabled:
                self.refs.fail((*path, "name"), f"the robot {name} is disabled; use another name")
                continue
            self._item("robot", name, item, current.get(name), fields, path)
        if self.pruning("robots"):
            for name in sorted(set(current) - seen):
                self.add("remove", "robot", name, current[name], None, ("robots",))

    # --- repositories and what applies to them -----------------------------------------

    def repositories(self) -> set[str]:
        """The repository names grants and hooks may name: existing and declared."""
        current = {r["name"]: r for r in self.current["repositories"]}
        names = set(current)
        seen: set[str] = set()
        for i, item in enumerate(self.data.get("repositories", [])):
            path: Path = ("repositories", i)
            name = item["name"]
            if not self.refs.repository_name(name, (*path, "name")):
                continue
            if not self.unique(seen, name, (*path, "name")):
                continue
            names.add(name)
            if name not in current:
                self.created.append(name)
            fields = {"description": "", "visibility": "private"}
            self._item("repository", name, item, current.get(name), fields, path, repository=name)
            if "policy" in item:
                before = current.get(name, {}).get("policy", describe(None))
                self._policy(
                    "repository_policy", name, item["policy"], before, (*path, "policy"), name
                )
        return names

    def _policy(
        self,
        kind: str,
        key: str,
        given: Any,
        before: Any,
        path: Path,
        repository: str | None = None,
    ) -> None:
        after = describe(Policy(**policy_values(given)))
        if after != before:
            self.add("change", kind, key, before, after, path, repository=repository)

    def policy_and_quota(self) -> None:
        org = self.data["organisation"]
        if "policy" in self.data:
            self._policy("policy", org, self.data["policy"], self.current["policy"], ("policy",))
        if "quota_bytes" in self.data and self.data["quota_bytes"] != self.current["quota_bytes"]:
            before, after = self.current["quota_bytes"], self.data["quota_bytes"]
            self.add("change", "quota", org, before, after, ("quota_bytes",))

    def subject(
        self, item: dict[str, Any], path: Path, teams: set[str], robots: set[str]
    ) -> str | None:
        """ "user:bob", "team:devs" or "robot:ci" for a grant's subject, if it is known."""
        kind = next(k for k in SUBJECTS if k in item)
        where = (*path, kind)
        if kind == "user":
            name = self.refs.username(item["user"], where)
            return None if name is None else f"user:{name}"
        if item[kind] not in (teams if kind == "team" else robots):
            self.refs.fail(where, f"the organisation has no {kind} named {item[kind]!r}")
            return None
        return f"{kind}:{item[kind]}"

    def default_grants(self, teams: set[str], robots: set[str]) -> None:
        if "default_grants" not in self.data:
            return
        current = {_key(g): g["level"] for g in self.current["default_grants"]}
        seen: set[str] = set()
        for i, item in enumerate(self.data["default_grants"]):
            path: Path = ("default_grants", i)
            key = self.subject(item, path, teams, robots)
            if key is None or not self.unique(seen, key, path):
                continue
            self._level("default_grant", key, current.get(key), item["level"], path)
        if self.pruning("default_grants"):
            for key in sorted(set(current) - seen):
                self.add(
                    "remove",
                    "default_grant",
                    key,
                    {"level": current[key]},
                    None,
                    ("default_grants",),
                )

    def _level(
        self,
        kind: str,
        key: str,
        before: str | None,
        after: str,
        path: Path,
        repository: str | None = None,
    ) -> None:
        if before is None:
            self.add("add", kind, key, None, {"level": after}, path, repository=repository)
        elif before != after:
            self.add(
                "change",
                kind,
                key,
                {"level": before},
                {"level": after},
                path,
                repository=repository,
            )

    def grants(self, names: set[str], teams: set[str], robots: set[str]) -> None:
        if "grants" not in self.data:
            return
        current = {(g["repository"], _key(g)): g["level"] for g in self.current["grants"]}
        # A repository the document creates gets the default grants there are now, as
        # one created by a push does: they are what its grants are compared with.
        for name in self.created:
            for default in self.current["default_grants"]:
                current[(name, _key(default))] = default["level"]
        wanted: dict[tuple[str, str], tuple[str, Path]] = {}
        for i, item in enumerate(self.data["grants"]):
            path: Path = ("grants", i)
            matched = self.matching(item["repository"], names, (*path, "repository"))
            subject = self.subject(item, path, teams, robots)
            if subject is None:
                continue
            for name in matched:
                known = wanted.get((name, subject))
                # Two entries (a pattern and a name) for one grant: the higher level counts.
                if known is None or Level[known[0].upper()] < Level[item["level"].upper()]:
                    wanted[(name, subject)] = (item["level"], path)
        for (name, subject), (level, path) in sorted(wanted.items()):
            before = current.get((name, subject))
            self._level("grant", f"{name} {subject}", before, level, path, repository=name)
        if self.pruning("grants"):
            for name, subject in sorted(set(current) - set(wanted)):
                before = {"level": current[(name, subject)]}
                self.add(
                    "remove",
                    "grant",
                    f"{name} {subject}",
                    before,
                    None,
                    ("grants",),
                    repository=name,
                )

    def matching(self, given: str, names: set[str], path: Path) -> list[str]:
        if "*" in given:
            if not self.refs.repository_pattern(given, path):
                return []
            return sorted(n for n in names if pattern_matches(given, n))
        if not self.refs.repository_name(given, path):
            return []
        if given not in names:
            self.refs.fail(path, f"no repository named {given!r}: declare it under repositories")
            return []
        return [given]

    def webhooks(self, names: set[str]) -> None:
        if "webhooks" not in self.data:
            return
        current = {(h.get("repository", ""), h["url"]): h for h in self.current["webhooks"]}
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(self.data["webhooks"]):
            path: Path = ("webhooks", i)
            repository = item.get("repository", "")
            if repository and not self.matching(repository, names, (*path, "repository")):
                continue
            key = (repository, item["url"])
            if not self.unique(seen, key, (*path, "url")):
                continue
            if key not in current:
                self._reachable(item["url"], (*path, "url"))
            secret = (
                self.refs.secret(item["secret"], (*path, "secret")) if "secret" in item else None
            )
            label = f"{repository} {item['url']}".strip()
            scope = repository or None
            fields = {"events": ["push", "tag_delete"], "enabled": True}
            given = {**item, "events": sorted(item["events"])} if "events" in item else item
            before = current.get(key)
            count = len(self.changes)
            if before is not None:
                before = {**before, "events": sorted(before["events"])}
            self._item("webhook", label, given, before, fields, path, repository=scope)
            if secret is not None and before is not None and secret != self.hook_secrets.get(key):
                if len(self.changes) == count:
                    self.add("change", "webhook", label, {}, {}, path, repository=scope)
                self.changes[-1].before["secret"] = "(hidden)"
                self.changes[-1].after["secret"] = "(changed)"
            if len(self.changes) > count:
                self.changes[-1].secret = secret
        if self.pruning("webhooks"):
            for repository, url in sorted(set(current) - seen):
                before = current[(repository, url)]
                label = f"{repository} {url}".strip()
                self.add(
                    "remove",
                    "webhook",
                    label,
                    before,
                    None,
                    ("webhooks",),
                    repository=repository or None,
                )

    def _reachable(self, url: str, path: Path) -> None:
        """A new hook's target, checked as the webhooks API checks it."""
        try:
            resolve(url)
        except UnsafeTarget as exc:
            self.refs.fail(path, str(exc))


def _key(grant: dict[str, Any]) -> str:
    kind = next(k for k in SUBJECTS if k in grant)
    return f"{kind}:{grant[kind]}"


def policy_values(given: dict[str, Any] | None) -> dict[str, Any]:
    """A document's policy as policy_set's values (FIELDS)."""
    given = given or {}
    retention = given.get("retention") or {}
    values = {
        "immutable_tags": list(given.get("immutable_tags", [])),
        "retention_enabled": retention.get("enabled", False),
        "keep_last": retention.get("keep_last"),
        "keep_patterns": list(retention.get("keep_patterns", [])),
        "remove_older_than_days": retention.get("remove_older_than_days"),
    }
    assert set(values) == set(FIELDS)  # noqa: S101 - kept in step with policy_set
    return values
