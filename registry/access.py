"""Where the registry asks who may do what.

Until accounts and teams land (issue 3) every request may do everything; the
registry already asks here for each read, write and cross-repository mount, so
the permission function can be put in without touching the data path.
"""

from __future__ import annotations

from django.http import HttpRequest


def may_read(request: HttpRequest, repository_name: str) -> bool:
    return True


def may_write(request: HttpRequest, repository_name: str) -> bool:
    return True


def may_delete(request: HttpRequest, repository_name: str) -> bool:
    return True
