"""The topology diagram, drawn from the resource graph with the ``diagrams`` library.

The picture comes from the :class:`~designer.graph.ResourceGraph`, never from the spec, so it
shows exactly what the deployer will build. It is drawn defensively: every element stands for a
node that is in the graph, found by its CloudFormation type, its ``Ref`` properties and its
``meta``; no node is assumed to exist.

Layout, left to right (the way the Lambda's traffic flows):

* the region, the VPC (``VPC 10.0.0.0/16``), one cluster per Availability Zone and in it one
  cluster per subnet (``Lambda subnet 10.0.1.0/24``);
* a resource that lives in several subnets (the Lambda's network interfaces, the Secrets Manager
  endpoint, the ALB, the Auto Scaling group) is drawn in full in its first subnet and as a small
  copy (``ENI``, ``node``, ``instances``) in each other one, so every subnet shows what runs in
  it and each Lambda ENI shows the NAT gateway its own route table sends it to;
* NAT gateways in their public subnets, the internet gateway at the VPC edge, the regional
  services (Secrets Manager, CloudWatch Logs, IAM roles) outside the VPC on the left, next to the
  Lambda that uses them, and the internet outside AWS on the right;
* edges: Lambda -> API labelled with the port its security-group rule opens (``HTTPS tcp/443``),
  the internet path Lambda -> NAT -> IGW -> Internet dashed, Lambda -> Secrets Manager through
  the interface endpoint when there is one.

Resources that are not drawn as icons (route tables, security groups and their rules, Elastic
IPs, listeners...) are each attached to the drawn element they belong to, so a deployment state
passed in ``states`` always shows somewhere: a NAT gateway whose Elastic IP failed reads
``state: failed (NatEip1)``.

Speed: the design page renders this for every spec it has not seen before, so a render is one
``dot`` process fed through pipes (no files, no viewer, no ``chdir``) with a layout capped to few
passes, and each icon file is read and base64-encoded once per process.

Thread safety: ``diagrams`` keeps the current diagram and cluster in ``contextvars``, which are
private to each thread and each asyncio task, and has no other process-wide mutable state; each
render builds its own ``Digraph`` and runs its own ``dot``. Concurrent renders need no lock.
"""

from __future__ import annotations

import base64
import functools
import html
import re
import struct
import subprocess
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import diagrams
from diagrams import Cluster, Diagram, Edge, Node, getcluster, getdiagram, setcluster, setdiagram
from diagrams.aws.compute import EC2, EC2AutoScaling, Lambda
from diagrams.aws.management import CloudwatchLogs
from diagrams.aws.network import ALB, IGW, Endpoint, NATGateway
from diagrams.aws.security import IAMRole, SecretsManager
from diagrams.onprem.network import Internet

from designer.graph import Ref, ResourceGraph, ResourceNode

__all__ = [
    "DiagramError",
    "StateMark",
    "diagram_source",
    "render",
    "render_png",
    "render_svg",
]


@dataclass(frozen=True)
class StateMark:
    """How one resource's deployment state is drawn: its words (written into the label, so
    colour is never the only signal), the border and text colour, and its urgency (lower is
    more urgent: an element that stands for several resources shows the most urgent state
    among them). The caller decides what states there are and how they look (the deployment
    page's badges, ``pages/states.py``); the diagram only draws them."""

    text: str
    colour: str
    urgency: int = 0
    #: What the words say: a deployment's ``state``, or a change set's ``change``.
    prefix: str = "state"


#: Longest one ``dot`` run may take before the render is abandoned.
DOT_TIMEOUT_SECONDS = 10

#: Resolution of the downloadable PNG (graphviz's default of 96 makes small, blurry text).
PNG_DPI = 120

_ICON_ROOT = (Path(diagrams.__file__).resolve().parent.parent / "resources").resolve()

_FONT = "Sans-Serif"
_TEXT = "#232F3E"
_MUTED = "#5F6B7A"

# Measured on the largest graph (3 AZs, per-AZ NAT, ALB): one ``dot -Tsvg`` run takes ~22 ms,
# ~15 ms of which is starting the process, so the layout itself is cheap. ``splines=spline``
# replaces the diagrams default ``ortho``, which is slower (and grows badly with edges) and
# misplaces edge labels; nslimit/mclimit/searchsize cap dot's ranking and crossing-minimisation
# passes, which changes nothing at this size but bounds the cost of an unexpectedly big graph.
_GRAPH_ATTR = {
    "pad": "0.25",
    "splines": "spline",
    "nodesep": "0.3",
    "ranksep": "0.6",
    "fontname": _FONT,
    "fontsize": "13",
    "fontcolor": _TEXT,
    "label": "",
    "newrank": "true",
    "nslimit": "4",
    "nslimit1": "4",
    "mclimit": "0.5",
    "searchsize": "30",
}
# Every node is an HTML-like table (icon over a text label), so the node is exactly as big as
# its content and the label never overlaps the icon.
_NODE_ATTR = {
    "shape": "plain",
    "fixedsize": "false",
    "width": "0",
    "height": "0",
    "margin": "0",
    "fontname": _FONT,
    "fontsize": "11",
    "fontcolor": _TEXT,
}
# No text is smaller than 11 units, so the page's default zoom of one unit per CSS pixel
# shows every label at 11 px or more.
_EDGE_ATTR = {"color": "#7B8894", "fontname": _FONT, "fontsize": "11", "fontcolor": _TEXT}
_ICON_PT = 44
_COPY_ICON_PT = 28

