"""``Authorization: Token <key>`` against the stored digests of :class:`api.models.ApiToken`."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from api.models import ApiToken, token_digest
from audit.services import A, audit_record

#: last_used_at is refreshed at most this often, so a busy pipeline does not write on every call.
_TOUCH_EVERY = timedelta(minutes=1)


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: use 'Token <key>' with no spaces in the key."
            )
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = (
            ApiToken.objects.select_related("user")
            .filter(digest=token_digest(key), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            # Never the key itself: only enough to tell which token was tried.
            audit_record(
                action=A.AUTH_FAILED,
                actor_name="",
                object_type="apitoken",
                object_repr=f"{key[:8]}…",
                data={"path": request.path, "reason": "unknown, revoked or inactive token"},
            )
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
