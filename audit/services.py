"""Writing the audit trail. Services call :func:`audit_record` for every state-changing action,
so the pages, the API and the CLI are audited alike; the request context (request id, client
address, channel) comes from ``gantry.request_context``."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

from audit.models import AuditEntry
from gantry.request_context import current_channel, current_client_ip, current_request_id
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
) -> AuditEntry:
    """Append one entry. ``obj`` fills type, id and repr unless they are given."""
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
        ip=_ip_or_none(current_client_ip()),
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


def _team_of(obj: models.Model) -> Team | None:
    if isinstance(obj, Team):
        return obj
    return getattr(obj, "team", None)


def audit_denied(
    *, user, model: type[models.Model], path: str = "", **lookup: Any
) -> AuditEntry | None:
    """Record that ``user`` asked for an object (``model`` matching ``lookup``) that exists but
    belongs to a team they are not in: ACCESS_DENIED, with the object's team (so the owners
    see it), the object and the path asked for.

    Records nothing and returns None when no such object exists (a mistyped or stale id is
    not an attempt on anyone's data) or when it belongs to one of the user's own teams (it is
    hidden for another reason, e.g. a deleted design). The entry is written at once; inside a
    transaction that later rolls back it would be lost with it.
    """
    try:
        obj = model._base_manager.filter(**lookup).first()
    except (TypeError, ValueError, ValidationError):  # "abc" for an integer id: nothing there
        return None
    if obj is None:
        return None
    team = _team_of(obj)
    if team is not None and team_list(user=user).filter(pk=team.pk).exists():
        return None
    return audit_record(action=A.ACCESS_DENIED, actor=user, team=team, obj=obj, data={"path": path})


def get_for_user_or_404(scoped: models.QuerySet[M], *, user, path: str = "", **lookup: Any) -> M:
    """The object matching ``lookup`` in ``scoped`` (a queryset already limited to what
    ``user`` may see), or Http404.

    This is the one place where a lookup outside the user's teams is noticed: when the object
    exists elsewhere, :func:`audit_denied` records the attempt, and the caller gets exactly the
    404 a nonexistent object gives, so the response never confirms that the object exists.
    Pages and the API pass the request's path.
    """
    try:
        return scoped.get(**lookup)
    except (TypeError, ValueError, ValidationError):  # a malformed id names nothing
        pass
    except scoped.model.DoesNotExist:
        audit_denied(user=user, model=scoped.model, path=path, **lookup)
    raise Http404(f"No {scoped.model._meta.object_name} matches the given query.")


def audit_login_failed(*, username: str, path: str = "") -> AuditEntry:
    """A failed login: the username tried (never the password), no actor, no team."""
    return audit_record(action=A.LOGIN_FAILED, actor_name=username, data={"path": path})
