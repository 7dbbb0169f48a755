"""Everything the sandbox remembers: its settings, the fault dice, counters, and a timeline of the
resources it saw created and deleted.

moto makes every resource ready the instant it is created and forgets it the instant it is
deleted; AWS does neither. The sandbox records *when* each interesting resource was created or
deleted (from the responses it forwards) and derives AWS's state at any later moment from that
and the durations below. Durations are computed when a state is asked for, with the current
time scale, so changing ``time_scale`` mid-run fast-forwards (or slows) resources in flight.

One lock guards all of it: the proxy serves every request on its own thread.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from xml.etree.ElementTree import Element

#: Real AWS durations (seconds) before the time scale. The ranges AWS documents or shows in
#: practice, taken at their usual value so a deployment in the sandbox feels like one in AWS.
DURATIONS: dict[str, float] = {
    "nat_gateway_pending": 90.0,  # "pending" -> "available": 1-3 minutes
    "nat_gateway_deleting": 60.0,  # "deleting" -> "deleted"
    "instance_pending": 20.0,  # "pending" -> "running"
    "instance_shutting_down": 30.0,  # "shutting-down" -> "terminated"
    "lambda_vpc_pending": 60.0,  # "Pending" (Creating) -> "Active" for a function in a VPC
    "lambda_update": 5.0,  # LastUpdateStatus "InProgress" after a configuration or code change
    "lambda_vpc_update": 60.0,  # ... after a change to its VPC (new network interfaces)
    "load_balancer_provisioning": 150.0,  # "provisioning" -> "active"
    "vpc_endpoint_pending": 60.0,  # interface endpoint "pending" -> "available"
    "vpc_endpoint_deleting": 30.0,  # interface endpoint "deleting" -> "deleted"
    "iam_propagation": 10.0,  # a new role / instance profile is not yet usable elsewhere
    "instance_refresh_pending": 5.0,  # an instance refresh "Pending" before it replaces any
}
#: How long AWS keeps a deleted VPC Lambda's network interfaces (and with them its subnets and
#: security groups). AWS says "up to 20 minutes"; it can be longer.
DEFAULT_ENI_HOLD_SECONDS = 1200.0

LOSE_MODES = ("mixed", "drop", "500", "502")
IDEMPOTENCY_CACHE = 5000
FAULT_KINDS = ("throttle", "error", "lose_response")


class ConfigError(ValueError):
    """A control-API config update that is not acceptable; the message says why."""


@dataclass(frozen=True)
class Refusal:
    """AWS refusing a call outright, every time (``times`` left, or forever when None): what a
    role without a permission, an exhausted quota or an invalid parameter gets. Unlike the
    random faults, the caller must not retry it: it is how tests make one resource fail."""

    action: str  # "CreateLogGroup" or "logs:CreateLogGroup"
    code: str
    message: str
    status: int = 400
    times: int | None = None

    def matches(self, service: str | None, action: str | None) -> bool:
        return self.action in (action, f"{service}:{action}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "times": self.times,
        }


def _refusals(value: Any) -> tuple[Refusal, ...]:
    if not isinstance(value, list):
        raise ConfigError("refuse must be a list of {action, code, message[, status, times]}")
    refusals = []
    for item in value:
        if not isinstance(item, dict) or not {"action", "code", "message"} <= set(item):
            raise ConfigError("each refusal needs action, code and message")
        unknown = set(item) - {"action", "code", "message", "status", "times"}
        if unknown:
            raise ConfigError(f"unknown refusal field(s) {', '.join(sorted(unknown))}")
        if not all(isinstance(item[k], str) and item[k] for k in ("action", "code", "message")):
            raise ConfigError("a refusal's action, code and message are non-empty strings")
        status = item.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 499:
            raise ConfigError("a refusal's status is a 4xx HTTP status")
        times = _optional_int("times", item.get("times"), low=1)
        refusals.append(Refusal(item["action"], item["code"], item["message"], status, times))
    return tuple(refusals)


@dataclass(frozen=True)
class SandboxConfig:
    """The knobs of the sandbox, all changeable at run time through ``/_sandbox/config``."""

    time_scale: float = 1.0
    eni_hold_seconds: float = DEFAULT_ENI_HOLD_SECONDS
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    lose_response_rate: float = 0.0
    lose_mode: str = "mixed"
    actions: tuple[str, ...] | None = None
    seed: int | None = None
    max_faults: int | None = None
    refuse: tuple[Refusal, ...] = ()
    #: Added to every AWS call, in milliseconds (not scaled): the round trip to a region's
    #: endpoint that a request to moto on loopback does not have.
    latency_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /_sandbox/config``."""
        return {
            "time_scale": self.time_scale,
            "eni_hold_seconds": self.eni_hold_seconds,
            "throttle_rate": self.throttle_rate,
            "error_rate": self.error_rate,
            "lose_response_rate": self.lose_response_rate,
            "lose_mode": self.lose_mode,
            "actions": None if self.actions is None else list(self.actions),
            "seed": self.seed,
            "max_faults": self.max_faults,
            "refuse": [r.as_dict() for r in self.refuse],
            "latency_ms": self.latency_ms,
        }


