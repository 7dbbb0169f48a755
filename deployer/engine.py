"""The reconciler: one pass advances one deployment and says when the next is due.

A pass has three steps, and only the first and the last touch the database, each in a short
transaction:

1. **claim**: under the deployment's row lock, check the message's run token (a stale or
   duplicated message does nothing), take the deployment's *lease* and read its records;
2. **work**, outside any transaction: every node whose dependencies are ready is started (found
   by its tags, or created), every node AWS is still working on is looked at once, in waves of
   parallel AWS calls, until the pass's time budget is spent. The lease is extended while calls
   are in flight;
3. **record**: under the row lock again, write what was seen (records, numbered events,
   status), release the lease and return the next pass's countdown.

No transaction, and so no row lock (on SQLite: no database write lock), is held while AWS
answers: other deployments' passes, the pages and the API go on meanwhile. The lease keeps two
passes of one deployment from ever running at once; a pass killed with its worker stops
extending it and the next message takes over once it expires. Nothing here sleeps: the pass
returns how long until something is worth looking at again, and the task enqueues the next one.

Destroy (and rollback) walks the same graph in reverse: a node is deleted once everything that
depends on it is gone, and ``DependencyViolation`` is waited out with backoff, saying why.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from deployer import events, runs
from deployer.aws import client_factory
from deployer.constants import (
    ROLLING_BACK,
    UPDATABLE,
    ResourceAction,
    ResourceDrift,
    ResourceState,
    RunStatus,
)
from deployer.drift import drift_status_of
from deployer.models import Deployment, ResourceRecord, Run
from deployer.resources.base import AwsContext
from deployer.walker import Walk

logger = logging.getLogger(__name__)

S = Deployment.Status
R = ResourceState

#: The record fields a pass writes (and nothing else: a pass never overwrites other columns).
RECORD_FIELDS = [
    "state",
    "physical_id",
    "attributes",
    "applied",
    "settled",
    "attempts",
    "last_error",
    "waiting_reason",
    "next_check_at",
    "started_at",
    "ready_at",
    "delete_started_at",
    "deleted_at",
    "updated_at",
]


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def context_for(deployment: Deployment) -> AwsContext:
    target = deployment.target
    region = deployment.spec.get("region") or target.region
    return AwsContext(
        deployment_tag=deployment.identity,
        region=region,
        client=client_factory(
            region=region,
            endpoint_url=target.endpoint_url or None,
            role_arn=target.role_arn or None,
            external_id=target.external_id or None,
        ),
        spec_tags=dict(deployment.spec.get("tags") or {}),
        installation=deployment.installation,
        name_suffix=deployment.name_suffix,
        stack_name=deployment.spec.get("name", ""),
    )


@dataclass(frozen=True)
class Next:
    """The next pass to enqueue: the task schedules it (the engine never enqueues)."""

    deployment_id: int
    token: str
    delay: float


def _lease_seconds() -> float:
    return _setting("GANTRY_PASS_LEASE", 10.0)


def _extend_lease(deployment_id: int, holder: str) -> None:
    """Keep the lease while the pass waits for AWS (a short write of its own)."""
    until = timezone.now() + timedelta(seconds=_lease_seconds())
    try:
        Deployment.objects.filter(pk=deployment_id, lease_holder=holder).update(
            lease_until=until, next_run_at=until
        )
    except Exception:  # noqa: BLE001 - a lease not extended only lets the next pass in sooner
        logger.warning("deployment %s: could not extend the pass lease", deployment_id)


def _intend(deployment_id: int, holder: str, records: list) -> bool:
    """Record, before the calls, that these records' creates are being attempted (their
    ``started_at``), while this pass holds the lease: a later pass then looks each one up by
    its tags before creating it again. A short write of its own, like the lease's."""
    now = timezone.now()
    with transaction.atomic():
        if not Deployment.objects.filter(pk=deployment_id, lease_holder=holder).exists():
            return False
        ResourceRecord.objects.filter(pk__in=[r.pk for r in records]).update(started_at=now)
    for record in records:
        record.started_at = now
    return True


