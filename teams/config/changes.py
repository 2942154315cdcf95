"""The typed changes a plan is made of, and who applies them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from teams.config.document import Path, path_text
from teams.permissions import Actor

# The order changes are made in: what others refer to first (a team before its grants),
# removals last and in the reverse order (grants before the team they name).
KINDS = (
    "organisation",
    "member",
    "team",
    "team_member",
    "robot",
    "repository",
    "repository_policy",
    "policy",
    "quota",
    "default_grant",
    "grant",
    "webhook",
)


@dataclass
class Change:
    op: str  # add, change or remove
    kind: str  # one of KINDS
    key: str  # what it is about: "devs", "devs/bob", "acme/app team:devs", ...
    before: Any = None
    after: Any = None
    path: Path = ()  # where the document says so (a removal: the section)
    repository: str | None = None  # the repository it touches, for the rights check
    owner_only: bool = False  # it makes or unmakes an owner
    # Resolved when planning, never shown: a webhook's secret.
    secret: str | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "kind": self.kind,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "path": path_text(self.path) if self.path else None,
        }

    def describe(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-"}[self.op]
        text = f"{sign} {self.kind} {self.key}"
        if self.op == "change":
            text += f": {self.before} -> {self.after}"
        elif self.op == "add" and self.after not in (None, {}):
            text += f": {self.after}"
        return text


def ordered(changes: list[Change]) -> list[Change]:
    first = [c for c in changes if c.op != "remove"]
    last = [c for c in changes if c.op == "remove"]
    first.sort(key=lambda c: KINDS.index(c.kind))  # stable: the document's order within a kind
    last.sort(key=lambda c: -KINDS.index(c.kind))
    return first + last


@dataclass(frozen=True)
class Applier:
    """Who applies a document: an actor with its rights, or the command-line operator."""

    actor: Actor
    operator: bool = False
    operator_name: str = "operator"

    @property
    def kind(self) -> str:
        if self.operator:
            return "operator"
        return "robot" if self.actor.robot is not None else "user"

    @property
    def name(self) -> str:
        return self.operator_name if self.operator else self.actor.name

    @classmethod
    def command_line(cls, login: str) -> Applier:
        name = f"operator:{login}"[:200]
        actor = Actor(subject_key=f"operator:{login}", subject_name=name, method="cli")
        return cls(actor=actor, operator=True, operator_name=name)
