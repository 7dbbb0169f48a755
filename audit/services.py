"""Writing the audit trail. Services call :func:`audit_record` for every state-changing action,
so the pages, the API and the CLI are audited alike; the request context (request id, client
address, channel) comes from ``gantry.request_context``.

Failed authentication is what anyone can send without an account, as fast as they like, and
the table is append-only: one row per attempt would let a stranger grow it without bound.
:func:`audit_failure` therefore records a *window* per source (action, client address,
object): the first failure is written at once as an ordinary entry, the rest of the window's
failures are only counted in Redis, and when the window closes
(:func:`audit_windows_close`, run by beat) one summary entry gives the count. Nothing is ever
updated, so the trail stays append-only in the database's sense.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

from audit.models import AuditEntry
from gantry.auth_guard import client_source
from gantry.request_context import (
    after_response,
    current_channel,
    current_client_ip,
    current_request_id,
)
from gantry.request_context import (
    bind as bind_context,
)
from gantry.shared_redis import redis_client, redis_key
from teams.models import Team
from teams.selectors import team_list

log = logging.getLogger("gantry.audit")

A = AuditEntry.Action
M = TypeVar("M", bound=models.Model)


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def audit_record(
    *,
    action: str,
    actor=None,
    actor_name: str = "",
    team=None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry. ``obj`` fills type, id and repr unless they are given; the client
    address is the request's unless ``ip`` is given."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    entry = AuditEntry(
        action=action,
        actor=actor,
        actor_name=(actor_name or (actor.get_username() if actor is not None else ""))[:150],
        team=team,
        object_type=object_type[:40],
        object_id=str(object_id)[:64],
        object_repr=object_repr[:200],
        data=data or {},
        ip=_ip_or_none(current_client_ip() if ip is None else ip),
        request_id=current_request_id()[:128],
        channel=current_channel(),
    )
    entry.save()
    log.info(
        "audit %s by %s on %s %s",
        action,
        entry.actor_name or "anonymous",
        entry.object_type,
        entry.object_id,
        extra={"audit_action": action, "team_id": getattr(team, "pk", None)},
    )
    return entry


def audit_teams_of(obj: models.Model) -> list[Team | None]:
    """The teams whose page shows an attempt on ``obj``: its team; for an object a user owns
    (an API token) each of the owner's teams; ``[None]`` when there is none."""
    if isinstance(obj, Team):
        return [obj]
    team = getattr(obj, "team", None)
    if team is not None:
        return [team]
    owner_id = getattr(obj, "user_id", None)
    if owner_id is not None:
        return list(Team.objects.filter(memberships__user_id=owner_id).order_by("pk")) or [None]
    return [None]


def _may_see(user, obj: models.Model, teams: list[Team | None]) -> bool:
    """Whether ``obj`` is hidden from ``user`` for a reason other than belonging to others."""
    owner_id = getattr(obj, "user_id", None)
    if owner_id is not None and not isinstance(obj, Team) and getattr(obj, "team", None) is None:
        return owner_id == user.pk  # a user's own object (tokens are nobody else's)
    mine = team_list(user=user)
    return any(team is not None and mine.filter(pk=team.pk).exists() for team in teams)


def audit_denied(
    *, user, model: type[models.Model], path: str = "", field: str = "", **lookup: Any
) -> list[AuditEntry]:
    """Record that ``user`` asked for an object (``model`` matching ``lookup``) that exists but
    belongs to others: ACCESS_DENIED, on the page of each team that owns it (so the owners see
    it), with the object and the path asked for (or the body field that named it).

    Records nothing when no such object exists (a mistyped or stale id is not an attempt on
    anyone's data) or when the user may see it (it is hidden for another reason, e.g. a
    deleted design). Request handlers call it through :func:`audit_denied_later`.
    """
    try:
        obj = model._base_manager.filter(**lookup).first()
    except (TypeError, ValueError, ValidationError):  # "abc" for an integer id: nothing there
        return []
    if obj is None:
        return []
    teams = audit_teams_of(obj)
    if _may_see(user, obj, teams):
        return []
    data = {"path": path, "field": field} if field else {"path": path}
    return [
        audit_record(action=A.ACCESS_DENIED, actor=user, team=team, obj=obj, data=data)
        for team in teams
    ]


def audit_denied_later(
    *, user, model: type[models.Model], path: str = "", field: str = "", **lookup: Any
) -> None:
    """:func:`audit_denied` once the response is sent: a refused lookup answers as fast as a
    missing id (the entry's query and write happen after the 404 is out), and it is written
    outside the request's transaction, so a rollback cannot lose it. ``field`` names the
    request body's field when the id came from there (``{"design": 12}``)."""
    after_response(
        functools.partial(audit_denied, user=user, model=model, path=path, field=field, **lookup)
    )


def get_for_user_or_404(scoped: models.QuerySet[M], *, user, path: str = "", **lookup: Any) -> M:
    """The object matching ``lookup`` in ``scoped`` (a queryset already limited to what
    ``user`` may see), or Http404.

    This is the one place where a lookup outside the user's teams is noticed: after the
    response, :func:`audit_denied` records the attempt when the object exists elsewhere, and
    the caller gets exactly the 404 a nonexistent object gives, as fast, so the response never
    confirms that the object exists. Pages and the API pass the request's path.
    """
    try:
        return scoped.get(**lookup)
    except (TypeError, ValueError, ValidationError):  # a malformed id names nothing
        pass
    except scoped.model.DoesNotExist:
        audit_denied_later(user=user, model=scoped.model, path=path, **lookup)
    raise Http404(f"No {scoped.model._meta.object_name} matches the given query.")