def _finish(
    dep: Deployment, status: str, reason: str, now: datetime, run_status: str, records: list
) -> None:
    """End the run in progress: the deployment's status, its run's, and the applied graph."""
    dep.status = status
    dep.reason = reason
    dep.finished_at = now
    if status in UPDATABLE:
        # What is live now. A stack destroyed (or being destroyed) keeps the graph it had.
        dep.graph = runs.applied_graph(records).to_document()
    if status in (S.SUCCEEDED, S.UPDATE_ROLLED_BACK):
        # The run is over: its actions are done. What it created or changed is as applied.
        for record in records:
            if not record.action and record.settled:
                continue
            if record.action and record.state != R.DELETED and status == S.SUCCEEDED:
                record.drift, record.drift_differences = ResourceDrift.IN_SYNC, []
            record.action, record.settled = ResourceAction.NONE, True
            record.save(update_fields=["action", "settled", "drift", "drift_differences"])
        dep.drift_status = drift_status_of(records)
    run = dep.current_run
    if run is not None:
        run.status, run.reason, run.finished_at = run_status, reason, now
        run.save(update_fields=["status", "reason", "finished_at"])
        if status == S.SUCCEEDED and run.operation == Run.Operation.UPDATE:
            dep.spec, dep.design_version = run.spec_after, run.version_after
    events.append(dep, kind="status", message=reason, state=status)


def _begin_rollback(dep: Deployment, records: list, reason: str) -> None:
    """A run that failed or was cancelled turns into its rollback (same run, same events)."""
    updating = dep.status == S.UPDATING
    changed = (runs.mark_update_rollback if updating else runs.mark_create_rollback)(records)
    for record in changed:
        record.save(update_fields=runs.MARK_FIELDS)
    dep.status = S.UPDATE_ROLLING_BACK if updating else S.ROLLING_BACK
    dep.reason = reason
    if dep.current_run is not None:
        dep.current_run.status = RunStatus.ROLLING_BACK
        dep.current_run.reason = reason
        dep.current_run.save(update_fields=["status", "reason"])
    events.append(dep, kind="status", message=reason, state=dep.status)


def _claim(deployment_id: int, token: str) -> tuple[Deployment, list, str] | Next | None:
    """Step 1 of a pass: take the lease. None for a stale message or a finished deployment;
    a :class:`Next` with a short countdown while another pass holds the lease."""
    with transaction.atomic():
        dep = (
            Deployment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("target", "current_run")
            .filter(pk=deployment_id)
            .first()
        )
        if dep is None or dep.status not in Deployment.ACTIVE or dep.run_token != token:
            return None
        now = timezone.now()
        if dep.lease_holder and dep.lease_until and dep.lease_until > now:
            # A pass started by an earlier message is still talking to AWS (a kick came in
            # meanwhile): look again shortly rather than run beside it.
            remaining = (dep.lease_until - now).total_seconds()
            return Next(dep.pk, token, min(0.5, remaining))
        return _take(dep, now)


#: How often a worker slot running passes looks for more deployments that fell due (seconds).
BATCH_LOOK = 0.05


