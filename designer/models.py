"""Saved designs. Every save keeps the previous version as a numbered DesignVersion."""

from django.conf import settings
from django.db import models

from teams.models import Team


class Design(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="designs")
    name = models.CharField(max_length=40)
    spec = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: Deleted designs are hidden everywhere but kept, with their versions, for the history of
    #: the deployments made from them; their name is free again.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="design_unique_team_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.team}/{self.name}"


class DesignVersion(models.Model):
    """An immutable snapshot of a design's spec; version N is what the design held after save N."""

    design = models.ForeignKey(Design, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    spec = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["design", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["design", "version"], name="designversion_unique_design_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.design} v{self.version}"