_ICONS: dict[str, type[Node]] = {
    "AWS::Lambda::Function": Lambda,
    "AWS::EC2::Instance": EC2,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ALB,
    "AWS::AutoScaling::AutoScalingGroup": EC2AutoScaling,
    "AWS::EC2::NatGateway": NATGateway,
    "AWS::EC2::VPCEndpoint": Endpoint,
    "AWS::EC2::InternetGateway": IGW,
    "AWS::SecretsManager::Secret": SecretsManager,
    "AWS::Logs::LogGroup": CloudwatchLogs,
    "AWS::IAM::Role": IAMRole,
    "internet": Internet,
}
_REGIONAL = frozenset({"AWS::SecretsManager::Secret", "AWS::Logs::LogGroup", "AWS::IAM::Role"})
_COPY_DETAIL = {
    "AWS::Lambda::Function": "ENI",
    "AWS::EC2::VPCEndpoint": "ENI",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "node",
    "AWS::AutoScaling::AutoScalingGroup": "instances",
}

_VPC = "AWS::EC2::VPC"
_SUBNET = "AWS::EC2::Subnet"
_LAMBDA = "AWS::Lambda::Function"
_INSTANCE = "AWS::EC2::Instance"
_ALB = "AWS::ElasticLoadBalancingV2::LoadBalancer"
_LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
_TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"
_LAUNCH_TEMPLATE = "AWS::EC2::LaunchTemplate"
_ASG = "AWS::AutoScaling::AutoScalingGroup"
_NAT = "AWS::EC2::NatGateway"
_IGW = "AWS::EC2::InternetGateway"
_ENDPOINT = "AWS::EC2::VPCEndpoint"
_SECRETS_MANAGER = "AWS::SecretsManager::Secret"
_LOG_GROUP = "AWS::Logs::LogGroup"
_IAM_ROLE = "AWS::IAM::Role"
_ROUTE = "AWS::EC2::Route"
_EGRESS = "AWS::EC2::SecurityGroupEgress"
_INGRESS = "AWS::EC2::SecurityGroupIngress"

_ROLE_ORDER = {"public": 0, "lambda": 1, "api": 2}
_ROLE_TITLE = {"public": "Public subnet", "lambda": "Lambda subnet", "api": "API subnet"}
_PORT_NAMES = {80: "HTTP", 443: "HTTPS"}

# Subgraphs inherit their parent's attributes in DOT, so every cluster sets its pen width and
# font colour explicitly: a failed VPC must not paint its subnets red.
_CLUSTER_BASE = {"penwidth": "1", "fontcolor": _TEXT, "fontsize": "12", "style": "rounded"}
_REGION_STYLE = {
    **_CLUSTER_BASE,
    "bgcolor": "#FFFFFF",
    "pencolor": "#00A4A6",
    "style": "dashed,rounded",
}
_VPC_STYLE = {**_CLUSTER_BASE, "bgcolor": "#FFFFFF", "pencolor": "#8C4FFF"}
_AZ_STYLE = {
    **_CLUSTER_BASE,
    "bgcolor": "#FFFFFF",
    "pencolor": "#147EBA",
    "style": "dashed,rounded",
}
_PUBLIC_STYLE = {**_CLUSTER_BASE, "bgcolor": "#EEF5E8", "pencolor": "#7AA116"}
_PRIVATE_STYLE = {**_CLUSTER_BASE, "bgcolor": "#E7F2F8", "pencolor": "#147EBA"}
_SERVICES_STYLE = {**_CLUSTER_BASE, "bgcolor": "#F4F6F8", "pencolor": "#AEB6BE"}

_API_EDGE = {"color": "#232F3E", "penwidth": "1.6"}
_INTERNET_EDGE = {"style": "dashed", "color": "#8C4FFF"}
_SERVICE_EDGE = {"style": "dotted"}


def _service_label(text: str) -> dict[str, str]:
    """A label at the service's end of a dotted Lambda -> regional service edge.

    Such an edge runs from the Lambda's subnet across the VPC's and AZ's borders; graphviz puts
    a mid-edge label where the edge crosses them, on top of their titles.
    """
    return {"taillabel": text, "labeldistance": "4", "labelangle": "-20"}


_IMAGE = re.compile(r"<image\b([^>]*?)/>")
_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
_SVG_ROOT = re.compile(r"<svg\b[^>]*>")
_SIZE_ATTR = re.compile(r'\s(?:width|height)="[^"]*"')
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_AZ_REGION = re.compile(r"([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]")


class DiagramError(RuntimeError):
    """Graphviz could not draw the graph (``dot`` missing, crashed or timed out)."""


# ---------------------------------------------------------------------------------------------
# Public API


