"""The audit trail: who did what to which object, when, from where, under which request.

Entries are append-only. The model refuses to change or delete one, its queryset refuses bulk
updates and deletes, the admin offers no add/change/delete, and on PostgreSQL a trigger rejects
UPDATE and DELETE on the table (migration 0002), so not even raw SQL through Django can rewrite
history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from teams.models import Team


class AuditEntryImmutable(Exception):
    """Raised on any attempt to change or delete an audit entry."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditEntryImmutable("audit entries cannot be changed")

    def delete(self):
        raise AuditEntryImmutable("audit entries cannot be deleted")


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        DESIGN_CREATED = "design.created", "Design created"
        DESIGN_UPDATED = "design.updated", "Design edited"
        DESIGN_DELETED = "design.deleted", "Design deleted"
        DEPLOYMENT_REQUESTED = "deployment.requested", "Deployment requested"
        DEPLOYMENT_CANCELLED = "deployment.cancelled", "Deployment cancelled"
        DEPLOYMENT_DESTROYED = "deployment.destroy_requested", "Destroy requested"
        DEPLOYMENT_UPDATE_REQUESTED = "deployment.update_requested", "Update requested"
        DEPLOYMENT_DRIFTED = "deployment.drifted", "Drift found"
        ORPHANS_DELETED = "orphans.deleted", "Orphaned resources deleted"
        TARGET_CREATED = "target.created", "Target created"
        TARGET_UPDATED = "target.updated", "Target changed"
        TARGET_DELETED = "target.deleted", "Target deleted"
        TOKEN_CREATED = "token.created", "API token created"
        TOKEN_REVOKED = "token.revoked", "API token revoked"
        LOGIN_FAILED = "auth.login_failed", "Login failed"
        AUTH_FAILED = "auth.failed", "Authentication failed"
        ACCESS_DENIED = "auth.denied", "Access denied"

    class Channel(models.TextChoices):
        WEB = "web", "Web page"
        API = "api", "REST API"
        CLI = "cli", "Command line"
        WORKER = "worker", "Worker"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # PROTECT: users and teams with a history are deactivated, not deleted; and the trigger
    # would refuse the UPDATE a SET_NULL makes anyway.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    #: The actor's username as it was (or what an anonymous caller claimed to be).
    actor_name = models.CharField(max_length=150, blank=True)
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_entries"
    )
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    #: Details: before/after spec of an edit, the target of a deployment, the path refused...
    #: Never a secret (token keys and external ids are not recorded).
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["team", "-at"], name="audit_team_at")]

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.object_repr}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update"):
            raise AuditEntryImmutable("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryImmutable("audit entries cannot be deleted")
