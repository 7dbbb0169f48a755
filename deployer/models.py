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

from deployer import constants
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
    """A live stack: one per design and target until it is destroyed. Its status says what it
    is now; every change to it (create, each update, destroy) is a :class:`Run` of its own."""

    Status = constants.DeploymentStatus

    ACTIVE = constants.ACTIVE
    TERMINAL = constants.TERMINAL

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="deployments")
    design = models.ForeignKey(Design, on_delete=models.PROTECT, related_name="deployments")
    #: The design version and spec that are live now (the last update that succeeded).
    design_version = models.PositiveIntegerField()
    spec = models.JSONField(help_text="The design's spec as it is live now.")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="deployments")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployments"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(blank=True, help_text="A human sentence: why it failed or waits.")
    #: Of the run in progress (or the last one): leave what failed in place instead of rolling
    #: back, and whether a user asked to cancel it.
    keep_on_failure = models.BooleanField(
        default=False,
        help_text="Leave the resources in place for debugging instead of rolling back.",
    )
    cancel_requested = models.BooleanField(default=False)
    #: The run in progress, or the last one.
    current_run = models.ForeignKey(
        "Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The last drift check: whether what AWS reports matches what was applied.
    drift_status = models.CharField(
        max_length=10, choices=constants.DriftStatus.choices, blank=True, default=""
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
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
                condition=Q(status__in=[str(s) for s in constants.ACTIVE]),
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

    @property
    def is_live(self) -> bool:
        """Its stack exists (or is being built): a deploy of its design changes it in place."""
        return self.status not in constants.GONE


#: Identities of deployments made before identities were random.
LEGACY_PREFIX = "gd-"


class Run(models.Model):
    """One change to a live stack: its creation, an update (a change set applied), or its
    destruction; with who asked, when, the design versions before and after, the change set
    that was reviewed, how it ended and why. Its events are the deployment's events of it."""

    Operation = constants.RunOperation
    Status = constants.RunStatus

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField(help_text="1 for the create, then one more per run.")
    operation = models.CharField(max_length=10, choices=Operation.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployment_runs"
    )
    version_before = models.PositiveIntegerField(null=True, blank=True)
    version_after = models.PositiveIntegerField(null=True, blank=True)
    spec_before = models.JSONField(null=True, blank=True)
    spec_after = models.JSONField(null=True, blank=True)
    #: The applied graph before the run and the graph it goes to (``to_document()`` form).
    graph_before = models.JSONField(default=dict, blank=True)
    graph_after = models.JSONField(default=dict, blank=True)
    #: The change set as it was reviewed (``deployer.changes.ChangeSet.to_json()``).
    change_set = models.JSONField(default=dict, blank=True)
    keep_on_failure = models.BooleanField(default=False)
    allow_interruption = models.BooleanField(default=False)
    #: The API's ``Idempotency-Key`` of the request that started the run.
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deployment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "number"], name="run_unique_number"),
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="run_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.number} of deployment {self.deployment_id} ({self.operation})"

    @property
    def is_active(self) -> bool:
        return self.status in constants.RUN_ACTIVE


class ChangeSet(models.Model):
    """A change set made for review (the API's change-set resource): what applying a design
    version to a live deployment would do, computed against the deployment as it was then.
    Executing it starts an update run, unless the deployment has moved on since (409)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="change_sets")
    design_version = models.PositiveIntegerField()
    #: ``deployment.last_event_seq`` when it was made: any run or drift check since changes it.
    based_on_seq = models.PositiveIntegerField()
    body = models.JSONField(help_text="deployer.changes.ChangeSet.to_json()")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    executed_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"change set {self.pk} for deployment {self.deployment_id} v{self.design_version}"


class ResourceRecord(models.Model):
    """One physical resource of a deployment: a graph node's resource, in one generation (a
    replacement is the node's next generation, a record of its own, while the old one is
    deleted). It keeps the node definition it was built to, the properties last applied (what
    a change and a drift check compare against), and what the run in progress does to it."""

    State = constants.ResourceState
    Action = constants.ResourceAction
    Drift = constants.ResourceDrift

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="resources")
    logical_id = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    generation = models.PositiveIntegerField(default=0)
    position = models.PositiveIntegerField(help_text="Creation order in the graph.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    physical_id = models.CharField(max_length=2048, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    #: The graph node this resource is (being) built to, and the one before this run.
    node = models.JSONField(default=dict, blank=True)
    prior_node = models.JSONField(default=dict, blank=True)
    #: The resolved properties last applied to AWS, and those before this run.
    applied = models.JSONField(default=dict, blank=True)
    prior_applied = models.JSONField(default=dict, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices, blank=True, default="")
    #: The run's action on it is done (or it has none).
    settled = models.BooleanField(default=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    waiting_reason = models.TextField(blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    delete_started_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    drift = models.CharField(max_length=10, choices=Drift.choices, blank=True, default="")
    drift_differences = models.JSONField(default=list, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment", "position", "generation"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "logical_id", "generation"],
                name="resource_unique_deployment_logical_id_generation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.logical_id}#{self.generation} ({self.state})"

    @property
    def is_live(self) -> bool:
        """The node's resource now (not a predecessor or a removed node being deleted)."""
        return self.action != self.Action.DELETE and self.state != self.State.DELETED


class DeploymentEvent(models.Model):
    """Append-only: numbered per deployment so a reconnecting page resumes by number."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
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
            "run": self.run_id,
        }
