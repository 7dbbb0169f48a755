"""``Authorization: Token <key>`` against the stored digests of :class:`api.models.ApiToken`.

Before a key is looked up, ``gantry.auth_guard`` may refuse the attempt (429): the client's
address has failed too often. A failure is counted there and audited once per window and
source (``audit.services.audit_failure``); a key that matches a revoked token, or one of an
inactive user, is audited on the page of the owner's teams, who would want to know that it
is still being tried.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from api.models import ApiToken, token_digest
from audit.services import A, audit_failure, audit_teams_of
from gantry.auth_guard import auth_failed, auth_refusal, auth_token_good

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
        digest = token_digest(key)
        # Never the key itself: only enough to tell which token was tried.
        hint = f"{key[:8]}…"
        refusal = auth_refusal(token_digest=digest)
        if refusal is not None:
            audit_failure(
                action=A.AUTH_FAILED,
                object_type="apitoken",
                object_repr=hint,
                data={"path": request.path, "reason": "throttled: too many failures"},
                throttled=True,
            )
            raise exceptions.Throttled(wait=refusal.retry_after, detail=refusal.message)
        token = ApiToken.objects.select_related("user").filter(digest=digest).first()
        if token is None or token.revoked_at is not None or not token.user.is_active:
            auth_failed()
            self._audit_failure(request, token, hint)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        auth_token_good(token_digest=digest)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    @staticmethod
    def _audit_failure(request, token: ApiToken | None, hint: str) -> None:
        if token is None:
            audit_failure(
                action=A.AUTH_FAILED,
                object_type="apitoken",
                object_repr=hint,
                data={"path": request.path, "reason": "unknown token"},
            )
            return
        reason = "revoked token" if token.revoked_at is not None else "token of an inactive user"
        for team in audit_teams_of(token):
            audit_failure(
                action=A.AUTH_FAILED,
                team=team,
                obj=token,
                data={"path": request.path, "reason": reason, "owner": token.user.get_username()},
            )

    def authenticate_header(self, request) -> str:
        return self.keyword
