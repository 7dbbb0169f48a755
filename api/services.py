"""Writes of API tokens: the UI, the API and ``manage.py drf_create_token`` call these."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from api.models import TOKEN_NAME_PATTERN, ApiToken, token_digest, token_generate
from audit.services import A, audit_record
from gantry.auth_guard import auth_token_forget

MAX_ACTIVE_TOKENS = 20


class TokenLimitReached(ValidationError):
    """The user holds :data:`MAX_ACTIVE_TOKENS` active tokens: a conflict with what exists
    (the API answers 409), not a malformed request."""


@transaction.atomic
def token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """A new token; returns it and its key, which is never shown or stored again."""
    if not isinstance(name, str) or not re.fullmatch(TOKEN_NAME_PATTERN, name):
        raise ValidationError(
            {"name": ["give the token a name of 1 to 80 characters without control characters"]}
        )
    name = name.strip()
    active = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if active.count() >= MAX_ACTIVE_TOKENS:
        raise TokenLimitReached(
            {"name": [f"you already have {MAX_ACTIVE_TOKENS} active tokens; revoke one first"]}
        )
    key = token_generate()
    token = ApiToken.objects.create(user=user, name=name, digest=token_digest(key), hint=key[:8])
    audit_record(action=A.TOKEN_CREATED, actor=user, obj=token, data={"name": name})
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken, user: AbstractBaseUser) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        transaction.on_commit(lambda: auth_token_forget(token_digest=token.digest))
        audit_record(
            action=A.TOKEN_REVOKED,
            actor=user,
            obj=token,
            data={"name": token.name, "owner": token.user.get_username()},
        )
    return token
