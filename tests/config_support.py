"""Helpers for the configuration-as-code tests: documents from the people fixture's state."""

from __future__ import annotations

from typing import Any

import yaml

from teams.config.apply import apply
from teams.config.changes import Applier
from teams.config.export import export_text
from teams.config.plan import Plan, make_plan
from teams.permissions import Actor


def as_user(user: Any) -> Applier:
    return Applier(actor=Actor(user=user, method="password"))


def exported(organisation: Any) -> dict[str, Any]:
    data = yaml.safe_load(export_text(organisation))
    assert isinstance(data, dict)
    return data


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def plan_of(data: dict[str, Any] | str, applier: Applier, **options: Any) -> Plan:
    return make_plan(data if isinstance(data, str) else dump(data), applier=applier, **options)


def apply_of(data: dict[str, Any] | str, applier: Applier, **options: Any) -> Plan:
    return apply(data if isinstance(data, str) else dump(data), applier=applier, **options)


def summary(plan: Plan) -> list[tuple[str, str, str]]:
    return [(c.op, c.kind, c.key) for c in plan.changes]
