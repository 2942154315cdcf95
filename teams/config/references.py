"""What a document's names refer to: users (by name or e-mail), repositories, secrets.

Each lookup that fails adds a Problem naming the place in the document; the plan
collects them all and applies nothing while there is any.
"""

from __future__ import annotations

import os
from pathlib import Path as FilePath
from typing import Any

from django.contrib.auth import get_user_model

from registry.errors import RegistryError
from registry.names import check_name
from teams.config.document import Document, Path, Problem
from teams.permissions import valid_scope_pattern

# Through the API a document may name only environment variables meant for it: the
# server's own (its database URL, its secret key) are not for a caller to point a hook at.
API_SECRET_PREFIX = "HUB_CONFIG_SECRET_"


class References:
    def __init__(self, document: Document, *, server_secrets: bool = True) -> None:
        self.document = document
        # False through the API: only API_SECRET_PREFIX variables, no files.
        self.server_secrets = server_secrets
        self.problems: list[Problem] = []
        self._users: dict[str, Any] = {}

    def fail(self, path: Path, message: str) -> None:
        self.problems.append(self.document.problem(path, message))

    def user(self, given: str, path: Path) -> Any:
        """The active user of that name or e-mail address, or None (with a problem)."""
        if given in self._users:
            return self._users[given]
        # By name any account counts (an export names deactivated members too); by
        # e-mail only active ones, as an address may have moved to a new account.
        users = get_user_model().objects.all()
        found = users.filter(username=given).first()
        if found is None and "@" in given:
            matches = list(users.filter(is_active=True, email__iexact=given)[:2])
            if len(matches) > 1:
                self.fail(path, f"several users have the e-mail address {given!r}: use a name")
                return None
            found = matches[0] if matches else None
        if found is None:
            self.fail(path, f"no user named {given!r}")
        self._users[given] = found
        return found

    def username(self, given: str, path: Path) -> str | None:
        user = self.user(given, path)
        return None if user is None else str(user.username)

    def repository_name(self, name: str, path: Path) -> bool:
        """A repository name in the organisation's own namespace."""
        if not self._inside(name, path):
            return False
        try:
            check_name(name)
        except RegistryError:
            self.fail(path, f"{name!r} is not a valid repository name")
            return False
        return True

    def repository_pattern(self, pattern: str, path: Path) -> bool:
        if not self._inside(pattern, path):
            return False
        if not valid_scope_pattern(pattern):
            self.fail(path, f"{pattern!r} is not a valid repository pattern")
            return False
        return True

    def _inside(self, name: str, path: Path) -> bool:
        org = self.document.organisation
        if not name.startswith(f"{org}/"):
            self.fail(path, f"{name!r} is outside the organisation's namespace {org}/")
            return False
        return True

    def secret(self, reference: dict[str, str], path: Path) -> str | None:
        """The secret a reference names, read now; None (with a problem) when it cannot be."""
        if not self.server_secrets:
            name = reference.get("env", "")
            if not name.startswith(API_SECRET_PREFIX):
                self.fail(
                    path,
                    f"through the API a secret is an environment variable named "
                    f"{API_SECRET_PREFIX}*; files are read only by the hub command",
                )
                return None
        if "env" in reference:
            value = os.environ.get(reference["env"])
            if not value:
                self.fail(path, f"the environment variable {reference['env']} is not set")
                return None
            return value
        try:
            value = FilePath(reference["file"]).read_text().strip()
        except OSError as exc:
            self.fail(path, f"cannot read the secret file {reference['file']}: {exc.strerror}")
            return None
        if not value:
            self.fail(path, f"the secret file {reference['file']} is empty")
            return None
        return value