def _claim_due(exclude: set[int], limit: int) -> list[tuple[Deployment, list, str, str]]:
    """Other deployments whose next pass is due now and that no pass holds, leased in one
    short transaction: the pass that was given a worker slot runs theirs beside its own, so a
    slot waiting for AWS's answers serves many deployments. Their queued messages find the
    run token changed and do nothing; the next passes are enqueued as usual."""
    if limit <= 0:
        return []
    now = timezone.now()
    due_now = (
        Deployment.objects.filter(status__in=Deployment.ACTIVE, next_run_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .exclude(pk__in=exclude)
    )
    if not due_now.exists():  # a read: no write lock taken (SQLite) when nothing is due
        return []
    claimed = []
    with transaction.atomic():
        now = timezone.now()
        due = (
            Deployment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("target", "current_run")
            .filter(status__in=Deployment.ACTIVE, next_run_at__lte=now)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
            .exclude(pk__in=exclude)
            .order_by("next_run_at")[:limit]
        )
        for dep in due:
            token = dep.run_token
            dep, records, holder = _take(dep, now)
            claimed.append((dep, records, holder, token))
    return claimed


def _take(dep: Deployment, now: datetime) -> tuple[Deployment, list, str]:
    """The claim itself, under the row lock: the run's status, a cancel, the lease."""
    records = list(dep.resources.all())
    run = dep.current_run
    if run is not None and run.status == RunStatus.QUEUED:
        run.status, run.started_at = RunStatus.IN_PROGRESS, now
        run.save(update_fields=["status", "started_at"])
    if dep.status == S.QUEUED:
        dep.status = S.DEPLOYING
        dep.started_at = now
        events.append(dep, kind="status", message="Deployment started", state=S.DEPLOYING)
    if dep.status in (S.DEPLOYING, S.UPDATING) and dep.cancel_requested:
        what = "created" if dep.status == S.DEPLOYING else "changed"
        _begin_rollback(dep, records, f"Cancelled on request; undoing what was {what}.")
    holder = uuid.uuid4().hex
    dep.lease_holder = holder
    dep.lease_until = dep.next_run_at = now + timedelta(seconds=_lease_seconds())
    dep.save(
        update_fields=[
            "status",
            "reason",
            "started_at",
            "lease_holder",
            "lease_until",
            "next_run_at",
            "last_event_seq",
        ]
    )
    return dep, records, holder


def _failures(records: list, *, deleting: bool) -> str:
    failed = [
        r
        for r in records
        if r.state == R.FAILED and (bool(r.delete_started_at) if deleting else True)
    ]
    return "; ".join(f"{r.logical_id}: {r.last_error}" for r in failed)


def _conclude(dep: Deployment, walk: Walk, failed: bool, now: datetime) -> None:
    """What the run's state machine makes of the pass: finish the run, turn it into its
    rollback, or go on."""
    records = walk.records
    run = dep.current_run
    cancelled = dep.cancel_requested
    if dep.status == S.DEPLOYING:
        if failed:
            what = _failures(records, deleting=False)
            if dep.keep_on_failure:
                _finish(
                    dep,
                    S.FAILED,
                    f"Deployment failed ({what}). Resources were kept for debugging as "
                    "requested; destroy the deployment to remove them.",
                    now,
                    RunStatus.FAILED,
                    records,
                )
            else:
                _begin_rollback(
                    dep, records, f"Deployment failed ({what}); rolling back what was created."
                )
        elif walk.done():
            live = [r for r in records if r.is_live]
            _finish(
                dep,
                S.SUCCEEDED,
                f"All {len(live)} resources are ready.",
                now,
                RunStatus.SUCCEEDED,
                records,
            )
    elif dep.status == S.UPDATING:
        if failed and walk.forward_done():
            what = _failures(records, deleting=True)
            _finish(
                dep,
                S.UPDATE_FAILED,
                f"The update is applied, but resources it replaced or removed could not be "
                f"deleted ({what}); updating or destroying the deployment tries again.",
                now,
                RunStatus.FAILED,
                records,
            )
            if run is not None:  # what is live is the new version
                dep.spec, dep.design_version = run.spec_after, run.version_after
        elif failed:
            what = _failures(records, deleting=False)
            if dep.keep_on_failure:
                _finish(
                    dep,
                    S.UPDATE_FAILED,
                    f"Update failed ({what}). What it changed was kept as requested; apply a "
                    "version again, or destroy the deployment.",
                    now,
                    RunStatus.FAILED,
                    records,
                )
            else:
                _begin_rollback(
                    dep, records, f"Update failed ({what}); rolling back to the previous version."
                )
        elif walk.done():
            changed = len((run.change_set if run else {}).get("changes", []))
            _finish(
                dep,
                S.SUCCEEDED,
                f"Updated to v{run.version_after if run else dep.design_version}: "
                f"{changed} resource changes applied.",
                now,
                RunStatus.SUCCEEDED,
                records,
            )
    elif dep.status in ROLLING_BACK:
        updating = dep.status == S.UPDATE_ROLLING_BACK
        if failed:
            what = _failures(records, deleting=not updating)
            _finish(
                dep,
                S.UPDATE_FAILED if updating else S.DESTROY_FAILED,
                f"Could not roll back everything ({what}).",
                now,
                RunStatus.FAILED,
                records,
            )
        elif walk.done():
            if updating:
                reason = (
                    "Cancelled; the deployment is back to its previous version."
                    if cancelled
                    else dep.reason.replace("rolling back", "rolled back")
                )
                status, run_status = (
                    S.UPDATE_ROLLED_BACK,
                    (RunStatus.CANCELLED if cancelled else RunStatus.ROLLED_BACK),
                )
            elif cancelled:
                reason = "Cancelled; everything created was deleted."
                status, run_status = S.CANCELLED, RunStatus.CANCELLED
            else:
                reason = dep.reason.replace("rolling back", "rolled back")
                status, run_status = S.ROLLED_BACK, RunStatus.ROLLED_BACK
            _finish(dep, status, reason, now, run_status, records)
    elif dep.status == S.DESTROYING:
        if failed:
            what = _failures(records, deleting=True)
            _finish(
                dep,
                S.DESTROY_FAILED,
                f"Could not delete everything ({what}).",
                now,
                RunStatus.FAILED,
                records,
            )
        elif walk.done():
            deleted = sum(1 for r in records if r.action)
            _finish(
                dep,
                S.DESTROYED,
                f"All {deleted} resources are deleted.",
                now,
                RunStatus.SUCCEEDED,
                records,
            )


def _record(dep_id: int, token: str, holder: str, walk: Walk, failed: bool) -> Next | None:
    """Step 3 of a pass: write what it saw, decide the status, release the lease."""
    with transaction.atomic():
        dep = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("current_run")
            .get(pk=dep_id)
        )
        if dep.lease_holder != holder:
            # The lease expired while this pass waited for AWS and another pass took over: its
            # view is newer. What this one created is found again by its tags.
            logger.warning("deployment %s: pass lost its lease; dropping its results", dep_id)
            return None
        now = timezone.now()
        # A statement per changed record (bulk_update's CASE expressions cost the worker more
        # CPU than the round trips they save), and one insert for the pass's events.
        for record in walk.changed.values():
            record.save(update_fields=RECORD_FIELDS)
        events.append_many(dep, walk.emitted)
        _conclude(dep, walk, failed, now)
        if walk.progressed:
            dep.last_progress_at = now
        dep.lease_holder, dep.lease_until = "", None
        nxt: Next | None = None
        if dep.status in Deployment.ACTIVE:
            delay = walk.next_delay()
            dep.next_run_at = now + timedelta(seconds=delay)
            if dep.run_token == token:
                dep.run_token = uuid.uuid4().hex
                nxt = Next(dep.pk, dep.run_token, delay)
            # Otherwise a service kicked the deployment while this pass ran: the message it
            # enqueued is waiting for this lease to end and runs the next pass.
        dep.save(
            update_fields=[
                "status",
                "reason",
                "finished_at",
                "last_progress_at",
                "lease_holder",
                "lease_until",
                "next_run_at",
                "run_token",
                "last_event_seq",
                "graph",
                "spec",
                "design_version",
                "drift_status",
            ]
        )
    return nxt


