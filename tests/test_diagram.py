"""The topology diagram: drawn from the planned graph, portable SVG, PNG, deployment states.

Pure tests (no database): real Specs through the real planner, rendered by the real ``dot``; the
SVG is parsed as XML and checked element by element, so a label in an icon's base64 data cannot
make a test pass.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from designer.diagram import (
    DiagramError,
    diagram_source,
    render,
    render_png,
    render_svg,
)
from designer.graph import Ref, ResourceGraph, ResourceNode
from designer.plan import plan
from designer.spec import Spec
from pages.states import BY_KEY, diagram_marks
from tests.specs import ARTICLE, TWO_AZ

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
DASHED = "5,2"  # graphviz's stroke-dasharray for style=dashed


#: The largest graph the designer can make in us-east-1's usual three AZs.
LARGEST = dataclasses.replace(
    ARTICLE,
    public_subnet_cidrs=("10.0.0.0/24", "10.0.10.0/24", "10.0.20.0/24"),
    lambda_subnet_cidrs=("10.0.1.0/24", "10.0.11.0/24", "10.0.21.0/24"),
    api_subnet_cidrs=("10.0.2.0/24", "10.0.12.0/24", "10.0.22.0/24"),
    nat="per_az",
    api_kind="alb",
)

VARIANTS = [
    pytest.param(dataclasses.replace(TWO_AZ, nat=nat, api_kind=kind), id=f"{nat}-{kind}")
    for nat, kind in itertools.product(("none", "single", "per_az"), ("ec2", "alb"))
]


@pytest.fixture(scope="module")
def svgs() -> dict[Spec, str]:
    """One render per spec for the whole module: the tests only read it."""
    return {}


def svg_of(cache: dict[Spec, str], spec: Spec) -> str:
    if spec not in cache:
        cache[spec] = render_svg(plan(spec))
    return cache[spec]


def parse(svg: str) -> ET.Element:
    """Parse our own renderer's output (trusted input, hence no defusedxml)."""
    return ET.fromstring(svg)  # noqa: S314


def texts(root: ET.Element) -> list[str]:
    """Every piece of visible text and every tooltip title; never image data."""
    return [
        (el.text or "").strip()
        for el in root.iter()
        if el.tag in (f"{SVG}text", f"{SVG}title") and (el.text or "").strip()
    ]