# --- failures, counted per window -------------------------------------------------------------

# KEYS[1] the source's window pointer, KEYS[2] the set of open windows by closing time.
# ARGV: now, window seconds, throttled (0/1), the opening entry's fields (JSON), username.
# Returns 1 when this failure opened a window (the caller writes the opening entry).
_WINDOW = """
local opened = redis.call('GET', KEYS[1])
local new = 0
if not opened then
  opened = ARGV[1]
  redis.call('SET', KEYS[1], opened, 'EX', ARGV[2])
  new = 1
end
local h = KEYS[1] .. ':' .. opened
if new == 1 then
  redis.call('HSET', h, 'info', ARGV[4], 'opened', opened)
  redis.call('ZADD', KEYS[2], tonumber(opened) + tonumber(ARGV[2]), h)
end
redis.call('HINCRBY', h, 'count', 1)
if ARGV[3] == '1' then redis.call('HINCRBY', h, 'throttled', 1) end
if ARGV[5] ~= '' and redis.call('HLEN', h) < 24 then redis.call('HSET', h, 'u:' .. ARGV[5], 1) end
redis.call('EXPIRE', h, tonumber(ARGV[2]) * 4 + 3600)
return new
"""
#: Usernames a login-failure summary lists at most.
SUMMARY_USERNAMES = 20


def _open_windows_key() -> str:
    return redis_key("audit", "windows")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def audit_failure(
    *,
    action: str,
    actor_name: str = "",
    team: Team | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_repr: str = "",
    data: dict[str, Any] | None = None,
    throttled: bool = False,
) -> AuditEntry | None:
    """Record a failed authentication (or one refused by the throttle) from the client's
    address, at most one entry per window and source (see the module docstring). Returns the
    entry when this failure opened a window, None when it was only counted."""
    window = int(settings.GANTRY_AUTH_FAILURE_WINDOW)
    source = client_source()
    object_id = str(obj.pk) if obj is not None else ""
    object_type = object_type or (obj._meta.model_name if obj is not None else "")
    entry_data = {**(data or {}), "window_seconds": window}
    info = {
        "action": action,
        "actor_name": actor_name,
        "team_id": team.pk if team is not None else None,
        "object_type": object_type,
        "object_id": object_id,
        "object_repr": object_repr or (str(obj) if obj is not None else ""),
        "data": data or {},
        "ip": current_client_ip(),
        "source": source,
        "channel": current_channel(),
    }
    pointer = redis_key("audit", "window", action, source, team.pk if team else "", object_id)
    try:
        opened = redis_client().eval(
            _WINDOW,
            2,
            pointer,
            _open_windows_key(),
            time.time(),
            window,
            int(throttled),
            json.dumps(info),
            actor_name[:150],
        )
    except redis.RedisError:  # no window to count in: every failure is an entry of its own
        log.warning("audit failure windows unavailable: Redis unreachable", exc_info=True)
        opened = True
    if not opened:
        return None
    return audit_record(
        action=action,
        actor_name=actor_name,
        team=team,
        obj=obj,
        object_type=object_type,
        object_repr=info["object_repr"],
        data={**entry_data, "throttled": throttled} if throttled else entry_data,
    )


def audit_windows_close(*, now: float | None = None) -> int:
    """Write the summary of every failure window that has closed and saw more than its
    opening failure; returns how many were written. Beat runs it every minute; running it
    twice at once writes each summary once (a window is claimed by removing it)."""
    client = redis_client()
    now = time.time() if now is None else now
    written = 0
    for name in client.zrangebyscore(_open_windows_key(), "-inf", now):
        if not client.zrem(_open_windows_key(), name):
            continue  # another run claimed it
        fields = {k.decode(): v.decode() for k, v in client.hgetall(name).items()}
        client.delete(name)
        count = int(fields.get("count", 0))
        if count <= 1 or "info" not in fields:
            continue
        info = json.loads(fields["info"])
        opened = float(fields["opened"])
        usernames = sorted(k[2:] for k in fields if k.startswith("u:"))[:SUMMARY_USERNAMES]
        summary = {
            **info["data"],
            "summary": True,
            "count": count,
            "throttled": int(fields.get("throttled", 0)),
            "source": info["source"],
            "window_opened": _iso(opened),
            "window_closed": _iso(opened + int(settings.GANTRY_AUTH_FAILURE_WINDOW)),
        }
        if usernames:
            summary["usernames"] = usernames
        team = Team.objects.filter(pk=info["team_id"]).first() if info["team_id"] else None
        with bind_context(channel=info["channel"]):
            audit_record(
                action=info["action"],
                actor_name=info["actor_name"],
                team=team,
                object_type=info["object_type"],
                object_id=info["object_id"],
                object_repr=info["object_repr"],
                data=summary,
                ip=info["ip"],
            )
        written += 1
    return written


def audit_login_failed(*, username: str, path: str = "", throttled: bool = False) -> None:
    """A failed (or refused) login: the username tried (never the password), no actor, no
    team; counted per window and address (:func:`audit_failure`)."""
    audit_failure(
        action=A.LOGIN_FAILED, actor_name=username, data={"path": path}, throttled=throttled
    )
