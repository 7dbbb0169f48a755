"""The AWS behaviour moto lacks, applied around each forwarded call.

``before`` runs before a request reaches moto and may refuse it the way AWS would (the refusal
is never forwarded, so moto's state stays what AWS's would be), answer it from the ClientToken
cache, or rewrite the request (drop a state filter moto would apply to the wrong state).
``after`` runs on moto's answer: it records what was created or deleted, and rewrites states to
what AWS would report at this moment.

Simulated (real AWS durations, multiplied by the time scale):

- NAT gateway ``pending`` 90 s then ``available``; after DeleteNatGateway ``deleting`` 60 s then
  ``deleted`` (shown again from a snapshot if moto forgets it); its Elastic IP cannot be
  released and its subnet cannot be deleted until it is ``deleted``.
- EC2 instance ``pending`` 20 s then ``running``; after TerminateInstances ``shutting-down`` 30 s
  then ``terminated``; its subnet and security groups are in use until then.
- Lambda function in a VPC ``Pending`` (``Creating``) 60 s then ``Active``; updates meanwhile get
  ``ResourceConflictException``. Its subnets and security groups are in use while it exists and
  for ``eni_hold_seconds`` (default 1200 s) after it is deleted, or after a
  configuration change stops using them. After a configuration or code
  change, ``LastUpdateStatus`` is ``InProgress`` for 5 s (60 s when the VPC changed) and further
  changes get ``ResourceConflictException``.
- Load balancer ``provisioning`` 150 s then ``active``; its subnets and security groups are in
  use until it is deleted.
- Interface VPC endpoint ``pending`` 60 s then ``available``; after DeleteVpcEndpoints
  ``deleting`` 30 s then ``deleted``; its subnets and security groups are in use until then.
- IAM: for 10 s after CreateRole, Lambda refuses the role ("cannot be assumed by Lambda"); for
  10 s after CreateInstanceProfile / AddRoleToInstanceProfile, RunInstances refuses the profile.
- Auto Scaling instance refreshes (moto has none): StartInstanceRefresh, DescribeInstanceRefreshes
  and CancelInstanceRefresh, replacing instances in batches (``deployer/sandbox/refresh.py``);
  each group instance reports the launch template version it was launched from.
- A launch template version's user data given to CreateLaunchTemplateVersion is kept by the
  sandbox and shown in the version's descriptions: moto stores it in a form its Auto Scaling
  cannot launch from (every launch from that version would answer 500). Instances launched
  from such a version get no user data in moto, which runs nothing anyway.
- EC2 ``ClientToken`` idempotency (moto ignores it): a repeated token with the same parameters
  returns the first answer instead of creating again; with other parameters,
  ``IdempotentParameterMismatch``.
- Deletes moto accepts and AWS refuses: DeleteVpc with an attached internet gateway, non-default
  security groups, non-main route tables or VPC endpoints; DeleteSecurityGroup while another
  group's rule references it.

XML is edited with ElementTree and re-serialised with the response's own default namespace;
a response that does not parse, or cannot be re-serialised faithfully, is passed on unchanged.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import math
import xml.etree.ElementTree as ET  # noqa: S405 - parses moto's answers, not untrusted input
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from deployer.sandbox.protocol import Call, Reply, error_reply
from deployer.sandbox.refresh import GroupView, InstanceRefreshes
from deployer.sandbox.state import (
    EndpointRecord,
    FunctionRecord,
    InstanceRecord,
    LoadBalancerRecord,
    NatGatewayRecord,
    SandboxState,
)

log = logging.getLogger("deployer.sandbox")

#: ``fetch(method, path, body, content_type)``: a side request to moto carrying the original
#: caller's credentials scope (moto uses it to pick the service and region), or ``None`` when
#: moto could not be asked.
Fetch = Callable[[str, str, bytes, str], Reply | None]

INSTANCE_CODES = {
    "pending": "0",
    "running": "16",
    "shutting-down": "32",
    "terminated": "48",
    "stopping": "64",
    "stopped": "80",
}
_PAST = -math.inf  # "created long ago" for resources first seen being deleted


@dataclass
class Prepared:
    """What ``before`` decided.

    ``reply``: answer this without forwarding. ``replay``: moto's earlier answer to the same
    ClientToken, to be treated as if moto had just given it. ``body``: forward this body instead.
    ``notes``: facts for ``after``.
    """

    reply: Reply | None = None
    replay: Reply | None = None
    body: bytes | None = None
    notes: dict[str, Any] = field(default_factory=dict)


# --- XML helpers -----------------------------------------------------------------------------------


def _parse(body: bytes) -> tuple[ET.Element, str] | None:
    """The root element and its namespace (``""`` when none), or ``None`` if not XML."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - moto's own response
    except ET.ParseError:
        return None
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    return root, ns


#: A parsed answer: its root element and namespace.
Xml = tuple[ET.Element, str]


def _on_xml_answer(hook: Callable[..., Reply]) -> Callable[..., Reply]:
    """For an ``_after_*`` hook that reads the XML of a successful answer: it is called with
    the parsed root and namespace (``xml``) after the usual arguments; a failed or non-XML
    answer is passed on untouched without calling it."""

    @functools.wraps(hook)
    def after(self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch) -> Reply:
        parsed = _parse(reply.body) if reply.ok else None
        if parsed is None:
            return reply
        return hook(self, call, prepared, reply, fetch, parsed)

    return after


def _q(ns: str, path: str) -> str:
    """``a/b`` qualified with namespace ``ns`` for ElementTree's ``find``."""
    return "/".join(f"{{{ns}}}{part}" if ns and part != "." else part for part in path.split("/"))


def _text(el: ET.Element, ns: str, path: str) -> str | None:
    child = el.find(_q(ns, path))
    return None if child is None else (child.text or "")


def _texts(el: ET.Element, ns: str, path: str) -> list[str]:
    return [c.text for c in el.findall(_q(ns, path)) if c.text]


def _set_text(el: ET.Element, ns: str, path: str, value: str) -> bool:
    """Set the text of ``path`` under ``el``; True when that changed anything."""
    child = el.find(_q(ns, path))
    if child is None or child.text == value:
        return False
    child.text = value
    return True