#: How many recent create-to-ready waits are kept per target and type.
LEARNED_WAITS = 10


def _wait_key(dep: Deployment, type_name: str) -> str:
    """Per AWS endpoint, account role and region (not the target's row id: several
    installations or databases may share one cache)."""
    target = dep.target
    where = f"{target.endpoint_url}|{target.role_arn}|{dep.spec.get('region') or target.region}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    return f"deployer:wait:{digest}:{type_name}"


def _expected_waits(dep: Deployment, records: list) -> dict[str, float]:
    """Per type still being created, the shortest of the recent waits AWS took to make one
    ready for this target and region (nothing when none is known, or the cache is down):
    ``walker.poll_delay`` does not look before then."""
    types = {r.type for r in records if not r.settled}
    keys = {_wait_key(dep, t): t for t in types}
    try:
        found = cache.get_many(list(keys))
    except Exception:  # noqa: BLE001 - without it, polls follow the usual schedule
        return {}
    return {keys[k]: min(v) for k, v in found.items() if isinstance(v, list) and v}


def _learn_waits(dep: Deployment, walk: Walk) -> None:
    for type_name, seconds in walk.learned:
        key = _wait_key(dep, type_name)
        try:
            seen = cache.get(key) or []
            cache.set(key, [*seen, round(seconds, 3)][-LEARNED_WAITS:], 7 * 24 * 3600)
        except Exception:  # noqa: BLE001 - a lesson not kept costs calls, not correctness
            logger.warning("could not keep how long %s took", type_name)


