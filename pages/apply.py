"""What a page says when applying a design version to a live stack is refused.

The design page's "Apply" and the deployment page's "Repair" both call
``deployer.services.deployment_apply``; every refusal it can raise is said here in words, on
the page, and never becomes an error page.
"""

from __future__ import annotations

from deployer import services
from designer.services import SpecInvalid

#: Everything ``deployment_apply`` raises for a request that cannot go ahead now.
APPLY_ERRORS: tuple[type[Exception], ...] = (
    services.ChangeSetRefused,
    services.InterruptionNotConfirmed,
    services.ChangeSetStale,
    services.DeploymentConflict,
    services.InvalidTransition,
    SpecInvalid,
)


def apply_error(exc: Exception) -> str:
    """The sentence a page shows for one of :data:`APPLY_ERRORS`."""
    if isinstance(exc, services.ChangeSetRefused):
        return "the change set is refused. " + " ".join(exc.reasons)
    if isinstance(exc, services.InterruptionNotConfirmed):
        names = "; ".join(f"{c.label or c.logical_id}: {c.interrupts}" for c in exc.changes)
        return (
            f"this change interrupts traffic ({names}). Tick “Allow the interruption” to go ahead."
        )
    if isinstance(exc, services.ChangeSetStale):
        return (
            "the deployment has changed since these changes were reviewed (a run or a drift "
            "check). Review the changes again."
        )
    if isinstance(exc, services.DeploymentConflict):
        return f"{exc}; wait for it to finish, or cancel it."
    if isinstance(exc, SpecInvalid):
        return "the saved version does not validate any more; fix the design and save it."
    return str(exc) + "."