def render_svg(graph: ResourceGraph, *, states: Mapping[str, StateMark] | None = None) -> str:
    """The diagram as SVG markup that can be inlined in HTML or served as a file.

    Icons are embedded as ``data:`` URIs because the SVG is viewed on other machines, where the
    icon files do not exist; each distinct icon is embedded once (``<symbol>`` + ``<use>``) to
    keep the markup small. The XML prolog is dropped so the markup can be inlined, and the fixed
    size becomes ``width="100%"`` (``viewBox`` kept) so it scales with its container.
    """
    raw = _run_dot(diagram_source(graph, states=states), "svg").decode("utf-8")
    return _finish_svg(raw)


def render_png(graph: ResourceGraph, *, states: Mapping[str, StateMark] | None = None) -> bytes:
    """The diagram as PNG bytes, for download (graphviz reads the icons from disk itself)."""
    return _run_dot(diagram_source(graph, states=states), "png", f"-Gdpi={PNG_DPI}")


def render(
    graph: ResourceGraph,
    fmt: Literal["svg", "png"],
    *,
    states: Mapping[str, StateMark] | None = None,
) -> str | bytes:
    """Render in a format chosen at run time: ``"svg"`` gives ``str``, ``"png"`` gives ``bytes``."""
    if fmt == "svg":
        return render_svg(graph, states=states)
    if fmt == "png":
        return render_png(graph, states=states)
    raise ValueError(f"unsupported diagram format {fmt!r}; use 'svg' or 'png'")


def diagram_source(graph: ResourceGraph, *, states: Mapping[str, StateMark] | None = None) -> str:
    """The Graphviz DOT text of the diagram; deterministic, so it can be hashed or diffed."""
    return _Drawing(graph, dict(states or {})).source()


# ---------------------------------------------------------------------------------------------
# Running dot and finishing its output