def _walk_and_record(dep: Deployment, records: list, holder: str, token: str) -> Next | None:
    """Steps 2 and 3 of a pass: the walk (AWS, no transaction), then what it saw recorded."""
    walk = Walk(
        dep,
        records,
        context_for(dep),
        keepalive=lambda: _extend_lease(dep.pk, holder),
        intend=lambda fresh: _intend(dep.pk, holder, fresh),
        expected=_expected_waits(dep, records),
    )
    failed = walk.run() if dep.status in Deployment.ACTIVE else False
    nxt = _record(dep.pk, token, holder, walk, failed)
    _learn_waits(dep, walk)
    return nxt


def deployment_advance(*, deployment_id: int, token: str) -> Next | None:
    """Run one reconciler pass. Returns the next pass to enqueue, or None when the deployment
    is finished, its row is locked by another worker's short step, or this message is stale."""
    claimed = _claim(deployment_id, token)
    if not isinstance(claimed, tuple):
        return claimed
    dep, records, holder = claimed
    return _walk_and_record(dep, records, holder, token)


_walk_pools: dict[int, ThreadPoolExecutor] = {}


def _walk_pool() -> ThreadPoolExecutor:
    """Threads for the passes one worker slot runs side by side, one pool per process (made
    after a prefork worker forks)."""
    pid = os.getpid()
    if pid not in _walk_pools:
        _walk_pools[pid] = ThreadPoolExecutor(
            max_workers=max(1, int(_setting("GANTRY_PASS_BATCH", 16))),
            thread_name_prefix="gantry-pass",
        )
    return _walk_pools[pid]


def _in_thread(claim: tuple[Deployment, list, str, str], schedule: Callable[[Next], None]) -> None:
    try:
        nxt = _walk_and_record(*claim)
        if nxt is not None:
            schedule(nxt)
    finally:
        # The thread is reused for other deployments' passes: hand its connection back.
        connections.close_all()


def deployments_advance(
    *, deployment_id: int, token: str, schedule: Callable[[Next], None]
) -> None:
    """The pass of the message's deployment and, beside it in threads, those of up to
    GANTRY_PASS_BATCH - 1 other deployments that are due now and unclaimed: a pass spends
    most of its time waiting for AWS's answers, and this way the worker slot it holds serves
    them all. ``schedule`` is given each next pass as soon as its pass is recorded (the task
    enqueues it), not when the slowest pass of the batch ends."""
    claimed = _claim(deployment_id, token)
    if not isinstance(claimed, tuple):
        if claimed is not None:
            schedule(claimed)
        return
    dep, records, holder = claimed
    batch = int(_setting("GANTRY_PASS_BATCH", 16))
    started = time.monotonic()
    own = _walk_pool().submit(_in_thread, (dep, records, holder, token), schedule)
    futures = {own}
    others_of: dict[Future, tuple[int, str]] = {}  # future -> (deployment id, run token)
    own_failure: BaseException | None = None
    exclude = {dep.pk}
    # While the passes run, deployments that fall due join them (for one pass budget): their
    # messages would otherwise wait for a free slot while this one waits for AWS.
    while futures:
        room = batch - len(futures)
        if room > 0 and time.monotonic() - started < _setting("GANTRY_PASS_BUDGET", 1.0):
            try:
                others = _claim_due(exclude, room)
            except Exception:  # noqa: BLE001 - the others' own messages run their passes
                logger.warning("could not claim other due deployments", exc_info=True)
                others = []
            for claim in others:
                exclude.add(claim[0].pk)
                future = _walk_pool().submit(_in_thread, claim, schedule)
                others_of[future] = (claim[0].pk, claim[3])
                futures.add(future)
        done, futures = wait(futures, timeout=BATCH_LOOK, return_when=FIRST_COMPLETED)
        for future in done:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - handed on below, never lost
                if future is own:
                    # The task's own retry (a database outage backs off and tries again).
                    own_failure = exc
                    continue
                # Another deployment's pass: its own queued message found the token taken
                # and did nothing, so its next pass is enqueued here (it claims once the
                # lease this pass held lapses).
                other, run_token = others_of[future]
                logger.warning("deployment %s: a batched pass failed: %s", other, exc)
                try:
                    schedule(Next(other, run_token, _lease_seconds()))
                except Exception:  # noqa: BLE001 - the reaper re-enqueues it at worst
                    logger.exception("deployment %s: could not enqueue its next pass", other)
    if own_failure is not None:
        raise own_failure
