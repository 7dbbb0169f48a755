"""Every status Gantry knows, and the sets that say what each allows, in one place.

The models, the engine, the services, the pages, the API and the admin import these; none
spells a status set of its own. A deployment is a *live stack*: its status says what it is now
(``updating``, ``update_rolled_back``...), and each change to it is a :class:`RunOperation` of
its own with a :class:`RunStatus`.
"""

from __future__ import annotations

from django.db import models


class DeploymentStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DEPLOYING = "deploying", "Deploying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CANCELLED = "cancelled", "Cancelled"
    UPDATING = "updating", "Updating"
    UPDATE_ROLLING_BACK = "update_rolling_back", "Rolling back the update"
    UPDATE_ROLLED_BACK = "update_rolled_back", "Update rolled back"
    UPDATE_FAILED = "update_failed", "Update failed"
    DESTROYING = "destroying", "Destroying"
    DESTROYED = "destroyed", "Destroyed"
    DESTROY_FAILED = "destroy_failed", "Destroy failed"


D = DeploymentStatus

#: The reconciler still has work: one such deployment per design at a time (a constraint).
ACTIVE = (D.QUEUED, D.DEPLOYING, D.ROLLING_BACK, D.UPDATING, D.UPDATE_ROLLING_BACK, D.DESTROYING)
#: Nothing more happens unless a user asks.
TERMINAL = tuple(s for s in D if s not in ACTIVE)
#: A user may cancel these (the run in progress rolls back).
CANCELLABLE = (D.QUEUED, D.DEPLOYING, D.UPDATING)
#: Nothing of the stack exists any more: the design may get a new deployment on this target.
GONE = (D.ROLLED_BACK, D.CANCELLED, D.DESTROYED)
#: The stack exists and is not being worked on: it may be changed (updated) or destroyed.
UPDATABLE = (D.SUCCEEDED, D.FAILED, D.UPDATE_ROLLED_BACK, D.UPDATE_FAILED)
DESTROYABLE = (*UPDATABLE, D.DESTROY_FAILED)
#: Deployment statuses whose progress counts resources built (the others count deleted).
BUILDING = (D.QUEUED, D.DEPLOYING, D.SUCCEEDED, D.FAILED)
#: The statuses in which the deployment rolls back (the database allows one active per design).
ROLLING_BACK = (D.ROLLING_BACK, D.UPDATE_ROLLING_BACK)


class ResourceState(models.TextChoices):
    PENDING = "pending", "Waiting to create"
    CREATING = "creating", "Creating"
    READY = "ready", "Ready"
    UPDATING = "updating", "Updating"
    FAILED = "failed", "Failed"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"


class ResourceAction(models.TextChoices):
    """What the run in progress does to one resource (one physical resource, one record)."""

    NONE = "", "Unchanged"
    CREATE = "create", "Create"
    UPDATE = "update", "Update in place"
    DELETE = "delete", "Delete"


class DriftStatus(models.TextChoices):
    UNKNOWN = "", "Not checked"
    IN_SYNC = "in_sync", "In sync"
    DRIFTED = "drifted", "Drifted"


class ResourceDrift(models.TextChoices):
    UNKNOWN = "", "Not checked"
    IN_SYNC = "in_sync", "In sync"
    MODIFIED = "modified", "Modified outside Gantry"
    DELETED = "deleted", "Deleted outside Gantry"


class RunOperation(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DESTROY = "destroy", "Destroy"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CANCELLED = "cancelled", "Cancelled"


RUN_ACTIVE = (RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.ROLLING_BACK)


class ChangeAction(models.TextChoices):
    """A change set's verdict for one logical id (CloudFormation's Action / Replacement)."""

    ADD = "add", "Add"
    MODIFY = "modify", "Modify in place"
    REPLACE = "replace", "Replace"
    REMOVE = "remove", "Remove"
