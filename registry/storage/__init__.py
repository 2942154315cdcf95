"""Blob stores. `get_storage()` gives the one the settings name."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from registry.storage.base import ObjectNotFound, Storage, StorageError, blob_key, object_key

__all__ = [
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "blob_key",
    "get_storage",
    "object_key",
]


@functools.cache
def get_storage() -> Storage:
    if settings.HUB_STORAGE == "s3":
        from registry.storage.s3 import S3Storage

        config: dict[str, Any] = settings.HUB_S3
        return S3Storage(**config)
    from registry.storage.filesystem import FilesystemStorage

    return FilesystemStorage(settings.HUB_STORAGE_DIR, fsync=settings.HUB_FSYNC)


@receiver(setting_changed)
def _reset_storage(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("HUB_"):
        get_storage.cache_clear()
