"""Resources of this installation that no live deployment owns, and their removal.

An orphan carries this installation's ``gantry:installation`` tag, yet no deployment in this
database claims it: the row was deleted, the database was restored from a backup older than
the resource, a process crashed after AWS created the resource and before the row was
written, or a deployment that is over left it behind. Terraform leaves such leaks after an
interrupted apply; Gantry lists every one (``manage.py orphans``, the admin) and removes them
with the destroy walker (``manage.py orphans --delete``): in dependency order, NAT gateways
before their addresses, a Lambda's held network interfaces waited out.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from deployer.aws import client_factory
from deployer.inventory import Tagged, children_of, installation_resources
from deployer.models import Deployment, Installation, ResourceRecord, Target
from deployer.resources.base import AwsContext
from deployer.walker import Walk
from designer.graph import ResourceGraph, ResourceNode
from designer.plan import plan
from designer.spec import DEFAULT_SPEC, validate_spec

R = ResourceRecord.State


@dataclass(frozen=True)
class Account:
    """Where to look: one AWS account (or the emulator) and region, and the targets that
    reach it there."""

    region: str
    endpoint_url: str
    role_arn: str
    external_id: str
    targets: tuple[str, ...]

    def context(self, *, identity: str = "", installation: str = "") -> AwsContext:
        return AwsContext(
            deployment_tag=identity,
            region=self.region,
            client=client_factory(
                region=self.region,
                endpoint_url=self.endpoint_url or None,
                role_arn=self.role_arn or None,
                external_id=self.external_id or None,
            ),
            installation=installation,
        )


@dataclass(frozen=True)
class Orphan:
    resource: Tagged
    account: Account
    reason: str

    def to_json(self) -> dict:
        return {
            **self.resource.to_json(),
            "targets": list(self.account.targets),
            "reason": self.reason,
        }


def accounts_of(targets: Iterable[Target]) -> list[Account]:
    """The distinct accounts and regions the targets reach: each target's own region and
    every region its deployments went to."""
    places: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for target in targets:
        regions = {target.region} | {
            (spec or {}).get("region") or target.region
            for spec in target.deployments.values_list("spec", flat=True)
        }
        for region in regions:
            key = (region, target.endpoint_url, target.role_arn, target.external_id)
            places[key].add(f"{target.team.name}/{target.name}")
    return [
        Account(region, endpoint, role, external, tuple(sorted(names)))
        for (region, endpoint, role, external), names in sorted(places.items())
    ]


def _why_orphaned(item: Tagged, deployments: dict[str, Deployment]) -> str | None:
    """None when a live deployment owns ``item``; else why nothing does."""
    deployment = deployments.get(item.deployment)
    if deployment is None:
        return (
            f"no deployment of this installation has the identity {item.deployment or '(none)'}: "
            "its row was deleted, the database was restored from an older backup, or the "
            "process stopped before writing it"
        )
    records = {r.logical_id: r for r in deployment.resources.all()}
    record = records.get(item.logical_id)
    if deployment.is_active and (record is None or not record.physical_id):
        return None  # being created right now
    if record is None:
        return f"deployment #{deployment.pk} has no resource {item.logical_id}"
    if record.state == R.DELETED:
        return (
            f"deployment #{deployment.pk} ({deployment.get_status_display().lower()}) deleted "
            f"{item.logical_id}, but this resource of it is still there"
        )
    if item.physical_id == record.physical_id or item.physical_id in (
        record.attributes.get("_deleting") or []
    ):
        return None
    if deployment.is_active:
        return None  # a duplicate the running deployment is about to delete
    return (
        f"a second {item.logical_id} of deployment #{deployment.pk}, which owns "
        f"{record.physical_id} (a create whose answer was lost)"
    )


def orphans_find(*, targets: Iterable[Target]) -> list[Orphan]:
    """Every resource in the targets' accounts that carries this installation's tag and that no
    live deployment owns."""
    installation = Installation.current().installation_id
    found: list[tuple[Tagged, Account]] = []
    for account in accounts_of(targets):
        ctx = account.context(installation=installation)
        found += [(item, account) for item in installation_resources(ctx, installation)]
    deployments = {
        d.identity: d
        for d in Deployment.objects.filter(
            identity__in={item.deployment for item, _ in found}
        ).prefetch_related("resources")
    }
    orphans = []
    for item, account in found:
        reason = _why_orphaned(item, deployments)
        if reason is not None:
            orphans.append(Orphan(item, account, reason))
    return orphans


@functools.cache
def deletion_order() -> dict[str, frozenset[str]]:
    """For each resource type, the types whose resources must outlive it (the transitive
    ``depends_on`` of the plan, over every NAT choice and API kind): the one place that knows
    what must be deleted before what is the plan itself."""
    direct: dict[str, set[str]] = defaultdict(set)
    variants = {
        "public_subnet_cidrs": ["10.0.0.0/24", "10.0.10.0/24"],
        "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.11.0/24"],
        "api_subnet_cidrs": ["10.0.2.0/24", "10.0.12.0/24"],
    }
    for nat in ("none", "single", "per_az"):
        for kind in ("ec2", "alb"):
            spec = validate_spec({**DEFAULT_SPEC, **variants, "nat": nat, "api_kind": kind}).spec
            graph = plan(spec)
            for node in graph:
                direct[node.type] |= {graph[d].type for d in node.depends_on} - {node.type}
    closure: dict[str, frozenset[str]] = {}

    def reach(type_name: str, seen: frozenset[str]) -> frozenset[str]:
        if type_name in closure:
            return closure[type_name]
        out: set[str] = set()
        for dep in direct.get(type_name, ()):
            if dep not in seen:
                out |= {dep} | reach(dep, seen | {dep})
        closure[type_name] = frozenset(out - {type_name})
        return closure[type_name]

    for type_name in list(direct):
        reach(type_name, frozenset({type_name}))
    return closure


def removal_graph(items: list[Tagged]) -> ResourceGraph:
    """A graph of the given resources for the destroy walker: a node per resource (its
    physical id as the logical id, nothing to look up by tags), each depending on the ones
    that must outlive it, an untaggable piece on the resource it hangs on."""
    order = deletion_order()
    graph = ResourceGraph()
    for item in items:
        depends_on = [
            other.physical_id
            for other in items
            if other.physical_id != item.physical_id
            and (other.type in order.get(item.type, ()) or other.physical_id == item.parent)
        ]
        graph.add(
            ResourceNode(
                item.physical_id,
                item.type,
                depends_on=depends_on,
                meta={"label": f"{item.name} ({item.type})", "unplanned": True},
            )
        )
    graph.topological_order()
    return graph


def orphans_delete(
    orphans: list[Orphan],
    *,
    on_event: Callable[[str], None] = lambda _: None,
    wait: Callable[[float], None],
    timeout: float = 3600.0,
) -> list[str]:
    """Delete the orphans, one deployment identity at a time, with the destroy walker; returns
    what could not be deleted (empty when everything went). ``wait(seconds)`` is how the
    caller spends the time AWS needs between two looks (the CLI waits; no worker does)."""
    installation = Installation.current().installation_id
    groups: dict[tuple[Account, str], list[Tagged]] = defaultdict(list)
    for orphan in orphans:
        groups[(orphan.account, orphan.resource.deployment)].append(orphan.resource)
    stuck: list[str] = []
    for (account, identity), items in groups.items():
        ctx = account.context(identity=identity, installation=installation)
        items = items + [child for item in items for child in children_of(ctx, item)]
        graph = removal_graph(items)
        records = [
            ResourceRecord(
                logical_id=node.logical_id,
                type=node.type,
                state=R.READY,
                physical_id=node.logical_id,
                node=node.to_json(),
                action=ResourceRecord.Action.DELETE,
                settled=False,
            )
            for node in graph.topological_order()
        ]
        deadline = timezone.now() + timedelta(seconds=timeout)
        while True:
            walk = Walk(None, records, ctx)
            failed = walk.run()
            for event in walk.emitted:
                on_event(event.message)
            if failed or walk.done():
                break
            if timezone.now() > deadline:
                on_event(f"gave up after {timeout:.0f} s")
                break
            wait(max(0.2, walk.next_delay()))
        stuck += [
            f"{r.type} {r.physical_id}: {r.last_error or r.waiting_reason or r.state}"
            for r in records
            if r.state != R.DELETED
        ]
    return stuck
