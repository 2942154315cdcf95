from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.credentials import forget_verified


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    # A new password or a deactivated account must not ride on a remembered check.
    forget_verified()
