"""Reads of API tokens."""

from __future__ import annotations

from api.models import ApiToken


def token_is_active(*, token_id: int) -> bool:
    """Whether the token still lets its holder in (not revoked)."""
    return ApiToken.objects.filter(pk=token_id, revoked_at__isnull=True).exists()