def _number(key: str, value: Any, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ConfigError(f"{key} must be {bound}, got {value!r}")
    return number


def _optional_int(key: str, value: Any, *, low: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer or null, not {type(value).__name__}")
    if low is not None and value < low:
        raise ConfigError(f"{key} must be >= {low}, got {value}")
    return value


def validate_update(payload: Any) -> dict[str, Any]:
    """The fields of a ``POST /_sandbox/config`` body, checked and normalised.

    All-or-nothing: one bad field rejects the whole update, so a typo cannot leave the sandbox
    half-configured.
    """
    if not isinstance(payload, dict):
        raise ConfigError("the body must be a JSON object")
    allowed = set(SandboxConfig.__dataclass_fields__)
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    clean: dict[str, Any] = {}
    for key, value in payload.items():
        if key in ("time_scale", "eni_hold_seconds"):
            clean[key] = _number(key, value, low=0.0)
        elif key == "latency_ms":
            clean[key] = _number(key, value, low=0.0, high=10_000.0)
        elif key in ("throttle_rate", "error_rate", "lose_response_rate"):
            clean[key] = _number(key, value, low=0.0, high=1.0)
        elif key == "lose_mode":
            if value not in LOSE_MODES:
                raise ConfigError(f"lose_mode must be one of {', '.join(LOSE_MODES)}")
            clean[key] = value
        elif key == "actions":
            if value is None:
                clean[key] = None
            elif isinstance(value, list) and all(isinstance(a, str) and a for a in value):
                clean[key] = tuple(value)
            else:
                raise ConfigError(
                    "actions must be null or a list of action names "
                    '("CreateVpc" or "ec2:CreateVpc")'
                )
        elif key == "seed":
            clean[key] = _optional_int(key, value)
        elif key == "max_faults":
            clean[key] = _optional_int(key, value, low=0)
        elif key == "refuse":
            clean[key] = _refusals(value)
    return clean


# --- What the sandbox saw happen -----------------------------------------------------------------


@dataclass
class NatGatewayRecord:
    nat_gateway_id: str
    subnet_id: str | None
    allocation_ids: set[str]
    created: float
    deleted: float | None = None
    #: The gateway as CreateNatGateway described it, to show it again if moto forgets it.
    snapshot: Element | None = None


@dataclass
class InstanceRecord:
    instance_id: str
    subnet_ids: set[str]
    group_ids: set[str]
    launched: float
    terminated: float | None = None
    #: For an Auto Scaling group's instance: the launch template version it was launched from
    #: (moto reports the template's current default for every instance).
    launch_template_version: str | None = None


@dataclass
class FunctionRecord:
    region: str
    name: str
    subnet_ids: set[str]
    group_ids: set[str]
    created: float
    deleted: float | None = None
    #: When the last configuration or code change was accepted, and which duration it takes.
    updated: float | None = None
    update_duration: str = "lambda_update"


@dataclass
class LoadBalancerRecord:
    arn: str
    subnet_ids: set[str]
    group_ids: set[str]
    created: float
    deleted: float | None = None


@dataclass
class EndpointRecord:
    endpoint_id: str
    subnet_ids: set[str]
    group_ids: set[str]
    created: float
    #: Only interface endpoints place network interfaces (and take time); gateway ones do not.
    interface: bool = True
    deleted: float | None = None


@dataclass
class Stats:
    requests: int = 0
    forwarded: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    faults_by_action: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    simulated: Counter[str] = field(default_factory=Counter)
    #: Seconds moto took to answer, per action (the emulator's cost, not AWS's).
    upstream_seconds: Counter[str] = field(default_factory=Counter)


class SandboxState:
    """The sandbox's memory, safe to use from many threads.

    ``clock`` is injectable so unit tests can move time without sleeping.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self._config = config or SandboxConfig()
        self._rng = random.Random(self._config.seed)  # noqa: S311 - dice, not crypto
        self._faults_since_cap = 0
        self._clear()

    def _clear(self) -> None:
        self.stats = Stats()
        self.nat_gateways: dict[str, NatGatewayRecord] = {}
        self.instances: dict[str, InstanceRecord] = {}
        #: Live VPC functions by (region, name); deleted ones move to ``released_functions``
        #: so a new function of the same name cannot end the old one's ENI hold.
        self.functions: dict[tuple[str, str], FunctionRecord] = {}
        self.released_functions: list[FunctionRecord] = []
        self.load_balancers: dict[str, LoadBalancerRecord] = {}
        self.endpoints: dict[str, EndpointRecord] = {}
        self.roles: dict[str, float] = {}
        self.instance_profiles: dict[str, float] = {}
        #: Instance refreshes (which moto has not) by (region, group name), newest last.
        self.instance_refreshes: dict[tuple[str, str], list[Any]] = {}
        #: The user data of launch template versions made by CreateLaunchTemplateVersion, by
        #: (template id, version number): kept here rather than in moto (see behaviours).
        self.template_user_data: dict[tuple[str, str], str] = {}
        #: (region, action, ClientToken) -> (digest of the other parameters, moto's reply);
        #: insertion-ordered, the oldest dropped beyond IDEMPOTENCY_CACHE entries.
        self.idempotency: dict[tuple[str, str, str], tuple[str, Any]] = {}

    def remember_token(self, key: tuple[str, str, str], digest: str, reply: Any) -> None:
        """Keep moto's first answer to a ClientToken (bounded: botocore sends a fresh token with
        every RunInstances, so a long demo would otherwise grow this forever)."""
        with self.lock:
            self.idempotency[key] = (digest, reply)
            while len(self.idempotency) > IDEMPOTENCY_CACHE:
                del self.idempotency[next(iter(self.idempotency))]

    # --- configuration -------------------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        with self.lock:
            return self._config

    def update_config(self, payload: Any) -> SandboxConfig:
        """Apply a validated control-API update. Setting ``seed`` re-seeds the dice; setting
        ``max_faults`` restarts its count, so "fail the next 2 calls" means the next 2."""
        clean = validate_update(payload)
        with self.lock:
            self._config = replace(self._config, **clean)
            if "seed" in clean:
                self._rng = random.Random(clean["seed"])  # noqa: S311
            if "max_faults" in clean:
                self._faults_since_cap = 0
            return self._config

    def reset(self) -> SandboxConfig:
        """Forget every timeline, counter and fault setting; keep the time scale, ENI hold and
        latency, which are how this sandbox process was started."""
        with self.lock:
            self._config = SandboxConfig(
                time_scale=self._config.time_scale,
                eni_hold_seconds=self._config.eni_hold_seconds,
                latency_ms=self._config.latency_ms,
            )
            self._rng = random.Random()  # noqa: S311
            self._faults_since_cap = 0
            self._clear()
            return self._config

    def scaled(self, what: str) -> float:
        """``DURATIONS[what]`` in sandbox seconds."""
        return DURATIONS[what] * self._config.time_scale

    def eni_hold(self) -> float:
        return self._config.eni_hold_seconds * self._config.time_scale

    def now(self) -> float:
        return self.clock()

    # --- faults ----------------------------------------------------------------------------------

    def draw_fault(self, service: str | None, action: str | None) -> str | None:
        """Roll the dice for one request: ``"throttle"``, ``"error"``, ``"lose_response"`` or
        ``None``. Counts the fault when one is drawn, so ``max_faults`` is never exceeded even
        with many threads."""
        with self.lock:
            cfg = self._config
            if not (cfg.throttle_rate or cfg.error_rate or cfg.lose_response_rate):
                return None
            if cfg.max_faults is not None and self._faults_since_cap >= cfg.max_faults:
                return None
            if cfg.actions is not None and not (
                action in cfg.actions or f"{service}:{action}" in cfg.actions
            ):
                return None
            kind = None
            if self._rng.random() < cfg.throttle_rate:
                kind = "throttle"
            elif self._rng.random() < cfg.error_rate:
                kind = "error"
            elif self._rng.random() < cfg.lose_response_rate:
                kind = "lose_response"
            if kind is not None:
                self._faults_since_cap += 1
                self.stats.faults[kind] += 1
                self.stats.faults_by_action[f"{service}:{action}"][kind] += 1
            return kind

    def draw_refusal(self, service: str | None, action: str | None) -> Refusal | None:
        """The configured refusal of this call, if any (counting down its ``times``)."""
        with self.lock:
            refusals = list(self._config.refuse)
            for i, refusal in enumerate(refusals):
                if not refusal.matches(service, action):
                    continue
                if refusal.times is not None:
                    left = refusal.times - 1
                    refusals[i : i + 1] = [replace(refusal, times=left)] if left else []
                    self._config = replace(self._config, refuse=tuple(refusals))
                self.stats.faults["refused"] += 1
                self.stats.faults_by_action[f"{service}:{action}"]["refused"] += 1
                return refusal
            return None

    def choice(self, options: Iterable[Any]) -> Any:
        """A seeded pick (which 5xx, which way to lose a response)."""
        with self.lock:
            return self._rng.choice(list(options))

    def count_request(self, label: str | None) -> None:
        with self.lock:
            self.stats.requests += 1
            if label is not None:
                self.stats.by_action[label] += 1

    def count_forwarded(self, label: str = "", seconds: float = 0.0) -> None:
        """A call moto answered, and how long moto took over it (its own time, the simulated
        round trip not included)."""
        with self.lock:
            self.stats.forwarded += 1
            if label:
                self.stats.upstream_seconds[label] += seconds

    def count_simulated(self, kind: str) -> None:
        with self.lock:
            self.stats.simulated[kind] += 1

    def stats_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /_sandbox/stats``."""
        with self.lock:
            cfg = self._config
            remaining = (
                None if cfg.max_faults is None else max(0, cfg.max_faults - self._faults_since_cap)
            )
            return {
                "requests": self.stats.requests,
                "forwarded": self.stats.forwarded,
                "by_action": dict(self.stats.by_action),
                "upstream_seconds": {
                    label: round(seconds, 3)
                    for label, seconds in self.stats.upstream_seconds.items()
                },
                "faults": {
                    **{kind: self.stats.faults.get(kind, 0) for kind in FAULT_KINDS},
                    "total": sum(self.stats.faults.values()),
                },
                "faults_by_action": {
                    label: dict(kinds) for label, kinds in self.stats.faults_by_action.items()
                },
                "faults_remaining": remaining,
                "simulated": dict(self.stats.simulated),
            }

    # --- simulated states --------------------------------------------------------------------------

    def nat_gateway_state(self, nat_gateway_id: str) -> str | None:
        """AWS's state of a NAT gateway the sandbox saw created, or ``None`` if it did not."""
        with self.lock:
            rec = self.nat_gateways.get(nat_gateway_id)
            if rec is None:
                return None
            now = self.now()
            if rec.deleted is not None:
                if now - rec.deleted < self.scaled("nat_gateway_deleting"):
                    return "deleting"
                return "deleted"
            if now - rec.created < self.scaled("nat_gateway_pending"):
                return "pending"
            return "available"

    def instance_state(self, instance_id: str) -> str | None:
        with self.lock:
            rec = self.instances.get(instance_id)
            if rec is None:
                return None
            now = self.now()
            if rec.terminated is not None:
                if now - rec.terminated < self.scaled("instance_shutting_down"):
                    return "shutting-down"
                return "terminated"
            if now - rec.launched < self.scaled("instance_pending"):
                return "pending"
            return "running"

    def endpoint_state(self, endpoint_id: str) -> str | None:
        """AWS's state of an interface VPC endpoint the sandbox saw created, else ``None``."""
        with self.lock:
            rec = self.endpoints.get(endpoint_id)
            if rec is None or not rec.interface:
                return None
            now = self.now()
            if rec.deleted is not None:
                if now - rec.deleted < self.scaled("vpc_endpoint_deleting"):
                    return "deleting"
                return "deleted"
            if now - rec.created < self.scaled("vpc_endpoint_pending"):
                return "pending"
            return "available"

    def function_pending(self, region: str | None, name: str | None) -> bool:
        """True while a VPC function the sandbox saw created is still ``Pending``."""
        with self.lock:
            rec = self.functions.get((region or "", name or ""))
            return rec is not None and self.now() - rec.created < self.scaled("lambda_vpc_pending")

    def function_updating(self, region: str | None, name: str | None) -> bool:
        """True while a configuration or code change of a function is still ``InProgress``."""
        with self.lock:
            rec = self.functions.get((region or "", name or ""))
            return (
                rec is not None
                and rec.updated is not None
                and self.now() - rec.updated < self.scaled(rec.update_duration)
            )

    def load_balancer_provisioning(self, arn: str) -> bool:
        with self.lock:
            rec = self.load_balancers.get(arn)
            return (
                rec is not None
                and rec.deleted is None
                and self.now() - rec.created < self.scaled("load_balancer_provisioning")
            )

    def recently_created(self, registry: dict[str, float], key: str) -> bool:
        """True while ``key`` (a role ARN, an instance profile) is too new to be used."""
        with self.lock:
            created = registry.get(key)
            return created is not None and self.now() - created < self.scaled("iam_propagation")

    def holders(self, *, subnet_id: str | None = None, group_id: str | None = None) -> list[str]:
        """What keeps a subnet or security group from being deleted, in words (for the log).

        Network interfaces are what really hold them in AWS: those of running instances, NAT
        gateways not yet ``deleted``, load balancers, interface VPC endpoints, and VPC Lambda
        functions, which keep theirs for ``eni_hold_seconds`` after the function is deleted.
        """

        def uses(subnets: set[str], groups: set[str]) -> bool:
            return (subnet_id is not None and subnet_id in subnets) or (
                group_id is not None and group_id in groups
            )

        found: list[str] = []
        with self.lock:
            now = self.now()
            for nat in self.nat_gateways.values():
                state = self.nat_gateway_state(nat.nat_gateway_id)
                if subnet_id is not None and nat.subnet_id == subnet_id and state != "deleted":
                    found.append(f"NAT gateway {nat.nat_gateway_id} ({state})")
            for inst in self.instances.values():
                state = self.instance_state(inst.instance_id)
                if uses(inst.subnet_ids, inst.group_ids) and state != "terminated":
                    found.append(f"instance {inst.instance_id} ({state})")
            for lb in self.load_balancers.values():
                if lb.deleted is None and uses(lb.subnet_ids, lb.group_ids):
                    found.append(f"load balancer {lb.arn.rsplit('/', 2)[-2]}")
            for ep in self.endpoints.values():
                state = self.endpoint_state(ep.endpoint_id)
                if uses(ep.subnet_ids, ep.group_ids) and ep.interface and state != "deleted":
                    found.append(f"VPC endpoint {ep.endpoint_id} ({state})")
            for fn in self.functions.values():
                if uses(fn.subnet_ids, fn.group_ids):
                    found.append(f"Lambda function {fn.name}")
            self._prune_released(now)
            for fn in self.released_functions:
                if uses(fn.subnet_ids, fn.group_ids):
                    left = self.eni_hold() - (now - (fn.deleted or now))
                    found.append(
                        f"network interfaces of deleted Lambda function {fn.name} "
                        f"(released in {left:.0f} s)"
                    )
            return found

    def _prune_released(self, now: float) -> None:
        """Forget deleted functions whose network interfaces AWS has released by now."""
        hold = self.eni_hold()
        self.released_functions = [
            fn for fn in self.released_functions if now - (fn.deleted or now) < hold
        ]

    def nat_gateway_holding(self, allocation_id: str) -> str | None:
        """The NAT gateway (not yet ``deleted``) an Elastic IP is associated with, if any."""
        with self.lock:
            for nat in self.nat_gateways.values():
                if (
                    allocation_id in nat.allocation_ids
                    and self.nat_gateway_state(nat.nat_gateway_id) != "deleted"
                ):
                    return nat.nat_gateway_id
            return None

    def resources_dict(self) -> dict[str, Any]:
        """The JSON shape of ``GET /_sandbox/resources``: each tracked resource and its state."""
        with self.lock:
            now = self.now()
            self._prune_released(now)
            return {
                "nat_gateways": {i: self.nat_gateway_state(i) for i in sorted(self.nat_gateways)},
                "instances": {i: self.instance_state(i) for i in sorted(self.instances)},
                "vpc_endpoints": {
                    i: self.endpoint_state(i) or "gateway" for i in sorted(self.endpoints)
                },
                "functions": {
                    f"{fn.region}/{fn.name}": (
                        "Pending"
                        if self.function_pending(fn.region, fn.name)
                        else "Updating"
                        if self.function_updating(fn.region, fn.name)
                        else "Active"
                    )
                    for fn in self.functions.values()
                },
                "load_balancers": {
                    lb.arn: (
                        "deleted"
                        if lb.deleted is not None
                        else "provisioning"
                        if self.load_balancer_provisioning(lb.arn)
                        else "active"
                    )
                    for lb in self.load_balancers.values()
                },
                "eni_holds": [
                    {
                        "function": f"{fn.region}/{fn.name}",
                        "subnets": sorted(fn.subnet_ids),
                        "security_groups": sorted(fn.group_ids),
                        "seconds_left": round(self.eni_hold() - (now - (fn.deleted or now)), 3),
                    }
                    for fn in self.released_functions
                ],
                "roles_propagating": sorted(
                    arn for arn in self.roles if self.recently_created(self.roles, arn)
                ),
                "instance_refreshes": {
                    f"{region}/{group}": [r.status for r in refreshes]
                    for (region, group), refreshes in self.instance_refreshes.items()
                },
            }
