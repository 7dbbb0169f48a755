"""Auto Scaling instance refreshes, which moto does not have (it answers StartInstanceRefresh with
a 500).

An instance refresh replaces a group's instances with ones launched from its desired launch
template version, in batches, keeping a share of the desired capacity in service. What the
sandbox does, as AWS documents it (``StartInstanceRefresh``, "Use an instance refresh with skip
matching"):

- ``StartInstanceRefresh``: refused with ``InstanceRefreshInProgress`` while another refresh of
  the group is ``Pending``, ``InProgress`` or ``Cancelling``. The instances to replace are all of
  the group's, or with ``Preferences.SkipMatching`` those that do not run the desired
  configuration's launch template and version (the group's own when none is given); with
  nothing to replace it succeeds at once. It is ``Pending`` for a few seconds, then
  ``InProgress``.
- Batches: ``max(1, desired - ceil(desired * MinHealthyPercentage / 100))`` instances at a time
  (AWS's default minimum is 90 %: one at a time for a small group), each terminated with
  ``TerminateInstanceInAutoScalingGroup`` (the capacity kept), so moto launches a replacement
  from the group's launch template. The next batch starts once every instance that stays is in
  service and past its warm-up (``Preferences.InstanceWarmup``, else the group's health check
  grace period), at the sandbox's time scale.
- ``Successful`` when none is left to replace (the group then takes the desired configuration,
  if one was given and it differs); ``CancelInstanceRefresh`` makes it ``Cancelling`` until the
  batch in flight is done, then ``Cancelled``. ``DescribeInstanceRefreshes`` lists the group's
  refreshes newest first, with ``PercentageComplete`` and ``InstancesToUpdate``.

The sandbox is driven by requests, not a clock of its own: a refresh moves on when the group or
its refreshes are described (``DescribeAutoScalingGroups``, ``DescribeInstanceRefreshes``),
which is what anyone waiting for one does.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - builds answers, parses nothing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from deployer.sandbox.protocol import Call, Reply, error_reply, request_id
from deployer.sandbox.state import SandboxState

log = logging.getLogger("deployer.sandbox")

NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
ACTIVE = ("Pending", "InProgress", "Cancelling")
#: Lifecycle states of instances on their way out of a group.
LEAVING = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated"})
DEFAULT_MIN_HEALTHY = 90
FORM = "application/x-www-form-urlencoded; charset=utf-8"

Fetch = Callable[[str, str, bytes, str], Reply | None]


@dataclass
class GroupView:
    """What a refresh needs to know of its group, as AWS would describe it now."""

    name: str
    desired: int
    grace_period: int
    template_id: str | None
    version: str | None
    #: (instance id, lifecycle state, launch template id, version it was launched from)
    instances: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)

    def present(self) -> list[str]:
        return [i for i, state, _, _ in self.instances if state not in LEAVING]


#: Reads a group the way AWS would describe it: (call, fetch, group name) -> view or None.
ViewReader = Callable[[Call, Fetch, str], GroupView | None]


@dataclass
class Refresh:
    refresh_id: str
    region: str
    group: str
    started: float  # the sandbox clock
    start_time: datetime.datetime
    target_id: str | None
    target_version: str | None
    min_healthy: int
    warmup: float  # AWS seconds, before the time scale
    skip_matching: bool
    desired_configuration: bool
    to_replace: list[str]
    total: int
    status: str = "Pending"
    status_reason: str = ""
    end_time: datetime.datetime | None = None
    #: Instances of the batch in flight (terminated; their replacements not yet warm).
    batch: list[str] = field(default_factory=list)
    replaced: int = 0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def finish(self, status: str, reason: str) -> None:
        self.status, self.status_reason = status, reason
        self.end_time = datetime.datetime.now(datetime.UTC)


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


class InstanceRefreshes:
    """The three instance refresh calls, answered by the sandbox, and the batches that move a
    refresh along."""

    def __init__(self, state: SandboxState, view: ViewReader) -> None:
        self.state = state
        self.view = view
        #: One advance at a time: two describes at once must not terminate a batch twice.
        self._advancing = threading.Lock()

    # --- the calls ------------------------------------------------------------------------------

    def start(self, call: Call, fetch: Fetch) -> Reply:
        name = call.params.get("AutoScalingGroupName", "")
        group = self.view(call, fetch, name)
        if group is None:
            return error_reply(
                call, 400, "ValidationError", f"AutoScalingGroup name not found - {name}"
            )
        key = (call.region or "", name)
        params = call.params
        desired = "DesiredConfiguration.LaunchTemplate.Version" in params or (
            "DesiredConfiguration.LaunchTemplate.LaunchTemplateId" in params
        )
        target_id = params.get("DesiredConfiguration.LaunchTemplate.LaunchTemplateId") or (
            group.template_id
        )
        target_version = params.get("DesiredConfiguration.LaunchTemplate.Version") or (
            group.version
        )
        skip = _flag(params.get("Preferences.SkipMatching"))
        to_replace = [
            instance_id
            for instance_id, state, template_id, version in group.instances
            if state not in LEAVING
            and not (skip and template_id == target_id and version == target_version)
        ]
        warmup = params.get("Preferences.InstanceWarmup")
        refresh = Refresh(
            refresh_id=str(uuid.uuid4()),
            region=call.region or "",
            group=name,
            started=self.state.now(),
            start_time=datetime.datetime.now(datetime.UTC),
            target_id=target_id,
            target_version=target_version,
            min_healthy=_int(params.get("Preferences.MinHealthyPercentage"), DEFAULT_MIN_HEALTHY),
            warmup=float(_int(warmup, group.grace_period)),
            skip_matching=skip,
            desired_configuration=desired,
            to_replace=to_replace,
            total=len(to_replace),
        )
        if not to_replace:
            refresh.finish("Successful", "No instance needed replacing.")
        with self.state.lock:
            refreshes = self.state.instance_refreshes.setdefault(key, [])
            if any(r.active for r in refreshes):
                self.state.count_simulated("instance_refresh_in_progress")
                return error_reply(
                    call,
                    400,
                    "InstanceRefreshInProgress",
                    "An Instance Refresh is already in progress and blocks the execution of "
                    "this Instance Refresh.",
                )
            refreshes.append(refresh)
        self.state.count_simulated("instance_refresh")
        log.info(
            "sandbox: instance refresh %s of %s replaces %d instance(s) with %s version %s",
            refresh.refresh_id,
            name,
            len(to_replace),
            target_id,
            target_version,
        )
        return self._reply(call, "StartInstanceRefresh", {"InstanceRefreshId": refresh.refresh_id})

    def describe(self, call: Call, fetch: Fetch) -> Reply:
        name = call.params.get("AutoScalingGroupName", "")
        self.advance(call, fetch, [name])
        ids = {v for k, v in call.params.items() if k.startswith("InstanceRefreshIds.member.")}
        limit = _int(call.params.get("MaxRecords"), 50)
        root, result = self._envelope("DescribeInstanceRefreshes")
        container = ET.SubElement(result, "InstanceRefreshes")
        with self.state.lock:
            refreshes = self.state.instance_refreshes.get((call.region or "", name), [])
            listed = [r for r in reversed(refreshes) if not ids or r.refresh_id in ids]
            for refresh in listed[:limit]:
                self._member(ET.SubElement(container, "member"), refresh)
        return self._serialised(root)

    def cancel(self, call: Call, fetch: Fetch) -> Reply:
        name = call.params.get("AutoScalingGroupName", "")
        with self.state.lock:
            active = [
                r
                for r in self.state.instance_refreshes.get((call.region or "", name), [])
                if r.active
            ]
            if active:
                active[-1].status = "Cancelling"
                active[-1].status_reason = "The instance refresh is being cancelled."
        if not active:
            return error_reply(
                call,
                400,
                "ActiveInstanceRefreshNotFound",
                f"No in progress or pending Instance Refresh found for Auto Scaling group {name}",
            )
        self.advance(call, fetch, [name])
        return self._reply(
            call, "CancelInstanceRefresh", {"InstanceRefreshId": active[-1].refresh_id}
        )

    def advance_before(self, call: Call, body: bytes, fetch: Fetch) -> None:
        """Before DescribeAutoScalingGroups: move the refreshes of the groups it asks about (all
        of the region's when it names none), so the answer shows their instances as they are."""
        names = [v for k, v in call.params.items() if k.startswith("AutoScalingGroupNames.member.")]
        self.advance(call, fetch, names or None)

    # --- moving a refresh along -----------------------------------------------------------------

    def advance(self, call: Call, fetch: Fetch, names: list[str] | None) -> None:
        region = call.region or ""
        with self._advancing:
            with self.state.lock:
                refreshes = [
                    r
                    for (r_region, group), items in self.state.instance_refreshes.items()
                    if r_region == region and (names is None or group in names)
                    for r in items
                    if r.active
                ]
            for refresh in refreshes:
                group = self.view(call, fetch, refresh.group)
                with self.state.lock:
                    if group is None:
                        refresh.finish("Failed", "The Auto Scaling group no longer exists.")
                        continue
                    batch = self._step(refresh, group)
                for instance_id in batch:
                    self._terminate(fetch, instance_id)
                if (
                    refresh.status == "Successful"
                    and refresh.desired_configuration
                    and (group.template_id, group.version)
                    != (refresh.target_id, refresh.target_version)
                ):
                    self._set_template(fetch, refresh)

    def _warm(self, instance_id: str, warmup: float) -> bool:
        """In service (booted) and past the refresh's warm-up."""
        with self.state.lock:
            rec = self.state.instances.get(instance_id)
            if rec is None:
                return True  # not launched while the sandbox watched: long in service
            ready_at = rec.launched + self.state.scaled("instance_pending")
            return self.state.now() >= ready_at + warmup * self.state.config.time_scale

    def _step(self, refresh: Refresh, group: GroupView) -> list[str]:
        """Where ``refresh`` stands now; the instances to terminate for its next batch."""
        now = self.state.now()
        if refresh.status == "Pending":
            if now - refresh.started < self.state.scaled("instance_refresh_pending"):
                return []
            refresh.status = "InProgress"
        present = group.present()
        if refresh.batch:
            staying = [i for i in present if i not in refresh.to_replace]
            if len(present) < group.desired or not all(
                self._warm(i, refresh.warmup) for i in staying
            ):
                return []
            refresh.replaced += len(refresh.batch)
            refresh.batch = []
        if refresh.status == "Cancelling":
            refresh.finish("Cancelled", "The instance refresh was cancelled.")
            return []
        refresh.to_replace = [i for i in refresh.to_replace if i in present]
        if not refresh.to_replace:
            refresh.finish("Successful", "")
            return []
        capacity = max(group.desired, 1)
        size = max(1, capacity - math.ceil(capacity * refresh.min_healthy / 100))
        refresh.batch, refresh.to_replace = refresh.to_replace[:size], refresh.to_replace[size:]
        return list(refresh.batch)

    def _terminate(self, fetch: Fetch, instance_id: str) -> None:
        form = {
            "Action": "TerminateInstanceInAutoScalingGroup",
            "Version": "2011-01-01",
            "InstanceId": instance_id,
            "ShouldDecrementDesiredCapacity": "false",
        }
        reply = fetch("POST", "/", urlencode(form).encode(), FORM)
        if reply is None or not reply.ok:
            log.warning("sandbox: instance refresh could not terminate %s", instance_id)
            return
        with self.state.lock:
            rec = self.state.instances.get(instance_id)
            if rec is not None and rec.terminated is None:
                rec.terminated = self.state.now()
        log.info("sandbox: instance refresh terminated %s", instance_id)

    def _set_template(self, fetch: Fetch, refresh: Refresh) -> None:
        form = {
            "Action": "UpdateAutoScalingGroup",
            "Version": "2011-01-01",
            "AutoScalingGroupName": refresh.group,
        }
        if refresh.target_id:
            form["LaunchTemplate.LaunchTemplateId"] = refresh.target_id
        if refresh.target_version:
            form["LaunchTemplate.Version"] = refresh.target_version
        fetch("POST", "/", urlencode(form).encode(), FORM)

    # --- answers --------------------------------------------------------------------------------

    @staticmethod
    def _envelope(action: str) -> tuple[ET.Element, ET.Element]:
        root = ET.Element(f"{action}Response", xmlns=NS)
        return root, ET.SubElement(root, f"{action}Result")

    @staticmethod
    def _serialised(root: ET.Element) -> Reply:
        meta = ET.SubElement(root, "ResponseMetadata")
        ET.SubElement(meta, "RequestId").text = request_id()
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return Reply(200, [("Content-Type", "text/xml")], body)

    def _reply(self, call: Call, action: str, fields: dict[str, Any]) -> Reply:
        root, result = self._envelope(action)
        for key, value in fields.items():
            ET.SubElement(result, key).text = str(value)
        return self._serialised(root)

    @staticmethod
    def _member(member: ET.Element, refresh: Refresh) -> None:
        def add(parent: ET.Element, key: str, value: Any) -> ET.Element:
            child = ET.SubElement(parent, key)
            if value is not None:
                child.text = str(value).lower() if isinstance(value, bool) else str(value)
            return child

        if refresh.status == "Successful":
            percentage = 100
        else:
            percentage = int(100 * refresh.replaced / refresh.total) if refresh.total else 0
        add(member, "InstanceRefreshId", refresh.refresh_id)
        add(member, "AutoScalingGroupName", refresh.group)
        add(member, "Status", refresh.status)
        if refresh.status_reason:
            add(member, "StatusReason", refresh.status_reason)
        add(member, "StartTime", refresh.start_time.isoformat())
        if refresh.end_time is not None:
            add(member, "EndTime", refresh.end_time.isoformat())
        add(member, "PercentageComplete", percentage)
        add(member, "InstancesToUpdate", len(refresh.to_replace) + len(refresh.batch))
        preferences = add(member, "Preferences", None)
        add(preferences, "MinHealthyPercentage", refresh.min_healthy)
        add(preferences, "InstanceWarmup", int(refresh.warmup))
        add(preferences, "SkipMatching", refresh.skip_matching)
        if refresh.desired_configuration:
            template = add(add(member, "DesiredConfiguration", None), "LaunchTemplate", None)
            if refresh.target_id:
                add(template, "LaunchTemplateId", refresh.target_id)
            if refresh.target_version:
                add(template, "Version", refresh.target_version)
        add(member, "Strategy", "Rolling")