def _run_dot(source: str, fmt: str, *options: str) -> bytes:
    """Lay out and render through pipes: nothing is written to disk and no viewer is opened."""
    try:
        done = subprocess.run(
            ["dot", f"-T{fmt}", *options],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DiagramError("graphviz 'dot' is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise DiagramError(f"graphviz 'dot' took longer than {DOT_TIMEOUT_SECONDS}s") from exc
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise DiagramError(f"graphviz 'dot' failed ({done.returncode}): {message}")
    return done.stdout


def _icon_path(icon: type[Node]) -> str:
    """Where a ``diagrams`` icon class keeps its PNG (what ``Node._load_icon`` computes)."""
    return str(_ICON_ROOT.parent / str(icon._icon_dir) / str(icon._icon))


@functools.cache
def _icon_symbol(path: str) -> tuple[str, str]:
    """(symbol id, ``<symbol>`` element) of one icon; cached: every render embeds the same few.

    The id is derived from the file name, so two diagrams inlined in one page that both define
    ``gantry-icon-aws-compute-lambda`` define the same picture.
    """
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(_ICON_ROOT) or resolved.suffix != ".png":
        raise DiagramError(f"refusing to embed {path}: not a diagrams icon")
    data = resolved.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DiagramError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    relative = resolved.relative_to(_ICON_ROOT).with_suffix("")
    symbol_id = "gantry-icon-" + re.sub(r"[^a-z0-9]+", "-", str(relative).lower()).strip("-")
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    symbol = (
        f'<symbol id="{symbol_id}" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet">'
        f'<image width="{width}" height="{height}" xlink:href="{uri}"/></symbol>'
    )
    return symbol_id, symbol


def _finish_svg(raw: str) -> str:
    """Make dot's SVG portable and inlinable: embedded icons, no prolog, scalable size."""
    start = raw.find("<svg")
    if start < 0:
        raise DiagramError("graphviz produced no <svg> element")
    svg = _COMMENT.sub("", raw[start:])
    symbols: dict[str, str] = {}

    def _use(match: re.Match[str]) -> str:
        attrs = dict(_ATTR.findall(match.group(1)))
        href = html.unescape(attrs.pop("xlink:href", None) or attrs.pop("href", ""))
        symbol_id, symbol = _icon_symbol(href)
        symbols[symbol_id] = symbol
        keep = "".join(f' {k}="{attrs[k]}"' for k in ("x", "y", "width", "height") if k in attrs)
        return f'<use xlink:href="#{symbol_id}"{keep}/>'

    svg = _IMAGE.sub(_use, svg)
    defs = "<defs>" + "".join(symbols[k] for k in sorted(symbols)) + "</defs>" if symbols else ""

    def _root(match: re.Match[str]) -> str:
        tag = _SIZE_ATTR.sub("", match.group(0)).replace("<svg", '<svg width="100%"', 1)
        return tag + defs

    return _SVG_ROOT.sub(_root, svg, count=1).strip() + "\n"


# ---------------------------------------------------------------------------------------------
# Reading the graph


def _refs(value: Any) -> Iterator[str]:
    """Every logical id a property value points at, in document order."""
    if isinstance(value, Ref):
        yield value.logical_id
    elif isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"]
            return
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _refs(item)


def _ref_ids(value: Any) -> list[str]:
    return list(dict.fromkeys(_refs(value)))


def _first_ref(props: dict[str, Any], key: str) -> str | None:
    ids = _ref_ids(props.get(key))
    return ids[0] if ids else None


def _subnet_role(node: ResourceNode) -> str:
    role = node.meta.get("role")
    if isinstance(role, str) and role:
        return role
    lowered = node.logical_id.lower()
    return next((r for r in _ROLE_ORDER if lowered.startswith(r)), "private")


def _subnet_az(node: ResourceNode) -> str:
    az = node.meta.get("az") or node.properties.get("AvailabilityZone")
    return az if isinstance(az, str) and az else "unknown AZ"


def _ports(protocol: Any, from_port: Any, to_port: Any = None, name: Any = None) -> str:
    """``HTTPS tcp/443``: a rule or listener in words, its well-known name first when known."""
    proto = "tcp" if protocol is None else str(protocol).lower()
    proto = {"6": "tcp", "17": "udp", "http": "tcp", "https": "tcp"}.get(proto, proto)
    if proto == "-1":
        return "all traffic"
    if from_port is None:
        return str(name) if name else proto
    to_port = from_port if to_port is None else to_port
    span = str(from_port) if from_port == to_port else f"{from_port}-{to_port}"
    if not name and from_port == to_port and isinstance(from_port, int):
        name = _PORT_NAMES.get(from_port)
    return f"{name} {proto}/{span}" if name else f"{proto}/{span}"


def _rule_label(rule: ResourceNode, name: Any = None) -> str:
    props = rule.properties
    return _ports(props.get("IpProtocol"), props.get("FromPort"), props.get("ToPort"), name)


def _sg_refs(graph: ResourceGraph, props: dict[str, Any], default: str) -> list[str]:
    """The security groups a resource's properties put it in, else the planned default."""
    value = (
        props.get("SecurityGroupIds")
        or props.get("SecurityGroups")
        or (props.get("VpcConfig") or {}).get("SecurityGroupIds")
    )
    return [i for i in _ref_ids(value) if i in graph] or [default]


def _sg_rule(graph: ResourceGraph, sources: list[str], targets: list[str]) -> ResourceNode | None:
    """The rule (egress first, then ingress) that lets ``sources`` reach ``targets``."""
    for rule in graph.of_type(_EGRESS):
        props = rule.properties
        if _first_ref(props, "GroupId") in sources and (
            _first_ref(props, "DestinationSecurityGroupId") in targets
        ):
            return rule
    for rule in graph.of_type(_INGRESS):
        props = rule.properties
        if _first_ref(props, "GroupId") in targets and (
            _first_ref(props, "SourceSecurityGroupId") in sources
        ):
            return rule
    return None


def _internet_rule(graph: ResourceGraph, sources: list[str]) -> ResourceNode | None:
    for rule in graph.of_type(_EGRESS):
        props = rule.properties
        if _first_ref(props, "GroupId") in sources and props.get("CidrIp") == "0.0.0.0/0":
            return rule
    return None


def _text(value: Any) -> str:
    """Plain label text for DOT, where a backslash starts an escape (``\\N``): double it."""
    return str(value).replace("\\", "\\\\")


def _html_label(lines: list[str], icon: str | None, size: int, colour: str | None) -> str:
    """An HTML-like label: icon above text, with a rounded border in the state colour if any."""
    text = "<BR/>".join(html.escape(line, quote=False) for line in lines)
    if colour:
        text = f'<FONT COLOR="{colour}">{text}</FONT>'
        frame = f'BORDER="2" COLOR="{colour}" STYLE="ROUNDED" CELLPADDING="3"'
    else:
        frame = 'BORDER="0" CELLPADDING="1"'
    rows = ""
    if icon:
        rows += (
            f'<TR><TD FIXEDSIZE="TRUE" WIDTH="{size}" HEIGHT="{size}">'
            f'<IMG SRC="{html.escape(icon)}" SCALE="TRUE"/></TD></TR>'
        )
    rows += f"<TR><TD>{text}</TD></TR>"
    return f'<<TABLE {frame} CELLBORDER="0" CELLSPACING="0">{rows}</TABLE>>'


# ---------------------------------------------------------------------------------------------
# The drawing


@dataclass
class _Item:
    """One icon on the page: a graph node, a copy of it in another subnet, or a stand-in."""

    dot_id: str
    kind: str  # a CloudFormation type, or "internet" / "empty"
    node: ResourceNode | None = None
    subnet: str | None = None
    primary: bool = True


@dataclass(frozen=True)
class _Link:
    """An edge, stored in rank order (``src`` left of ``dst``); ``back`` flips the arrow."""

    src: str
    dst: str
    attrs: tuple[tuple[str, str], ...]
    back: bool = False


class _QuietDiagram(Diagram):
    """A ``Diagram`` context that renders nothing on exit and restores the enclosing context.

    ``Diagram.__exit__`` writes files into the working directory and may open a viewer; the DOT
    text is piped to ``dot`` instead, which is faster and needs no directory at all.
    """

    def __enter__(self) -> _QuietDiagram:
        self._outer = (getdiagram(), getcluster())
        setcluster(None)
        setdiagram(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        setdiagram(self._outer[0])
        setcluster(self._outer[1])


class _Group(Cluster):
    """A cluster with a stable, unique DOT name (``diagrams`` derives it from the label).

    The label's lines are left-justified (``\\l``) like its first line, not centred.
    """

    def __init__(self, cluster_id: str, lines: list[str], graph_attr: dict[str, str]) -> None:
        super().__init__("\\l".join(_text(line) for line in lines) + "\\l", graph_attr=graph_attr)
        self.name = "cluster_" + cluster_id
        self.dot.name = self.name


class _Drawing:
    """Everything the diagram shows, read from one graph, then emitted through ``diagrams``."""

    def __init__(self, graph: ResourceGraph, states: dict[str, StateMark]) -> None:
        self.graph = graph
        self.states = states
        self.vpcs = graph.of_type(_VPC)
        self.subnets = graph.of_type(_SUBNET)
        self.subnet_az = {s.logical_id: _subnet_az(s) for s in self.subnets}
        self.items: dict[str, _Item] = {}
        self.copies: dict[str, dict[str | None, _Item]] = {}
        self.links: list[_Link] = []
        self.hosted: dict[str, list[str]] = {}

    def source(self) -> str:
        self._place()
        self._connect()
        self._anchor()
        self._host_undrawn()
        return self._emit()

    # -- what goes where ------------------------------------------------------------------

    def _add(self, item: _Item) -> None:
        self.items[item.dot_id] = item
        if item.node is not None:
            self.copies.setdefault(item.node.logical_id, {})[item.subnet] = item

    def _place(self) -> None:
        for node in self.graph:
            if node.type not in _ICONS:
                continue
            subnets: list[str | None] = []
            if node.type not in _REGIONAL:
                subnets = [i for i in _ref_ids(node.properties) if i in self.subnet_az]
            for index, subnet in enumerate(subnets or [None]):
                dot_id = node.logical_id if index == 0 else f"{node.logical_id}@{subnet}"
                self._add(_Item(dot_id, node.type, node, subnet, primary=index == 0))
        if self._of_kind(_IGW):
            # Graph logical ids are alphanumeric, so the "@" keeps this one from colliding.
            self._add(
                _Item("Internet" if "Internet" not in self.graph else "@internet", "internet")
            )
        occupied = {i.subnet for i in self.items.values()}
        for subnet in self.subnets:
            if subnet.logical_id not in occupied:
                dot_id = f"{subnet.logical_id}@empty"
                self._add(_Item(dot_id, "empty", None, subnet.logical_id))

    def _of_kind(self, kind: str, *, primary: bool | None = None) -> list[_Item]:
        return [
            i
            for i in self.items.values()
            if i.kind == kind and (primary is None or i.primary == primary)
        ]

    def _primary(self, logical_id: str | None) -> _Item | None:
        item = self.items.get(logical_id or "")
        return item if item is not None and item.primary else None

    def _same_az(self, item: _Item, subnet: str | None) -> bool:
        return item.subnet is not None and (
            self.subnet_az.get(item.subnet) == self.subnet_az.get(subnet or "")
        )

    def _copy_in(self, logical_id: str, subnet: str | None) -> _Item | None:
        """The copy of a resource in ``subnet``, else one in the same AZ, else its primary."""
        copies = self.copies.get(logical_id, {})
        if subnet in copies:
            return copies[subnet]
        near = [c for c in copies.values() if self._same_az(c, subnet)]
        return near[0] if near else self._primary(logical_id)

    def _listeners(self, alb: ResourceNode) -> list[ResourceNode]:
        return [
            n
            for n in self.graph.of_type(_LISTENER)
            if alb.logical_id in _ref_ids(n.properties.get("LoadBalancerArn"))
        ]

    # -- edges ----------------------------------------------------------------------------

    def _link(
        self, src: _Item | None, dst: _Item | None, *, back: bool = False, **attrs: str
    ) -> None:
        """Add an edge ``src -> dst``; with ``back`` it is ranked right to left (``dst`` first)."""
        if src is None or dst is None or src.dot_id == dst.dot_id:
            return
        if back:
            src, dst = dst, src
        self.links.append(_Link(src.dot_id, dst.dot_id, tuple(attrs.items()), back))

    def _nats_for(self, subnet: str | None) -> list[str]:
        """NAT gateways the subnet's route table sends 0.0.0.0/0 to, read from the routes."""
        if subnet is None:
            return []
        tables = [
            t.logical_id
            for t in self.graph.of_type("AWS::EC2::RouteTable")
            if subnet in (t.meta.get("subnets") or [])
        ]
        for assoc in self.graph.of_type("AWS::EC2::SubnetRouteTableAssociation"):
            if _first_ref(assoc.properties, "SubnetId") == subnet:
                tables += _ref_ids(assoc.properties.get("RouteTableId"))
        nats = [
            nat
            for route in self.graph.of_type(_ROUTE)
            if _first_ref(route.properties, "RouteTableId") in tables
            for nat in _ref_ids(route.properties.get("NatGatewayId"))
        ]
        return [n for n in dict.fromkeys(nats) if self._primary(n)]

    def _api_entry(self) -> _Item | None:
        for kind in (_ALB, _INSTANCE, _ASG):
            found = self._of_kind(kind, primary=True)
            if found:
                return found[0]
        return None

    def _api_label(self, lam: ResourceNode, api: ResourceNode) -> str:
        """Protocol and port the Lambda reaches the API on, from the rules (or the listener)."""
        graph = self.graph
        listeners = self._listeners(api) if api.type == _ALB else []
        protocol = listeners[0].properties.get("Protocol") if listeners else None
        rule = _sg_rule(
            graph,
            _sg_refs(graph, lam.properties, "LambdaSecurityGroup"),
            _sg_refs(graph, api.properties, "ApiSecurityGroup"),
        )
        if rule is None and "LambdaToApiEgress" in graph:
            rule = graph["LambdaToApiEgress"]
        if rule is not None:
            return _rule_label(rule, protocol)
        if listeners:
            props = listeners[0].properties
            return _ports(None, props.get("Port"), None, props.get("Protocol"))
        return "calls the API"

    def _target_label(self, alb: ResourceNode, asg: ResourceNode) -> str:
        """Protocol and port the ALB reaches its instances on (rules, else the target group)."""
        graph = self.graph
        refs = [graph.nodes[i] for i in _ref_ids(asg.properties) if i in graph]
        template = next((n for n in refs if n.type == _LAUNCH_TEMPLATE), None)
        data = (template.properties.get("LaunchTemplateData") or {}) if template else {}
        groups = [n for n in refs if n.type == _TARGET_GROUP] or graph.of_type(_TARGET_GROUP)
        protocol = groups[0].properties.get("Protocol") if groups else None
        rule = _sg_rule(
            graph,
            _sg_refs(graph, alb.properties, "ApiSecurityGroup"),
            _sg_refs(graph, data, "ApiInstanceSecurityGroup"),
        )
        if rule is not None:
            return _rule_label(rule, protocol)
        if groups:
            return _ports(None, groups[0].properties.get("Port"), None, protocol)
        return "targets"

    def _connect(self) -> None:
        api = self._api_entry()
        nats = self._of_kind(_NAT, primary=True)
        endpoints = self._of_kind(_ENDPOINT, primary=True)
        secrets = self._of_kind(_SECRETS_MANAGER)
        routes_known = any("NatGatewayId" in r.properties for r in self.graph.of_type(_ROUTE))
        # Regional services sit left of the Lambda (edges ranked backwards); with an endpoint in
        # between, the role and logs skip a column so all services line up.
        service_gap = "2" if endpoints else "1"
        for lam in self._of_kind(_LAMBDA):
            assert lam.node is not None
            first = lam.primary
            sgs = _sg_refs(self.graph, lam.node.properties, "LambdaSecurityGroup")
            if api is not None and api.node is not None:
                label = {"label": self._api_label(lam.node, api.node)} if first else {}
                target = self._copy_in(api.node.logical_id, lam.subnet)
                self._link(lam, target, **_API_EDGE, **label)
            # The internet path follows this subnet's own default route, so per-AZ NAT shows as
            # such; only a graph that models no NAT routes at all gets the AZ's NAT assumed.
            targets = self._nats_for(lam.subnet)
            if not targets and not routes_known and nats:
                near = [n for n in nats if self._same_az(n, lam.subnet)]
                targets = [(near or nats)[0].dot_id]
            for nat in targets:
                label = {}
                if first:
                    rule = _internet_rule(self.graph, sgs)
                    label = {"label": "0.0.0.0/0" + (f" {_rule_label(rule)}" if rule else "")}
                self._link(lam, self._primary(nat), **_INTERNET_EDGE, **label)
            for endpoint in endpoints:
                assert endpoint.node is not None
                label = {}
                if first:
                    props = endpoint.node.properties
                    target_sgs = _sg_refs(self.graph, props, "EndpointSecurityGroup")
                    rule = _sg_rule(self.graph, sgs, target_sgs)
                    label = {"label": _rule_label(rule)} if rule else {}
                ep = self._copy_in(endpoint.node.logical_id, lam.subnet)
                self._link(lam, ep, back=True, **label)
            if not first:
                continue
            if not endpoints:
                via = " via NAT" if nats else ""
                for secret in secrets:
                    self._link(lam, secret, back=True, label="GetSecretValue" + via)
            for log in self._of_kind(_LOG_GROUP):
                self._link(
                    lam,
                    log,
                    back=True,
                    minlen=service_gap,
                    **_service_label("logs"),
                    **_SERVICE_EDGE,
                )
            roles = [r for r in _ref_ids(lam.node.properties.get("Role")) if self._primary(r)]
            for role in roles or [r.dot_id for r in self._of_kind(_IAM_ROLE)]:
                self._link(
                    lam,
                    self.items[role],
                    back=True,
                    minlen=service_gap,
                    **_service_label("assumes"),
                    **_SERVICE_EDGE,
                )
        for endpoint in endpoints:
            for secret in secrets:
                self._link(endpoint, secret, back=True, label="GetSecretValue")
        if api is not None and api.kind == _ALB and api.node is not None:
            for asg in self._of_kind(_ASG, primary=True):
                assert asg.node is not None
                self._link(api, asg, label=self._target_label(api.node, asg.node), **_API_EDGE)
        internet = next(iter(self._of_kind("internet")), None)
        for igw in self._of_kind(_IGW):
            for nat in nats:
                self._link(nat, igw, **_INTERNET_EDGE)
            self._link(igw, internet, **_INTERNET_EDGE)

    def _anchor(self) -> None:
        """Invisible edges that put edge-less copies and stand-ins in their subnet's column.

        dot puts a node with no incoming edge in the first column, so an Auto Scaling copy in
        the second AZ would sit left of the Lambda; each copy gets the incoming edges of its
        primary (from the matching copy of the source), each empty subnet one from its AZ's
        Lambda.
        """
        incoming = {link.dst for link in self.links}
        for item in list(self.items.values()):
            if item.dot_id in incoming:
                continue
            sources: list[_Item | None] = []
            if not item.primary and item.node is not None:
                for link in self.links:
                    src = self.items[link.src]
                    if link.dst == item.node.logical_id and src.node is not None:
                        sources.append(self._copy_in(src.node.logical_id, item.subnet))
            elif (
                item.kind == "empty"
                and item.subnet is not None
                and (_subnet_role(self.graph[item.subnet]) != "lambda")
            ):
                sources = [i for i in self._of_kind(_LAMBDA) if self._same_az(i, item.subnet)]
            for src in dict.fromkeys(s.dot_id for s in sources if s is not None):
                if src != item.dot_id:
                    self.links.append(_Link(src, item.dot_id, (("style", "invis"),)))

    # -- states ---------------------------------------------------------------------------

    def _host_undrawn(self) -> None:
        """Attach every resource without an icon to the drawn element it belongs to.

        Preference: a drawn resource that refers to it (the Lambda for its security group, the
        NAT gateway for its Elastic IP), else one it refers to (a policy's role, a route's NAT,
        an association's subnet), else the host of a resource it refers to (a rule goes with
        its group), else the host of one that refers to it (a certificate with its listener).
        """
        graph = self.graph
        icons = {i.node.logical_id for i in self.items.values() if i.node is not None}
        clusters = {n.logical_id for n in [*self.vpcs, *self.subnets]}
        drawn = icons | clusters
        refs = {n.logical_id: [i for i in _ref_ids(n.properties) if i in graph] for n in graph}
        referrers: dict[str, list[str]] = {}
        for lid, targets in refs.items():
            for target in targets:
                referrers.setdefault(target, []).append(lid)

        def host(lid: str, seen: frozenset[str]) -> str | None:
            if lid in drawn:
                return lid
            queue, visited = deque([lid]), {lid}
            while queue:
                for other in referrers.get(queue.popleft(), []):
                    if other in drawn:
                        return other
                    if other not in visited:
                        visited.add(other)
                        queue.append(other)
            for pool in (icons, clusters):
                found = next((t for t in refs[lid] if t in pool), None)
                if found is not None:
                    return found
            seen = seen | {lid}
            for other in [*refs[lid], *referrers.get(lid, [])]:
                if other not in seen:
                    found = host(other, seen)
                    if found is not None:
                        return found
            return None

        for node in graph:
            if node.logical_id not in drawn:
                owner = host(node.logical_id, frozenset())
                if owner is not None:
                    self.hosted.setdefault(owner, []).append(node.logical_id)

    def _state(self, logical_id: str) -> tuple[str, str] | None:
        """(colour, text) of the most urgent state among an element and what it hosts."""
        seen = [
            (self.states[lid], lid)
            for lid in [logical_id, *self.hosted.get(logical_id, [])]
            if lid in self.states
        ]
        if not seen:
            return None
        mark, owner = min(seen, key=lambda s: s[0].urgency)
        text = f"{mark.prefix}: {mark.text}" + ("" if owner == logical_id else f" ({owner})")
        return mark.colour, text

    # -- labels ---------------------------------------------------------------------------

    def _detail(self, node: ResourceNode) -> str:
        """The short line under a logical id, from the node's own properties where they say it."""
        props = node.properties
        kind = node.type
        if kind == _LAMBDA and props.get("Runtime"):
            return f"Lambda, {props['Runtime']}"
        if kind == _INSTANCE and props.get("InstanceType"):
            return f"EC2 API, {props['InstanceType']}"
        if kind == _ALB:
            listeners = self._listeners(node)
            scheme = props.get("Scheme", "internal")
            if listeners:
                lp = listeners[0].properties
                return f"{scheme} ALB, {_ports(None, lp.get('Port'), None, lp.get('Protocol'))}"
            return f"{scheme} ALB"
        if kind == _ASG and props.get("MinSize") is not None:
            return f"Auto Scaling {props['MinSize']}-{props.get('MaxSize', '?')}"
        if kind == _NAT:
            eips = [i for i in _ref_ids(props.get("AllocationId")) if i in self.graph]
            return "NAT gateway" + (f" + {eips[0]}" if eips else "")
        if kind == _ENDPOINT and props.get("ServiceName"):
            return f"{str(props['ServiceName']).rsplit('.', 1)[-1]} endpoint"
        if kind == _LOG_GROUP and props.get("RetentionInDays"):
            return f"log group, {props['RetentionInDays']} days"
        label = node.meta.get("label")
        if isinstance(label, str) and label:
            return label
        return kind.rsplit("::", 1)[-1]

    def _node_attrs(self, item: _Item) -> dict[str, str]:
        """The HTML label of one item: icon, logical id, detail line, state."""
        if item.kind == "empty":
            return {"label": _html_label(["(no resources)"], None, 0, None), "fontcolor": _MUTED}
        icon = _icon_path(_ICONS[item.kind])
        if item.node is None:
            return {"label": _html_label(["Internet"], icon, _ICON_PT, None)}
        node = item.node
        detail = self._detail(node) if item.primary else _COPY_DETAIL.get(node.type, "")
        lines = [node.logical_id, detail] if detail else [node.logical_id]
        state = self._state(node.logical_id)
        colour = None
        if state is not None:
            colour, text = state
            lines.append(text)
        size = _ICON_PT if item.primary else _COPY_ICON_PT
        return {"label": _html_label(lines, icon, size, colour)}

    def _cluster_style(
        self, logical_id: str, base: dict[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """Cluster attributes and extra label lines for the state of the VPC or a subnet."""
        state = self._state(logical_id)
        if state is None:
            return base, []
        colour, text = state
        return {**base, "pencolor": colour, "penwidth": "2.5", "fontcolor": colour}, [text]

    # -- emitting -------------------------------------------------------------------------

    def _emit_items(self, items: list[_Item], nodes: dict[str, Node]) -> None:
        for item in items:
            nodes[item.dot_id] = Node(nodeid=item.dot_id, **self._node_attrs(item))

    def _subnet_key(self, subnet: ResourceNode) -> tuple[int, int, str]:
        index = subnet.meta.get("index")
        return (
            _ROLE_ORDER.get(_subnet_role(subnet), len(_ROLE_ORDER)),
            index if isinstance(index, int) else 0,
            subnet.logical_id,
        )

    def _emit_azs(self, subnets: list[ResourceNode], nodes: dict[str, Node], prefix: str) -> None:
        by_subnet: dict[str | None, list[_Item]] = {}
        for item in self.items.values():
            by_subnet.setdefault(item.subnet, []).append(item)
        for n, az in enumerate(
            sorted({self.subnet_az[s.logical_id] for s in subnets}, reverse=True)
        ):
            with _Group(f"{prefix}_az{n}", [f"Availability Zone {az}"], _AZ_STYLE):
                in_az = [s for s in subnets if self.subnet_az[s.logical_id] == az]
                for subnet in sorted(in_az, key=self._subnet_key, reverse=True):
                    role = _subnet_role(subnet)
                    base = _PUBLIC_STYLE if role == "public" else _PRIVATE_STYLE
                    style, state = self._cluster_style(subnet.logical_id, base)
                    title = _ROLE_TITLE.get(role, f"{role.capitalize()} subnet")
                    cidr = subnet.properties.get("CidrBlock", "")
                    lines = [f"{title} {cidr}".strip(), subnet.logical_id, *state]
                    with _Group(subnet.logical_id, lines, style):
                        self._emit_items(by_subnet.get(subnet.logical_id, []), nodes)

    def _emit(self) -> str:
        region = self._region()
        unplaced = [i for i in self.items.values() if i.subnet is None]
        vpc_level = [i for i in unplaced if i.kind not in _REGIONAL and i.kind != "internet"]
        regional = [i for i in unplaced if i.kind in _REGIONAL]
        vpc_of = self._vpc_of_subnets()
        nodes: dict[str, Node] = {}
        with _QuietDiagram(
            "Gantry topology",
            show=False,
            direction="LR",
            curvestyle="curved",
            graph_attr=_GRAPH_ATTR,
            node_attr=_NODE_ATTR,
            edge_attr=_EDGE_ATTR,
        ) as drawing:
            title = f"Region {region}" if region else "AWS region"
            with _Group("region", [title], _REGION_STYLE):
                if regional:
                    label = "Regional services (outside the VPC)"
                    with _Group("regional", [label], _SERVICES_STYLE):
                        self._emit_items(regional, nodes)
                for v, vpc in enumerate(self.vpcs):
                    subnets = [s for s in self.subnets if vpc_of[s.logical_id] is vpc]
                    style, state = self._cluster_style(vpc.logical_id, _VPC_STYLE)
                    cidr = vpc.properties.get("CidrBlock", "")
                    with _Group(vpc.logical_id, [f"VPC {cidr}".strip(), *state], style):
                        self._emit_azs(subnets, nodes, f"vpc{v}")
                        if v == 0:
                            self._emit_items(vpc_level, nodes)
                if not self.vpcs:
                    self._emit_azs(self.subnets, nodes, "novpc")
                    self._emit_items(vpc_level, nodes)
            self._emit_items(self._of_kind("internet"), nodes)
            for link in self.links:
                src, dst = nodes[link.src], nodes[link.dst]
                attrs = {**_EDGE_ATTR, **dict(link.attrs)}
                src.connect(dst, Edge(src, forward=not link.back, reverse=link.back, **attrs))
        return drawing.dot.source

    def _region(self) -> str | None:
        """The region from a node's ``meta["region"]``, else from a subnet's AZ name."""
        for node in self.graph:
            region = node.meta.get("region")
            if isinstance(region, str) and region:
                return region
        for az in sorted(set(self.subnet_az.values())):
            match = _AZ_REGION.fullmatch(az)
            if match:
                return match.group(1)
        return None

    def _vpc_of_subnets(self) -> dict[str, ResourceNode | None]:
        first = self.vpcs[0] if self.vpcs else None
        out: dict[str, ResourceNode | None] = {}
        for subnet in self.subnets:
            vpc = self.graph.nodes.get(_first_ref(subnet.properties, "VpcId") or "")
            out[subnet.logical_id] = vpc if vpc is not None and vpc.type == _VPC else first
        return out
