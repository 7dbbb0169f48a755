"""The deployer's records: database rows are the truth about every deployment.

``Deployment`` is one run of a design's graph against a target (status, who, when, the spec
snapshot); ``ResourceRecord`` is one graph node's state in it; ``DeploymentEvent`` is the
append-only, numbered log that the page streams. Nothing here talks to AWS.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from designer.models import Design
from teams.models import Team


def new_identity() -> str:
    """A deployment's identity: random, so unique across installations and never reused (a
    database sequence restarts at 1 in every installation and after a re-created database)."""
    return str(uuid.uuid4())


class Installation(models.Model):
    """This Gantry installation: one row, made once (``Installation.current()``).

    Its id is the value of the ``gantry:installation`` tag on every resource Gantry creates,
    so resources of another installation sharing the AWS account are never taken for ours,
    and ``manage.py orphans`` can list what this installation left behind.
    """

    key = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    installation_id = models.CharField(max_length=64, unique=True, default=new_identity)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(key=1), name="installation_single_row")]

    def __str__(self) -> str:
        return self.installation_id

    @classmethod
    def current(cls) -> Installation:
        """The row, created on first use (the database enforces one)."""
        installation, _ = cls.objects.get_or_create(key=1)
        return installation


class Target(models.Model):
    """Where a deployment goes: the local sandbox emulator, or an AWS account through a role.

    Only the role ARN and external id are kept; Gantry never stores access keys.
    """

    class Kind(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox (local AWS emulator)"
        AWS = "aws", "AWS account (assumed role)"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="targets")
    name = models.CharField(max_length=60)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SANDBOX)
    region = models.CharField(max_length=30, default="us-east-1")
    endpoint_url = models.URLField(
        blank=True, help_text="The emulator's URL for a sandbox target; empty for AWS."
    )
    role_arn = models.CharField(max_length=2048, blank=True)
    external_id = models.CharField(max_length=1224, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="target_unique_team_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.region})"


class Deployment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DEPLOYING = "deploying", "Deploying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ROLLING_BACK = "rolling_back", "Rolling back"
        ROLLED_BACK = "rolled_back", "Rolled back"
        CANCELLED = "cancelled", "Cancelled"
        DESTROYING = "destroying", "Destroying"
        DESTROYED = "destroyed", "Destroyed"
        DESTROY_FAILED = "destroy_failed", "Destroy failed"

    #: Statuses in which the reconciler still has work; the database allows one per design.
    ACTIVE = (Status.QUEUED, Status.DEPLOYING, Status.ROLLING_BACK, Status.DESTROYING)
    #: Statuses in which nothing more happens unless a user asks (destroy).
    TERMINAL = (
        Status.SUCCEEDED,
        Status.FAILED,
        Status.ROLLED_BACK,
        Status.CANCELLED,
        Status.DESTROYED,
        Status.DESTROY_FAILED,
    )

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="deployments")
    design = models.ForeignKey(Design, on_delete=models.PROTECT, related_name="deployments")
    design_version = models.PositiveIntegerField()
    spec = models.JSONField(help_text="The design's spec as it was when the deployment started.")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="deployments")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployments"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(blank=True, help_text="A human sentence: why it failed or waits.")
    keep_on_failure = models.BooleanField(
        default=False,
        help_text="Leave the resources in place for debugging instead of rolling back.",
    )
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    #: Only the task message carrying this token may advance the deployment; a stale or
    #: duplicated message finds another token and does nothing.
    run_token = models.CharField(max_length=32, blank=True)
    last_event_seq = models.PositiveIntegerField(default=0)
    #: A pass holds the deployment while it talks to AWS (outside any transaction): another
    #: message for it waits until ``lease_until``, which the running pass keeps extending; a
    #: pass killed with its worker stops extending it, so the next one takes over soon after.
    lease_holder = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    #: The value of the ``gantry:deployment`` tag on every resource of this deployment (see
    #: :func:`new_identity`). Deployments made before identities were random keep ``gd-<id>``.
    identity = models.CharField(max_length=64, unique=True, default=new_identity, editable=False)
    #: The installation whose ``gantry:installation`` tag its resources carry (empty for the
    #: deployments made before installations were tagged).
    installation = models.CharField(max_length=64, blank=True, editable=False)
    #: The resource graph this deployment builds, stored when it starts (``ResourceGraph
    #: .to_document()``): the engine, the pages and the API read it and never re-plan, so a
    #: newer planner or a tightened validation rule never breaks a live or an old deployment.
    graph = models.JSONField(default=dict, editable=False)
    #: The API's ``Idempotency-Key``: a retried request with the same key from the same user
    #: returns this deployment instead of starting another.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="deployment_unique_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["design"],
                condition=Q(status__in=["queued", "deploying", "rolling_back", "destroying"]),
                name="deployment_one_active_per_design",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_run_at"])]

    def __str__(self) -> str:
        return f"{self.tag} {self.design.name} ({self.status})"

    @property
    def tag(self) -> str:
        """The value of the ``gantry:deployment`` tag on every resource of this deployment."""
        return self.identity

    @property
    def legacy_identity(self) -> bool:
        """Made before identities were random: its resources carry ``gantry:deployment=gd-<id>``
        and no ``gantry:installation`` tag, and keep the names they were created with."""
        return self.identity.startswith(LEGACY_PREFIX)

    @property
    def name_suffix(self) -> str:
        """The short part of the identity that names AWS makes unique per account carry."""
        return "" if self.legacy_identity else self.identity.replace("-", "")[:8]

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


#: Identities of deployments made before identities were random.
LEGACY_PREFIX = "gd-"


class ResourceRecord(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CREATING = "creating", "Creating"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETING = "deleting", "Deleting"
        DELETED = "deleted", "Deleted"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="resources")
    logical_id = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    position = models.PositiveIntegerField(help_text="Creation order in the graph.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    physical_id = models.CharField(max_length=2048, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    waiting_reason = models.TextField(blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    delete_started_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "logical_id"], name="resource_unique_deployment_logical_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.state})"


class DeploymentEvent(models.Model):
    """Append-only: numbered per deployment so a reconnecting page resumes by number."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=30)
    logical_id = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=20, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["deployment", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "seq"], name="event_unique_deployment_seq"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.message}"

    def to_json(self) -> dict:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "logical_id": self.logical_id,
            "state": self.state,
            "message": self.message,
            "data": self.data,
        }