def groups(root: ET.Element, cls: str) -> dict[str, ET.Element]:
    """``<g class=cls>`` elements by their ``<title>`` (node id, ``a->b`` or cluster name)."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == cls:
            title = g.find(f"{SVG}title")
            if title is not None and title.text:
                out[title.text] = g
    return out


def edge(root: ET.Element, a: str, b: str) -> ET.Element:
    """The edge between two nodes, whichever way dot ranked it."""
    edges = groups(root, "edge")
    found = edges.get(f"{a}->{b}") or edges.get(f"{b}->{a}")
    assert found is not None, f"no edge between {a} and {b}; edges: {sorted(edges)}"
    return found


def edge_text(el: ET.Element) -> str:
    return " ".join((t.text or "") for t in el.iter(f"{SVG}text"))


def is_dashed(el: ET.Element) -> bool:
    path = el.find(f"{SVG}path")
    return path is not None and path.get("stroke-dasharray") == DASHED


# --- what the picture shows -----------------------------------------------------------------


@pytest.mark.parametrize("spec", VARIANTS)
def test_svg_shows_the_vpc_and_every_subnet_cidr_of_the_graph(svgs, spec):
    graph = plan(spec)
    words = texts(parse(svg_of(svgs, spec)))
    assert "VPC 10.0.0.0/16" in words
    subnets = graph.of_type("AWS::EC2::Subnet")
    assert subnets
    for subnet in subnets:
        cidr = subnet.properties["CidrBlock"]
        assert any(cidr in w for w in words), f"{subnet.logical_id} {cidr} not drawn"
        assert subnet.logical_id in words
    for az in {s.meta["az"] for s in subnets}:
        assert f"Availability Zone {az}" in words


@pytest.mark.parametrize("spec", VARIANTS)
def test_lambda_to_api_edge_is_labelled_with_the_rule_port(svgs, spec):
    root = parse(svg_of(svgs, spec))
    api = "ApiLoadBalancer" if spec.api_kind == "alb" else "ApiInstance"
    assert edge_text(edge(root, "LambdaFunction", api)) == "HTTPS tcp/443"


@pytest.mark.parametrize("kind", ["ec2", "alb"])
def test_api_edge_port_comes_from_the_graph_not_a_default(kind):
    spec = dataclasses.replace(TWO_AZ, api_port=8443, api_kind=kind)
    root = parse(render_svg(plan(spec)))
    api = "ApiLoadBalancer" if kind == "alb" else "ApiInstance"
    label = edge_text(edge(root, "LambdaFunction", api))
    # The ALB listener says HTTPS; a bare instance port has no well-known name.
    assert label == ("HTTPS tcp/8443" if kind == "alb" else "tcp/8443")
    assert "443" not in label.replace("8443", "")


@pytest.mark.parametrize("spec", [v for v in VARIANTS if v.values[0].nat != "none"])
def test_internet_path_is_dashed_lambda_nat_igw_internet(svgs, spec):
    graph = plan(spec)
    root = parse(svg_of(svgs, spec))
    nats = [n.logical_id for n in graph.of_type("AWS::EC2::NatGateway")]
    assert nats
    first = edge(root, "LambdaFunction", "NatGateway1")
    assert is_dashed(first)
    assert "0.0.0.0/0" in edge_text(first)
    for nat in nats:
        assert is_dashed(edge(root, nat, "InternetGateway"))
    assert is_dashed(edge(root, "InternetGateway", "Internet"))
    # Each Lambda ENI follows its own route table: per-AZ NAT in its AZ, else the one NAT.
    second_nat = "NatGateway2" if spec.nat == "per_az" else "NatGateway1"
    assert is_dashed(edge(root, "LambdaFunction@LambdaSubnet2", second_nat))
    # With private DNS the secret is read through the endpoint even with NAT, never via NAT.
    assert not [w for w in texts(root) if "via NAT" in w]
    assert edge_text(edge(root, "LambdaFunction", "SecretsManagerEndpoint")) == "HTTPS tcp/443"
    assert edge(root, "SecretsManagerEndpoint", "ApiSecret") is not None


@pytest.mark.parametrize("spec", [v for v in VARIANTS if v.values[0].nat == "none"])
def test_without_nat_there_is_no_nat_and_secrets_go_through_the_endpoint(svgs, spec):
    root = parse(svg_of(svgs, spec))
    words = texts(root)
    assert not [w for w in words if "NAT" in w.upper()], "NAT drawn for nat=none"
    assert not [w for w in words if "InternetGateway" in w or w == "Internet"]
    assert not any(is_dashed(e) for e in groups(root, "edge").values())
    assert edge_text(edge(root, "LambdaFunction", "SecretsManagerEndpoint")) == "HTTPS tcp/443"
    assert edge(root, "SecretsManagerEndpoint", "ApiSecret") is not None
    # The endpoint has an ENI in every Lambda subnet, and each Lambda ENI uses its own.
    assert edge(root, "LambdaFunction@LambdaSubnet2", "SecretsManagerEndpoint@LambdaSubnet2")


@pytest.mark.parametrize("spec", VARIANTS)
def test_api_is_an_alb_with_its_auto_scaling_group_or_one_instance(svgs, spec):
    svg = svg_of(svgs, spec)
    nodes = groups(parse(svg), "node")
    if spec.api_kind == "alb":
        assert {"ApiLoadBalancer", "ApiAutoScalingGroup"} <= set(nodes)
        assert "ApiLoadBalancer@ApiSubnet2" in nodes
        assert "ApiInstance" not in nodes
        assert 'id="gantry-icon-aws-network-elb-application-load-balancer"' in svg
        assert 'id="gantry-icon-aws-compute-ec2-auto-scaling"' in svg
        assert edge_text(edge(parse(svg), "ApiLoadBalancer", "ApiAutoScalingGroup"))
    else:
        assert "ApiInstance" in nodes
        assert not [n for n in nodes if n.startswith(("ApiLoadBalancer", "ApiAutoScaling"))]
        assert "elb-application-load-balancer" not in svg


def test_regional_services_sit_outside_the_vpc(svgs):
    root = parse(svg_of(svgs, ARTICLE))
    clusters = groups(root, "cluster")
    assert {"cluster_Vpc", "cluster_regional", "cluster_LambdaSubnet1"} <= set(clusters)
    words = texts(root)
    for lid in ("ApiSecret", "LambdaRole", "LambdaLogGroup"):
        assert lid in words
    assert "Regional services (outside the VPC)" in words


# --- a portable, inlinable SVG --------------------------------------------------------------


@pytest.mark.parametrize("spec", [ARTICLE, LARGEST], ids=["article", "largest"])
def test_icons_are_embedded_and_no_local_path_remains(svgs, spec):
    svg = svg_of(svgs, spec)
    assert "/site-packages/" not in svg
    assert '.png"' not in svg
    assert "file:" not in svg
    root = parse(svg)
    images = list(root.iter(f"{SVG}image"))
    assert images
    for image in images:
        href = image.get(XLINK_HREF) or image.get("href") or ""
        assert href.startswith("data:image/png;base64,")
    symbols = {s.get("id") for s in root.iter(f"{SVG}symbol")}
    uses = list(root.iter(f"{SVG}use"))
    assert len(uses) >= len(symbols) > 0
    for use in uses:
        assert use.get(XLINK_HREF, "").removeprefix("#") in symbols


def test_each_icon_is_embedded_once(svgs):
    svg = svg_of(svgs, LARGEST)
    lambda_uses = svg.count('xlink:href="#gantry-icon-aws-compute-lambda"')
    assert lambda_uses == 3  # one Lambda ENI per Lambda subnet
    assert svg.count('id="gantry-icon-aws-compute-lambda"') == 1


def test_svg_can_be_inlined_and_scales(svgs):
    svg = svg_of(svgs, ARTICLE)
    assert svg.startswith("<svg")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<!--" not in svg
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "100%"
    assert root.get("height") is None
    assert re.fullmatch(r"[\d.]+ [\d.]+ [\d.]+ [\d.]+", root.get("viewBox", ""))


def test_same_graph_gives_byte_identical_svg():
    first = render_svg(plan(LARGEST))
    second = render_svg(plan(LARGEST))
    assert first == second
    assert diagram_source(plan(LARGEST)) == diagram_source(plan(LARGEST))
    assert render_svg(plan(ARTICLE)) != first


def test_png_for_download():
    png = render_png(plan(ARTICLE))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


def test_render_picks_the_format():
    graph = plan(ARTICLE)
    assert render(graph, "svg") == render_svg(graph)
    assert render(graph, "png")[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="svg"):
        render(graph, "pdf")  # type: ignore[arg-type]


def test_rendering_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = plan(TWO_AZ)
    render_svg(graph)
    render_png(graph)
    assert list(tmp_path.iterdir()) == []


def test_missing_dot_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DiagramError, match="not installed"):
        render_svg(plan(ARTICLE))


# --- deployment states ----------------------------------------------------------------------


def node_text(root: ET.Element, node_id: str) -> str:
    return " ".join(t.text or "" for t in groups(root, "node")[node_id].iter(f"{SVG}text"))


def test_failed_node_is_coloured_and_says_so():
    graph = plan(TWO_AZ)
    plain = render_svg(graph)
    svg = render_svg(
        graph, states=diagram_marks({"NatGateway1": "failed", "LambdaFunction": "ready"})
    )
    red, green = BY_KEY["failed"].colour.lower(), BY_KEY["ready"].colour.lower()
    assert red not in plain.lower()
    root = parse(svg)
    nat = groups(root, "node")["NatGateway1"]
    assert "state: failed" in node_text(root, "NatGateway1")
    assert {t.get("fill") for t in nat.iter(f"{SVG}text")} == {red}
    assert any(p.get("stroke") == red for p in nat.iter(f"{SVG}path"))
    assert "state: ready" in node_text(root, "LambdaFunction")
    # Every copy of the Lambda (its ENI in the second subnet) shows the function's state.
    assert "state: ready" in node_text(root, "LambdaFunction@LambdaSubnet2")
    assert green in svg.lower()


def test_an_undrawn_resource_shows_its_state_on_its_owner():
    graph = plan(TWO_AZ)
    root = parse(
        render_svg(graph, states=diagram_marks({"NatEip1": "failed", "NatGateway1": "ready"}))
    )
    assert "state: failed (NatEip1)" in node_text(root, "NatGateway1")
    root = parse(render_svg(graph, states=diagram_marks({"LambdaToApiEgress": "creating"})))
    assert "state: creating (LambdaToApiEgress)" in node_text(root, "LambdaFunction")


def test_subnet_and_vpc_states_colour_their_clusters():
    graph = plan(TWO_AZ)
    root = parse(
        render_svg(graph, states=diagram_marks({"ApiSubnet2": "deleting", "Vpc": "ready"}))
    )
    clusters = groups(root, "cluster")
    subnet = clusters["cluster_ApiSubnet2"]
    orange = BY_KEY["deleting"].colour.lower()
    assert any(p.get("stroke") == orange for p in subnet.iter(f"{SVG}path"))
    assert "state: deleting" in [t.text for t in subnet.iter(f"{SVG}text")]
    # The VPC's colour is not inherited by the clusters inside it.
    green = BY_KEY["ready"].colour.lower()
    az = clusters["cluster_vpc0_az0"]
    assert all(p.get("stroke") != green for p in az.iter(f"{SVG}path"))


@pytest.mark.parametrize("spec", VARIANTS)
def test_every_resource_state_shows_somewhere(spec):
    graph = plan(spec)
    for node in graph:
        source = diagram_source(graph, states=diagram_marks({node.logical_id: "failed"}))
        assert "state: failed" in source, f"{node.logical_id} ({node.type}) has no place"


# --- defensive drawing and concurrency ------------------------------------------------------


def test_a_partial_graph_draws_what_is_there():
    graph = ResourceGraph()
    graph.add(ResourceNode("Vpc", "AWS::EC2::VPC", {"CidrBlock": "10.9.0.0/16"}))
    graph.add(
        ResourceNode(
            "LambdaSubnet1",
            "AWS::EC2::Subnet",
            {"VpcId": Ref("Vpc"), "CidrBlock": "10.9.1.0/24", "AvailabilityZone": "eu-west-1b"},
        )
    )
    graph.add(
        ResourceNode(
            "LambdaFunction",
            "AWS::Lambda::Function",
            {"VpcConfig": {"SubnetIds": [Ref("LambdaSubnet1")]}},
        )
    )
    root = parse(render_svg(graph))
    words = texts(root)
    assert {"VPC 10.9.0.0/16", "Lambda subnet 10.9.1.0/24", "Region eu-west-1"} <= set(words)
    assert "LambdaFunction" in groups(root, "node")
    assert not groups(root, "edge")


def test_an_empty_graph_is_an_empty_picture():
    root = parse(render_svg(ResourceGraph()))
    assert root.tag == f"{SVG}svg"
    assert not groups(root, "node")


def test_concurrent_renders_match_serial_ones():
    specs = [v.values[0] for v in VARIANTS]
    graphs = [plan(s) for s in specs]
    serial = [render_svg(g) for g in graphs]
    start = threading.Barrier(6, timeout=60)

    def one(i: int) -> str:
        start.wait()
        return render_svg(graphs[i % len(graphs)])

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(18)))
    assert results == [serial[i % len(graphs)] for i in range(18)]


def _text_boxes(svg: str) -> list[tuple[str, float, float, float, float]]:
    """Every text line of the SVG with its box (left, top, right, bottom), from its position,
    anchor and font size; a character is taken as 0.6 em wide, a line as 1 em tall."""
    boxes = []
    for el in parse(svg).iter(f"{SVG}text"):
        text = "".join(el.itertext())
        size = float(el.get("font-size", "14"))
        width = 0.6 * size * len(text)
        x, y = float(el.get("x")), float(el.get("y"))
        left = {"start": x, "middle": x - width / 2, "end": x - width}[el.get("text-anchor")]
        boxes.append((text, left, y - 0.8 * size, left + width, y + 0.2 * size))
    return boxes


@pytest.mark.parametrize("spec", [*VARIANTS, pytest.param(LARGEST, id="largest")])
def test_edge_labels_do_not_overlap_other_text(svgs, spec):
    """An edge label drawn over a cluster's title (the role edge's "assumes" once sat on the
    Lambda subnet's name) makes both unreadable."""
    edge_labels = {"assumes", "logs", "GetSecretValue"}
    boxes = _text_boxes(svg_of(svgs, spec))
    for label in [b for b in boxes if b[0] in edge_labels]:
        for other in boxes:
            if other is label:
                continue
            apart = (
                label[3] <= other[1]
                or other[3] <= label[1]
                or label[4] <= other[2]
                or other[4] <= label[2]
            )
            assert apart, f"{label[0]!r} overlaps {other[0]!r}"