def _serialize(root: ET.Element, ns: str) -> bytes | None:
    """Back to bytes, keeping the default namespace (``None`` if that is not possible)."""
    try:
        return ET.tostring(
            root, encoding="utf-8", xml_declaration=True, default_namespace=ns or None
        )
    except (ValueError, TypeError):
        return None


def _with_body(reply: Reply, body: bytes | None) -> Reply:
    return reply if body is None else replace(reply, body=body)


def _indexed(params: dict[str, str], prefix: str) -> list[str]:
    """``Prefix.1``, ``Prefix.2``... values of a query-protocol list parameter."""
    values = []
    index = 1
    while f"{prefix}.{index}" in params:
        values.append(params[f"{prefix}.{index}"])
        index += 1
    return values


def _function_name(name_or_arn: str | None) -> str | None:
    """A Lambda function's name from a name, a partial ARN or a full ARN."""
    if not name_or_arn:
        return None
    if ":function:" in name_or_arn:
        return name_or_arn.split(":function:", 1)[1].split(":", 1)[0]
    return name_or_arn.split(":", 1)[0]


class Behaviours:
    """AWS behaviour on top of moto, driven by :class:`SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.refreshes = InstanceRefreshes(state, self._group_view)
        self._before: dict[tuple[str, str], Callable[[Call, bytes, Fetch], Prepared | None]] = {
            ("ec2", "DeleteSubnet"): self._before_delete_subnet,
            ("ec2", "DeleteSecurityGroup"): self._before_delete_security_group,
            ("ec2", "DeleteVpc"): self._before_delete_vpc,
            ("ec2", "ReleaseAddress"): self._before_release_address,
            ("ec2", "RunInstances"): self._before_run_instances,
            ("ec2", "CreateLaunchTemplateVersion"): self._before_create_template_version,
            ("ec2", "DescribeNatGateways"): self._strip_state_filter("state"),
            ("ec2", "DescribeInstances"): self._strip_state_filter("instance-state-name"),
            ("ec2", "DescribeVpcEndpoints"): self._strip_state_filter("vpc-endpoint-state"),
            ("lambda", "CreateFunction"): self._before_create_function,
            ("lambda", "UpdateFunctionConfiguration"): self._before_update_function,
            ("lambda", "UpdateFunctionCode"): self._before_update_function,
            ("lambda", "DeleteFunction"): self._before_delete_function,
            ("autoscaling", "StartInstanceRefresh"): self._answered(self.refreshes.start),
            ("autoscaling", "DescribeInstanceRefreshes"): self._answered(self.refreshes.describe),
            ("autoscaling", "CancelInstanceRefresh"): self._answered(self.refreshes.cancel),
            ("autoscaling", "DescribeAutoScalingGroups"): self.refreshes.advance_before,
        }
        self._after: dict[tuple[str, str], Callable[[Call, Prepared, Reply, Fetch], Reply]] = {
            ("ec2", "CreateNatGateway"): self._after_create_nat_gateway,
            ("ec2", "DeleteNatGateway"): self._after_delete_nat_gateway,
            ("ec2", "DescribeNatGateways"): self._after_describe_nat_gateways,
            ("ec2", "RunInstances"): self._after_run_instances,
            ("ec2", "TerminateInstances"): self._after_terminate_instances,
            ("ec2", "DescribeInstances"): self._after_describe_instances,
            ("ec2", "CreateLaunchTemplateVersion"): self._after_create_template_version,
            ("ec2", "DescribeLaunchTemplateVersions"): self._after_describe_template_versions,
            ("autoscaling", "DescribeAutoScalingGroups"): self._after_describe_asgs,
            ("ec2", "CreateVpcEndpoint"): self._after_create_vpc_endpoint,
            ("ec2", "ModifyVpcEndpoint"): self._after_modify_vpc_endpoint,
            ("ec2", "DeleteVpcEndpoints"): self._after_delete_vpc_endpoints,
            ("ec2", "DescribeVpcEndpoints"): self._after_describe_vpc_endpoints,
            ("elasticloadbalancing", "CreateLoadBalancer"): self._after_create_load_balancer,
            ("elasticloadbalancing", "DescribeLoadBalancers"): self._after_describe_lbs,
            ("elasticloadbalancing", "DeleteLoadBalancer"): self._after_delete_load_balancer,
            ("iam", "CreateRole"): self._after_create_role,
            ("iam", "CreateInstanceProfile"): self._after_create_instance_profile,
            ("iam", "AddRoleToInstanceProfile"): self._after_add_role_to_profile,
            ("lambda", "CreateFunction"): self._after_create_function,
            ("lambda", "UpdateFunctionConfiguration"): self._after_update_function_configuration,
            ("lambda", "UpdateFunctionCode"): self._after_update_function_code,
            ("lambda", "GetFunction"): self._after_get_function,
            ("lambda", "GetFunctionConfiguration"): self._after_get_function_configuration,
            ("lambda", "ListFunctions"): self._after_list_functions,
            ("lambda", "DeleteFunction"): self._after_delete_function,
        }

    # --- entry points ----------------------------------------------------------------------------

    def before(self, call: Call, body: bytes, fetch: Fetch) -> Prepared:
        """Decide what to do with a request before moto sees it."""
        if call.service is None or call.action is None:
            return Prepared()
        if call.service == "ec2" and call.params.get("ClientToken"):
            prepared = self._idempotency(call)
            if prepared is not None:
                return prepared
        handler = self._before.get((call.service, call.action))
        return (handler(call, body, fetch) if handler else None) or Prepared()

    def after(self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch) -> Reply:
        """Record what moto's answer says happened, and show AWS's state instead of moto's."""
        if call.service is None or call.action is None:
            return reply
        if (
            call.service == "ec2"
            and reply.ok
            and prepared.replay is None
            and call.params.get("ClientToken")
        ):
            self.state.remember_token(self._token_key(call), self._digest(call), reply)
        handler = self._after.get((call.service, call.action))
        return handler(call, prepared, reply, fetch) if handler else reply

    # --- shared --------------------------------------------------------------------------------

    @staticmethod
    def _answered(
        answer: Callable[[Call, Fetch], Reply],
    ) -> Callable[[Call, bytes, Fetch], Prepared]:
        """A ``before`` for a call the sandbox answers itself (moto lacks it)."""
        return lambda call, body, fetch: Prepared(reply=answer(call, fetch))

    def _refuse(self, call: Call, status: int, code: str, message: str, why: str) -> Prepared:
        kind = {
            "DependencyViolation": "dependency_violation",
            "InvalidIPAddress.InUse": "address_in_use",
            "ResourceConflictException": "function_pending_conflict",
            "IdempotentParameterMismatch": "idempotent_mismatch",
        }.get(code, code)
        self.state.count_simulated(kind)
        log.info("sandbox refused %s with %s: %s", call.label, code, why)
        return Prepared(reply=error_reply(call, status, code, message))

    def _dependency_violation(self, call: Call, message: str, holders: list[str]) -> Prepared:
        return self._refuse(call, 400, "DependencyViolation", message, "; ".join(holders))

    @staticmethod
    def _token_key(call: Call) -> tuple[str, str, str]:
        return (call.region or "", call.action or "", call.params["ClientToken"])

    @staticmethod
    def _digest(call: Call) -> str:
        items = sorted((k, v) for k, v in call.params.items() if k != "ClientToken")
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()

    def _idempotency(self, call: Call) -> Prepared | None:
        with self.state.lock:
            seen = self.state.idempotency.get(self._token_key(call))
        if seen is None:
            return None
        digest, reply = seen
        if digest != self._digest(call):
            return self._refuse(
                call,
                400,
                "IdempotentParameterMismatch",
                "Arguments on this idempotent request are inconsistent with arguments used in "
                "previous request(s).",
                f"ClientToken reused with other parameters for {call.action}",
            )
        self.state.count_simulated("idempotent_replay")
        log.info("sandbox answered %s from its ClientToken cache", call.label)
        return Prepared(replay=copy.deepcopy(reply))

    def _ec2_describe(
        self, call: Call, fetch: Fetch, action: str, params: dict[str, str]
    ) -> tuple[ET.Element, str] | None:
        """One EC2 call straight to moto (not through faults), parsed: a Describe*, or a side
        effect of AWS's that moto lacks."""
        form = {"Action": action, "Version": call.params.get("Version", "2016-11-15"), **params}
        reply = fetch(
            "POST",
            "/",
            urlencode(form).encode(),
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        if reply is None or not reply.ok:
            return None
        return _parse(reply.body)

    # --- EC2: refusals ---------------------------------------------------------------------------

    def _before_delete_subnet(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        subnet_id = call.params.get("SubnetId", "")
        holders = self.state.holders(subnet_id=subnet_id)
        if not holders:
            return None
        return self._dependency_violation(
            call,
            f"The subnet '{subnet_id}' has dependencies and cannot be deleted.",
            [f"{subnet_id} held by {h}" for h in holders],
        )

    def _before_delete_security_group(
        self, call: Call, body: bytes, fetch: Fetch
    ) -> Prepared | None:
        group_id = call.params.get("GroupId")
        if not group_id:
            return None
        holders = self.state.holders(group_id=group_id)
        if not holders:
            holders = self._referencing_groups(call, fetch, group_id)
        if not holders:
            return None
        return self._dependency_violation(
            call,
            f"resource {group_id} has a dependent object",
            [f"{group_id} held by {h}" for h in holders],
        )

    def _referencing_groups(self, call: Call, fetch: Fetch, group_id: str) -> list[str]:
        """Other security groups whose rules name ``group_id`` (AWS refuses to delete it)."""
        parsed = self._ec2_describe(call, fetch, "DescribeSecurityGroups", {})
        if parsed is None:
            return []
        root, ns = parsed
        found = []
        for item in root.findall(_q(ns, "securityGroupInfo/item")):
            other = _text(item, ns, "groupId")
            if other == group_id:
                continue
            refs = _texts(item, ns, "ipPermissions/item/groups/item/groupId") + _texts(
                item, ns, "ipPermissionsEgress/item/groups/item/groupId"
            )
            if group_id in refs:
                found.append(f"a rule of security group {other}")
        return found

    def _before_delete_vpc(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        vpc_id = call.params.get("VpcId")
        if not vpc_id:
            return None
        by_vpc = {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc_id}
        holders: list[str] = []
        parsed = self._ec2_describe(
            call,
            fetch,
            "DescribeInternetGateways",
            {"Filter.1.Name": "attachment.vpc-id", "Filter.1.Value.1": vpc_id},
        )
        if parsed is not None:
            root, ns = parsed
            for item in root.findall(_q(ns, "internetGatewaySet/item")):
                attached = _texts(item, ns, "attachmentSet/item/vpcId")
                if vpc_id in attached:
                    holders.append(f"internet gateway {_text(item, ns, 'internetGatewayId')}")
        parsed = self._ec2_describe(call, fetch, "DescribeSecurityGroups", by_vpc)
        if parsed is not None:
            root, ns = parsed
            for item in root.findall(_q(ns, "securityGroupInfo/item")):
                if _text(item, ns, "vpcId") == vpc_id and _text(item, ns, "groupName") != "default":
                    holders.append(f"security group {_text(item, ns, 'groupId')}")
        parsed = self._ec2_describe(call, fetch, "DescribeRouteTables", by_vpc)
        if parsed is not None:
            root, ns = parsed
            for item in root.findall(_q(ns, "routeTableSet/item")):
                main = "true" in _texts(item, ns, "associationSet/item/main")
                if _text(item, ns, "vpcId") == vpc_id and not main:
                    holders.append(f"route table {_text(item, ns, 'routeTableId')}")
        parsed = self._ec2_describe(call, fetch, "DescribeVpcEndpoints", by_vpc)
        if parsed is not None:
            root, ns = parsed
            for item in root.findall(_q(ns, "vpcEndpointSet/item")):
                endpoint_id = _text(item, ns, "vpcEndpointId") or ""
                state = self.state.endpoint_state(endpoint_id) or _text(item, ns, "state") or ""
                if _text(item, ns, "vpcId") == vpc_id and state.lower() != "deleted":
                    holders.append(f"VPC endpoint {_text(item, ns, 'vpcEndpointId')}")
        if not holders:
            return None
        return self._dependency_violation(
            call,
            f"The vpc '{vpc_id}' has dependencies and cannot be deleted.",
            [f"{vpc_id} has {h}" for h in holders],
        )

    def _before_release_address(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        allocation_id = call.params.get("AllocationId")
        nat = self.state.nat_gateway_holding(allocation_id) if allocation_id else None
        if nat is None:
            return None
        return self._refuse(
            call,
            400,
            "InvalidIPAddress.InUse",
            f"The address with allocation id [{allocation_id}] is in use.",
            f"{allocation_id} is associated with NAT gateway {nat}, not yet deleted",
        )

    def _before_run_instances(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        for param, label in (
            ("IamInstanceProfile.Name", "iamInstanceProfile.name"),
            ("IamInstanceProfile.Arn", "iamInstanceProfile.arn"),
        ):
            value = call.params.get(param)
            if value and self.state.recently_created(self.state.instance_profiles, value):
                self.state.count_simulated("instance_profile_not_ready")
                log.info("sandbox refused %s: instance profile %s is too new", call.label, value)
                return Prepared(
                    reply=error_reply(
                        call,
                        400,
                        "InvalidParameterValue",
                        f"Value ({value}) for parameter {label} is invalid. "
                        "Invalid IAM Instance Profile name",
                    )
                )
        return None

    # --- EC2: launch template versions ------------------------------------------------------

    USER_DATA_PARAM = "LaunchTemplateData.UserData"

    def _before_create_template_version(
        self, call: Call, body: bytes, fetch: Fetch
    ) -> Prepared | None:
        """Keep the new version's user data out of moto (it would break every launch from the
        version); ``after`` records it under the version's number."""
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        user_data = [v for k, v in pairs if k == self.USER_DATA_PARAM]
        if not user_data:
            return None
        kept = [(k, v) for k, v in pairs if k != self.USER_DATA_PARAM]
        return Prepared(body=urlencode(kept).encode(), notes={"user_data": user_data[-1]})

    def _show_user_data(self, item: ET.Element, ns: str) -> bool:
        """Put a version's kept user data back into its description."""
        key = (_text(item, ns, "launchTemplateId") or "", _text(item, ns, "versionNumber") or "")
        with self.state.lock:
            user_data = self.state.template_user_data.get(key)
        data = item.find(_q(ns, "launchTemplateData"))
        if user_data is None or data is None or data.find(_q(ns, "userData")) is not None:
            return False
        ET.SubElement(data, _q(ns, "userData")).text = user_data
        return True

    @_on_xml_answer
    def _after_create_template_version(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        item = root.find(_q(ns, "launchTemplateVersion"))
        if item is None:
            return reply
        if "user_data" in prepared.notes:
            key = (
                _text(item, ns, "launchTemplateId") or "",
                _text(item, ns, "versionNumber") or "",
            )
            with self.state.lock:
                self.state.template_user_data[key] = prepared.notes["user_data"]
        if self._show_user_data(item, ns):
            return _with_body(reply, _serialize(root, ns))
        return reply

    @_on_xml_answer
    def _after_describe_template_versions(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        changed = False
        for item in root.findall(_q(ns, "launchTemplateVersionSet/item")):
            changed |= self._show_user_data(item, ns)
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    def _strip_state_filter(
        self, filter_name: str
    ) -> Callable[[Call, bytes, Fetch], Prepared | None]:
        """A ``before`` that removes ``filter_name`` filters from a Describe call.

        moto would apply them to *its* state ("available" at once); ``after`` applies them to the
        state AWS would show instead. Remaining filters are renumbered from 1 because moto
        stops reading ``Filter.N`` at the first gap.
        """

        def before(call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
            pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            names = {
                key.split(".")[1]: value
                for key, value in pairs
                if key.startswith("Filter.") and key.endswith(".Name") and key.count(".") == 2
            }
            stripped = {index for index, name in names.items() if name == filter_name}
            if not stripped:
                return None
            wanted: list[set[str]] = []
            for index in sorted(stripped):
                prefix = f"Filter.{index}.Value."
                wanted.append({v for k, v in pairs if k.startswith(prefix)})
            kept = sorted((i for i in names if i not in stripped), key=lambda i: int(i))
            renumber = {old: str(new) for new, old in enumerate(kept, start=1)}
            out = []
            for key, value in pairs:
                if key.startswith("Filter."):
                    index = key.split(".")[1]
                    if index in stripped or index not in renumber:
                        continue
                    key = f"Filter.{renumber[index]}." + key.split(".", 2)[2]
                out.append((key, value))
            return Prepared(body=urlencode(out).encode(), notes={"state_filter": wanted})

        return before

    # --- EC2: NAT gateways ---------------------------------------------------------------------

    @_on_xml_answer
    def _after_create_nat_gateway(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        nat = root.find(_q(ns, "natGateway"))
        nat_id = None if nat is None else _text(nat, ns, "natGatewayId")
        if nat is None or not nat_id:
            return reply
        allocations = set(_texts(nat, ns, "natGatewayAddressSet/item/allocationId"))
        if call.params.get("AllocationId"):
            allocations.add(call.params["AllocationId"])
        snapshot = copy.deepcopy(nat)
        snapshot.tag = _q(ns, "item")
        with self.state.lock:
            self.state.nat_gateways.setdefault(
                nat_id,
                NatGatewayRecord(
                    nat_gateway_id=nat_id,
                    subnet_id=_text(nat, ns, "subnetId") or call.params.get("SubnetId"),
                    allocation_ids=allocations,
                    created=self.state.now(),
                    snapshot=snapshot,
                ),
            )
            state = self.state.nat_gateway_state(nat_id)
        if state and _set_text(nat, ns, "state", state):
            return _with_body(reply, _serialize(root, ns))
        return reply

    def _after_delete_nat_gateway(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        nat_id = call.params.get("NatGatewayId")
        if not reply.ok or not nat_id:
            return reply
        with self.state.lock:
            rec = self.state.nat_gateways.get(nat_id)
            if rec is not None:
                if rec.deleted is None:
                    rec.deleted = self.state.now()
                return reply
        # Created before the sandbox was watching: learn its subnet and address from moto so
        # the deletion still holds them like AWS would.
        subnet_id, allocations, snapshot = None, set(), None
        parsed = self._ec2_describe(call, fetch, "DescribeNatGateways", {"NatGatewayId.1": nat_id})
        if parsed is not None:
            root, ns = parsed
            item = root.find(_q(ns, "natGatewaySet/item"))
            if item is not None:
                subnet_id = _text(item, ns, "subnetId")
                allocations = set(_texts(item, ns, "natGatewayAddressSet/item/allocationId"))
                snapshot = copy.deepcopy(item)
        with self.state.lock:
            self.state.nat_gateways.setdefault(
                nat_id,
                NatGatewayRecord(
                    nat_gateway_id=nat_id,
                    subnet_id=subnet_id,
                    allocation_ids=allocations,
                    created=_PAST,
                    deleted=self.state.now(),
                    snapshot=snapshot,
                ),
            )
        return reply

    def _after_describe_nat_gateways(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        requested = _indexed(call.params, "NatGatewayId")
        if not reply.ok:
            return self._synthesize_nat_gateways(call, prepared, reply, requested)
        parsed = _parse(reply.body)
        if parsed is None:
            return reply
        root, ns = parsed
        container = root.find(_q(ns, "natGatewaySet"))
        if container is None:
            return reply
        changed = False
        seen = set()
        for item in list(container.findall(_q(ns, "item"))):
            nat_id = _text(item, ns, "natGatewayId") or ""
            seen.add(nat_id)
            state = self.state.nat_gateway_state(nat_id)
            if state is not None:
                changed |= _set_text(item, ns, "state", state)
        # moto may forget a deleted gateway at once; AWS shows it as deleting, then deleted.
        for nat_id in requested:
            if nat_id in seen:
                continue
            item = self._nat_snapshot(nat_id, ns)
            if item is not None:
                container.append(item)
                changed = True
        changed |= self._apply_state_filter(prepared, container, ns, "item", "state")
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    def _nat_snapshot(self, nat_id: str, ns: str) -> ET.Element | None:
        """A deleted gateway's last description with its current state, if the sandbox has it."""
        with self.state.lock:
            rec = self.state.nat_gateways.get(nat_id)
            if rec is None or rec.deleted is None or rec.snapshot is None:
                return None
            state = self.state.nat_gateway_state(nat_id) or "deleted"
            item = copy.deepcopy(rec.snapshot)
        snapshot_ns = item.tag[1:].split("}", 1)[0] if item.tag.startswith("{") else ""
        if snapshot_ns != ns:
            return None
        _set_text(item, ns, "state", state)
        return item

    def _synthesize_nat_gateways(
        self, call: Call, prepared: Prepared, reply: Reply, requested: list[str]
    ) -> Reply:
        """moto answered NotFound for gateways AWS would still show (deleting / deleted)."""
        if not requested or reply.status != 400 or b"NotFound" not in reply.body:
            return reply
        ns = "http://ec2.amazonaws.com/doc/2016-11-15/"
        items = [self._nat_snapshot(nat_id, ns) for nat_id in requested]
        if any(item is None for item in items):
            return reply
        root = ET.Element(_q(ns, "DescribeNatGatewaysResponse"))
        ET.SubElement(root, _q(ns, "requestId")).text = "sandbox-synthesized"
        container = ET.SubElement(root, _q(ns, "natGatewaySet"))
        container.extend(item for item in items if item is not None)
        self._apply_state_filter(prepared, container, ns, "item", "state")
        body = _serialize(root, ns)
        if body is None:
            return reply
        return Reply(200, [("Content-Type", "text/xml;charset=UTF-8")], body)

    @staticmethod
    def _apply_state_filter(
        prepared: Prepared, container: ET.Element, ns: str, item_path: str, state_path: str
    ) -> bool:
        """Drop items whose (simulated) state fails the state filter ``before`` took away."""
        wanted: list[set[str]] | None = prepared.notes.get("state_filter")
        if not wanted:
            return False
        changed = False
        for item in list(container.findall(_q(ns, item_path))):
            state = _text(item, ns, state_path) or ""
            if not all(state in values for values in wanted):
                container.remove(item)
                changed = True
        return changed

    # --- EC2: instances ------------------------------------------------------------------------

    def _rewrite_instance_state(self, item: ET.Element, ns: str, path: str) -> bool:
        instance_id = _text(item, ns, "instanceId") or ""
        state = self.state.instance_state(instance_id)
        moto_state = _text(item, ns, f"{path}/name")
        if state is None or moto_state in ("stopping", "stopped"):
            return False
        changed = _set_text(item, ns, f"{path}/name", state)
        changed |= _set_text(item, ns, f"{path}/code", INSTANCE_CODES[state])
        return changed

    @_on_xml_answer
    def _after_run_instances(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        changed = False
        for item in root.findall(_q(ns, "instancesSet/item")):
            instance_id = _text(item, ns, "instanceId")
            if not instance_id:
                continue
            subnets = set(_texts(item, ns, "subnetId")) | set(
                _texts(item, ns, "networkInterfaceSet/item/subnetId")
            )
            groups = set(_texts(item, ns, "groupSet/item/groupId")) | set(
                _texts(item, ns, "networkInterfaceSet/item/groupSet/item/groupId")
            )
            with self.state.lock:
                self.state.instances.setdefault(
                    instance_id,
                    InstanceRecord(instance_id, subnets, groups, launched=self.state.now()),
                )
            changed |= self._rewrite_instance_state(item, ns, "instanceState")
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    def _after_terminate_instances(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        if not reply.ok:
            return reply
        with self.state.lock:
            now = self.state.now()
            for instance_id in _indexed(call.params, "InstanceId"):
                rec = self.state.instances.get(instance_id)
                if rec is None:
                    rec = self.state.instances[instance_id] = InstanceRecord(
                        instance_id, set(), set(), launched=_PAST
                    )
                if rec.terminated is None:
                    rec.terminated = now
        parsed = _parse(reply.body)
        if parsed is None:
            return reply
        root, ns = parsed
        changed = False
        for item in root.findall(_q(ns, "instancesSet/item")):
            changed |= self._rewrite_instance_state(item, ns, "currentState")
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    @_on_xml_answer
    def _after_describe_instances(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        changed = False
        container = root.find(_q(ns, "reservationSet"))
        if container is None:
            return reply
        for reservation in list(container.findall(_q(ns, "item"))):
            instances = reservation.find(_q(ns, "instancesSet"))
            if instances is None:
                continue
            for item in instances.findall(_q(ns, "item")):
                changed |= self._rewrite_instance_state(item, ns, "instanceState")
            if self._apply_state_filter(prepared, instances, ns, "item", "instanceState/name"):
                changed = True
                if instances.find(_q(ns, "item")) is None:
                    container.remove(reservation)
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    @_on_xml_answer
    def _after_describe_asgs(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        """Instances an Auto Scaling group launches are pending like any other (moto puts
        them InService at once). moto starts them without a RunInstances call through the
        proxy, so an instance is recorded as launched when an answer first shows it; the
        group then reports it ``Pending`` (and DescribeInstances ``pending``) until AWS's
        boot time has passed, and with the launch template version the group had then (moto
        shows the template's current default for every instance, so a group would never seem
        to run an outdated version)."""
        root, ns = xml
        changed = False
        groups = root.findall(_q(ns, "DescribeAutoScalingGroupsResult/AutoScalingGroups/member"))
        for group in groups:
            version = _text(group, ns, "LaunchTemplate/Version")
            for member in group.findall(_q(ns, "Instances/member")):
                changed |= self.rewrite_group_instance(member, ns, version)
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    def rewrite_group_instance(self, member: ET.Element, ns: str, version: str | None) -> bool:
        """One ``Instances/member`` of a group: recorded when first seen (launched now, from
        the group's launch template version), then shown ``Pending`` while it boots and with
        the version it was launched from. True when the element changed."""
        instance_id = _text(member, ns, "InstanceId")
        if not instance_id:
            return False
        with self.state.lock:
            rec = self.state.instances.setdefault(
                instance_id,
                InstanceRecord(
                    instance_id,
                    set(),
                    set(),
                    launched=self.state.now(),
                    launch_template_version=version,
                ),
            )
            if rec.launch_template_version is None:
                rec.launch_template_version = version
            launched_from = rec.launch_template_version
        changed = False
        if (
            self.state.instance_state(instance_id) == "pending"
            and _text(member, ns, "LifecycleState") == "InService"
        ):
            changed |= _set_text(member, ns, "LifecycleState", "Pending")
        if launched_from:
            changed |= _set_text(member, ns, "LaunchTemplate/Version", launched_from)
        return changed

    def _group_view(self, call: Call, fetch: Fetch, name: str) -> GroupView | None:
        """One Auto Scaling group as AWS would describe it now (moto's answer with the
        instances' boot state and launch versions), for an instance refresh."""
        form = {
            "Action": "DescribeAutoScalingGroups",
            "Version": "2011-01-01",
            "AutoScalingGroupNames.member.1": name,
        }
        reply = fetch(
            "POST",
            "/",
            urlencode(form).encode(),
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        parsed = _parse(reply.body) if reply is not None and reply.ok else None
        if parsed is None:
            return None
        root, ns = parsed
        group = root.find(_q(ns, "DescribeAutoScalingGroupsResult/AutoScalingGroups/member"))
        if group is None:
            return None
        version = _text(group, ns, "LaunchTemplate/Version")
        instances = []
        for member in group.findall(_q(ns, "Instances/member")):
            self.rewrite_group_instance(member, ns, version)
            instances.append(
                (
                    _text(member, ns, "InstanceId") or "",
                    _text(member, ns, "LifecycleState") or "",
                    _text(member, ns, "LaunchTemplate/LaunchTemplateId"),
                    _text(member, ns, "LaunchTemplate/Version"),
                )
            )
        return GroupView(
            name=name,
            desired=int(_text(group, ns, "DesiredCapacity") or 0),
            grace_period=int(_text(group, ns, "HealthCheckGracePeriod") or 0),
            template_id=_text(group, ns, "LaunchTemplate/LaunchTemplateId"),
            version=version,
            instances=instances,
        )

    # --- EC2: VPC endpoints ----------------------------------------------------------------------

    @_on_xml_answer
    def _after_create_vpc_endpoint(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        endpoint = root.find(_q(ns, "vpcEndpoint"))
        endpoint_id = None if endpoint is None else _text(endpoint, ns, "vpcEndpointId")
        if endpoint is None or not endpoint_id:
            return reply
        subnets = set(_indexed(call.params, "SubnetId")) | set(
            _texts(endpoint, ns, "subnetIdSet/item")
        )
        groups = set(_indexed(call.params, "SecurityGroupId")) | set(
            _texts(endpoint, ns, "groupSet/item/groupId")
        )
        kind = _text(endpoint, ns, "vpcEndpointType") or call.params.get("VpcEndpointType", "")
        with self.state.lock:
            self.state.endpoints.setdefault(
                endpoint_id,
                EndpointRecord(
                    endpoint_id,
                    subnets,
                    groups,
                    created=self.state.now(),
                    interface=kind.lower() == "interface",
                ),
            )
        return self._rewrite_endpoints(reply, root, ns, [endpoint])

    def _rewrite_endpoints(
        self,
        reply: Reply,
        root: ET.Element,
        ns: str,
        items: list[ET.Element],
        prepared: Prepared | None = None,
        container: ET.Element | None = None,
    ) -> Reply:
        changed = False
        for item in items:
            state = self.state.endpoint_state(_text(item, ns, "vpcEndpointId") or "")
            current = (_text(item, ns, "state") or "").lower()
            if state is not None and current in ("available", "pending", "deleting", "deleted"):
                changed |= _set_text(item, ns, "state", state)
        if prepared is not None and container is not None:
            changed |= self._apply_state_filter(prepared, container, ns, "item", "state")
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    @_on_xml_answer
    def _after_describe_vpc_endpoints(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        container = root.find(_q(ns, "vpcEndpointSet"))
        if container is None:
            return reply
        items = container.findall(_q(ns, "item"))
        return self._rewrite_endpoints(reply, root, ns, items, prepared, container)

    def _after_modify_vpc_endpoint(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        """An interface endpoint moved off a subnet (or a group) no longer holds it.

        AWS deletes the endpoint's network interface in a subnet removed from it; moto keeps
        that interface (and lists it as the endpoint's), which would hold the subnet forever.
        The sandbox deletes it in moto as AWS would."""
        if not reply.ok:
            return reply
        endpoint_id = call.params.get("VpcEndpointId", "")
        removed = set(_indexed(call.params, "RemoveSubnetId"))
        with self.state.lock:
            rec = self.state.endpoints.get(endpoint_id)
            if rec is not None:
                rec.subnet_ids = (rec.subnet_ids - removed) | set(
                    _indexed(call.params, "AddSubnetId")
                )
                rec.group_ids = (
                    rec.group_ids - set(_indexed(call.params, "RemoveSecurityGroupId"))
                ) | set(_indexed(call.params, "AddSecurityGroupId"))
        if removed:
            self._delete_endpoint_interfaces(call, fetch, endpoint_id, removed)
        return reply

    def _delete_endpoint_interfaces(
        self, call: Call, fetch: Fetch, endpoint_id: str, subnets: set[str]
    ) -> None:
        described = self._ec2_describe(
            call, fetch, "DescribeVpcEndpoints", {"VpcEndpointId.1": endpoint_id}
        )
        if described is None:
            return
        root, ns = described
        interfaces = _texts(root, ns, "vpcEndpointSet/item/networkInterfaceIdSet/item")
        if not interfaces:
            return
        query = {f"NetworkInterfaceId.{i}": eni for i, eni in enumerate(interfaces, 1)}
        found = self._ec2_describe(call, fetch, "DescribeNetworkInterfaces", query)
        if found is None:
            return
        root, ns = found
        for item in root.findall(_q(ns, "networkInterfaceSet/item")):
            if _text(item, ns, "subnetId") in subnets:
                eni = _text(item, ns, "networkInterfaceId") or ""
                self._ec2_describe(
                    call, fetch, "DeleteNetworkInterface", {"NetworkInterfaceId": eni}
                )
                log.info("sandbox: %s left its subnet; its interface %s deleted", endpoint_id, eni)

    def _after_delete_vpc_endpoints(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        if reply.ok:
            unsuccessful = set()
            parsed = _parse(reply.body)
            if parsed is not None:
                root, ns = parsed
                unsuccessful = set(_texts(root, ns, "unsuccessful/item/resourceId"))
            with self.state.lock:
                now = self.state.now()
                for endpoint_id in _indexed(call.params, "VpcEndpointId"):
                    rec = self.state.endpoints.get(endpoint_id)
                    if endpoint_id not in unsuccessful and rec is not None and rec.deleted is None:
                        rec.deleted = now
        return reply

    # --- ELBv2 -------------------------------------------------------------------------------------

    def _rewrite_lb(self, member: ET.Element, ns: str) -> bool:
        arn = _text(member, ns, "LoadBalancerArn") or ""
        if _text(member, ns, "State/Code") == "active" and self.state.load_balancer_provisioning(
            arn
        ):
            return _set_text(member, ns, "State/Code", "provisioning")
        return False

    @_on_xml_answer
    def _after_create_load_balancer(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        changed = False
        for member in root.findall(_q(ns, "CreateLoadBalancerResult/LoadBalancers/member")):
            arn = _text(member, ns, "LoadBalancerArn")
            if not arn:
                continue
            subnets = set(_indexed(call.params, "Subnets.member")) | set(
                _texts(member, ns, "AvailabilityZones/member/SubnetId")
            )
            groups = set(_indexed(call.params, "SecurityGroups.member")) | set(
                _texts(member, ns, "SecurityGroups/member")
            )
            with self.state.lock:
                self.state.load_balancers.setdefault(
                    arn, LoadBalancerRecord(arn, subnets, groups, created=self.state.now())
                )
            changed |= self._rewrite_lb(member, ns)
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    @_on_xml_answer
    def _after_describe_lbs(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        changed = False
        for member in root.findall(_q(ns, "DescribeLoadBalancersResult/LoadBalancers/member")):
            changed |= self._rewrite_lb(member, ns)
        return _with_body(reply, _serialize(root, ns)) if changed else reply

    def _after_delete_load_balancer(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        arn = call.params.get("LoadBalancerArn")
        if reply.ok and arn:
            with self.state.lock:
                rec = self.state.load_balancers.get(arn)
                if rec is not None and rec.deleted is None:
                    rec.deleted = self.state.now()
        return reply

    # --- IAM -----------------------------------------------------------------------------------------

    def _record_iam(self, registry: dict[str, float], keys: Iterable[str | None]) -> None:
        with self.state.lock:
            now = self.state.now()
            for key in keys:
                if key:
                    registry[key] = now

    @_on_xml_answer
    def _after_create_role(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        self._record_iam(self.state.roles, [_text(root, ns, "CreateRoleResult/Role/Arn")])
        return reply

    @_on_xml_answer
    def _after_create_instance_profile(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch, xml: Xml
    ) -> Reply:
        root, ns = xml
        path = "CreateInstanceProfileResult/InstanceProfile"
        self._record_iam(
            self.state.instance_profiles,
            [_text(root, ns, f"{path}/InstanceProfileName"), _text(root, ns, f"{path}/Arn")],
        )
        return reply

    def _after_add_role_to_profile(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        if reply.ok:
            name = call.params.get("InstanceProfileName")
            with self.state.lock:
                arns = [
                    key
                    for key in self.state.instance_profiles
                    if key.endswith(f":instance-profile/{name}") or key.endswith(f"/{name}")
                ]
            self._record_iam(self.state.instance_profiles, [name, *arns])
        return reply

    # --- Lambda --------------------------------------------------------------------------------------

    def _before_create_function(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        role = call.json_body.get("Role") if isinstance(call.json_body, dict) else None
        if not isinstance(role, str) or not self.state.recently_created(self.state.roles, role):
            return None
        self.state.count_simulated("role_not_assumable")
        log.info("sandbox refused %s: role %s is still propagating", call.label, role)
        return Prepared(
            reply=error_reply(
                call,
                400,
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
            )
        )

    def _before_update_function(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        name = _function_name(call.path_params.get("FunctionName"))
        if self.state.function_pending(call.region, name):
            return self._refuse(
                call,
                409,
                "ResourceConflictException",
                "The operation cannot be performed at this time. The function is currently in "
                "the following state: Pending",
                f"function {name} is still Pending",
            )
        if self.state.function_updating(call.region, name):
            return self._refuse(
                call,
                409,
                "ResourceConflictException",
                "The operation cannot be performed at this time. An update is in progress for "
                f"resource: arn:aws:lambda:{call.region}:123456789012:function:{name}",
                f"function {name} is still being updated",
            )
        return None

    def _before_delete_function(self, call: Call, body: bytes, fetch: Fetch) -> Prepared | None:
        name = _function_name(call.path_params.get("FunctionName"))
        if not name or call.query_params.get("Qualifier"):
            return None
        with self.state.lock:
            if (call.region or "", name) in self.state.functions:
                return None
        # Not seen created (the sandbox started later, or was reset): ask moto which subnets
        # and security groups its network interfaces are in.
        path = call.path.rstrip("/") + "/configuration"
        reply = fetch("GET", path, b"", "application/json")
        try:
            config = json.loads(reply.body) if reply is not None and reply.ok else None
        except ValueError:
            config = None
        vpc = config.get("VpcConfig") if isinstance(config, dict) else None
        if not isinstance(vpc, dict) or not vpc.get("SubnetIds"):
            return None
        return Prepared(
            notes={"vpc": (set(vpc.get("SubnetIds") or []), set(vpc.get("SecurityGroupIds") or []))}
        )

    def _rewrite_function(self, region: str | None, config: Any) -> bool:
        if not isinstance(config, dict):
            return False
        if config.get("State", "Active") != "Active":
            return False
        name = _function_name(config.get("FunctionName"))
        if self.state.function_pending(region, name):
            config["State"] = "Pending"
            config["StateReason"] = "The function is being created."
            config["StateReasonCode"] = "Creating"
            return True
        if self.state.function_updating(region, name):
            config["LastUpdateStatus"] = "InProgress"
            config["LastUpdateStatusReason"] = "The function is being updated."
            config.pop("LastUpdateStatusReasonCode", None)
            return True
        return False

    @staticmethod
    def _json(reply: Reply) -> Any:
        try:
            return json.loads(reply.body) if reply.ok and reply.body else None
        except ValueError:
            return None

    def _after_create_function(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        config = self._json(reply)
        if not isinstance(config, dict):
            return reply
        request = call.json_body if isinstance(call.json_body, dict) else {}
        vpc = config.get("VpcConfig") or request.get("VpcConfig") or {}
        name = _function_name(config.get("FunctionName") or request.get("FunctionName"))
        if not name or not isinstance(vpc, dict) or not vpc.get("SubnetIds"):
            return reply
        with self.state.lock:
            self.state.functions[(call.region or "", name)] = FunctionRecord(
                region=call.region or "",
                name=name,
                subnet_ids=set(vpc.get("SubnetIds") or []),
                group_ids=set(vpc.get("SecurityGroupIds") or []),
                created=self.state.now(),
            )
        if self._rewrite_function(call.region, config):
            return _with_body(reply, json.dumps(config).encode())
        return reply

    def _function_updated(self, call: Call, reply: Reply, vpc: Any = None) -> Reply:
        """A configuration or code change Lambda accepted: ``InProgress`` for a while (longer
        when the VPC changed, since Lambda makes new network interfaces), shown in the answer
        itself as AWS shows it."""
        name = _function_name(call.path_params.get("FunctionName"))
        if not reply.ok or not name:
            return reply
        with self.state.lock:
            key = (call.region or "", name)
            rec = self.state.functions.get(key)
            if rec is None:
                rec = self.state.functions[key] = FunctionRecord(
                    call.region or "", name, set(), set(), created=_PAST
                )
            if isinstance(vpc, dict):
                # Lambda makes interfaces for the new subnets and groups; those it no longer uses
                # linger as a deleted function's do (eni_hold), then AWS releases them.
                subnets = set(vpc.get("SubnetIds") or rec.subnet_ids)
                groups = set(vpc.get("SecurityGroupIds") or rec.group_ids)
                left_subnets, left_groups = rec.subnet_ids - subnets, rec.group_ids - groups
                if left_subnets or left_groups:
                    self.state.released_functions.append(
                        FunctionRecord(
                            rec.region,
                            f"{name} (its previous VPC configuration)",
                            left_subnets,
                            left_groups,
                            created=_PAST,
                            deleted=self.state.now(),
                        )
                    )
                rec.subnet_ids, rec.group_ids = subnets, groups
            rec.updated = self.state.now()
            rec.update_duration = "lambda_vpc_update" if isinstance(vpc, dict) else "lambda_update"
        self.state.count_simulated("function_updating")
        config = self._json(reply)
        if self._rewrite_function(call.region, config):
            return _with_body(reply, json.dumps(config).encode())
        return reply

    def _after_update_function_configuration(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        request = call.json_body if isinstance(call.json_body, dict) else {}
        return self._function_updated(call, reply, request.get("VpcConfig"))

    def _after_update_function_code(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        return self._function_updated(call, reply)

    def _after_get_function(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        body = self._json(reply)
        if isinstance(body, dict) and self._rewrite_function(
            call.region, body.get("Configuration")
        ):
            return _with_body(reply, json.dumps(body).encode())
        return reply

    def _after_get_function_configuration(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        body = self._json(reply)
        if self._rewrite_function(call.region, body):
            return _with_body(reply, json.dumps(body).encode())
        return reply

    def _after_list_functions(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        body = self._json(reply)
        if not isinstance(body, dict) or not isinstance(body.get("Functions"), list):
            return reply
        changed = False
        for config in body["Functions"]:
            changed |= self._rewrite_function(call.region, config)
        return _with_body(reply, json.dumps(body).encode()) if changed else reply

    def _after_delete_function(
        self, call: Call, prepared: Prepared, reply: Reply, fetch: Fetch
    ) -> Reply:
        name = _function_name(call.path_params.get("FunctionName"))
        if not reply.ok or not name or call.query_params.get("Qualifier"):
            return reply
        with self.state.lock:
            rec = self.state.functions.pop((call.region or "", name), None)
            if rec is None and "vpc" in prepared.notes:
                subnets, groups = prepared.notes["vpc"]
                rec = FunctionRecord(call.region or "", name, subnets, groups, created=_PAST)
            if rec is not None:
                rec.deleted = self.state.now()
                self.state.released_functions.append(rec)
                log.info(
                    "sandbox: Lambda %s deleted; its network interfaces hold %s for %.0f s",
                    name,
                    ", ".join(sorted(rec.subnet_ids | rec.group_ids)),
                    self.state.eni_hold(),
                )
        return reply
