"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEntry
from teams.models import Team

A = AuditEntry.Action


def audit_entry_list(*, team: Team) -> QuerySet[AuditEntry]:
    """A team's entries, newest first. The caller has checked that the user may see the team."""
    return AuditEntry.objects.filter(team=team).select_related("actor")


def audit_entry_summary(entry: AuditEntry) -> str:
    """One line of what the entry's data says, for the team's page (the admin shows it all)."""
    data = entry.data or {}
    if entry.action == A.DESIGN_UPDATED:
        before, after = data.get("before") or {}, data.get("after") or {}
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return f"v{data.get('version', '?')}: changed {', '.join(changed) or 'nothing'}"
    if entry.action == A.DESIGN_CREATED:
        return "v1"
    if entry.action == A.DEPLOYMENT_REQUESTED:
        return f"{data.get('design', '')} v{data.get('design_version', '?')} to {data.get('target', '')}"
    if entry.action == A.ACCESS_DENIED:
        return f"refused {data.get('path', '')}"
    return ""
