"""API tokens for automation.

A token is shown once, when it is made; Gantry keeps only its SHA-256 digest and the first
characters (to tell tokens apart in a list). A user may hold several named tokens (one per
pipeline) and revoke each on its own.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models

PREFIX = "gty_"
#: A token's name: 1 to 80 characters with at least one that is not a space, and no control
#: characters (the name is shown in lists, logs and CSV exports). The API's schema publishes
#: this pattern and the service checks it, so both say the same.
TOKEN_NAME_PATTERN = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]{1,80}$"  # noqa: S105 - a pattern


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    digest = models.CharField(max_length=64, unique=True)
    #: The key's first characters, shown in lists ("gty_AbC1...").
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
