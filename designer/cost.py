"""Monthly cost of a planned deployment, read from the graph and a dated price file.

The estimate is computed per node of the :class:`~designer.graph.ResourceGraph` (so it prices
what will be built, not what the spec says) with the prices in
``designer/data/prices-us-east-1.json``. That file is dated and names its source; it holds
us-east-1 prices only, and estimates for other regions are approximated by them (the result
carries a ``region_note`` the UI shows). Usage that the graph cannot know (NAT traffic, Lambda
requests...) comes from :class:`Assumptions`, which the user can change.

Arithmetic is done in :class:`~decimal.Decimal` and rounded to cents only in the output, so the
total is the rounded sum of the exact items, and a comparison of two totals is not skewed by
per-item rounding. Free tiers (Lambda's, X-Ray's) are not applied: a team's account usually
spends them elsewhere already.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from designer.graph import Ref, ResourceGraph, ResourceNode
from designer.plan import LAMBDA_MEMORY_MB
from designer.spec import Issue

PRICE_FILE = Path(__file__).resolve().parent / "data" / "prices-us-east-1.json"

_CENT = Decimal("0.01")
_SECONDS_PER_HOUR = 3600
#: X-Ray's default sampling rule: the first request each second, then 5% of the rest.
_XRAY_RESERVOIR_PER_S = Decimal(1)
_XRAY_FIXED_RATE = Decimal("0.05")


@dataclass(frozen=True)
class PriceList:
    effective_date: str
    currency: str
    region: str
    source: str
    region_note: str
    hours_per_month: int
    prices: Mapping[str, Decimal]


@functools.cache
def price_list() -> PriceList:
    """The price file, read once per process (the estimate runs on every keystroke)."""
    data = json.loads(PRICE_FILE.read_text(encoding="utf-8"))
    # parse_float is not enough: ints in the file must become Decimal too.
    prices = {key: Decimal(str(value)) for key, value in data["prices"].items()}
    return PriceList(
        effective_date=data["effective_date"],
        currency=data["currency"],
        region=data["region"],
        source=data["source"],
        region_note=data["region_note"],
        hours_per_month=int(data["hours_per_month"]),
        prices=MappingProxyType(prices),
    )


@dataclass(frozen=True)
class _Bounds:
    low: float
    high: float
    integer: bool = False


#: What each assumption may be; a value outside the range is clamped to the nearest bound.
ASSUMPTION_BOUNDS: dict[str, _Bounds] = {
    "nat_gb_per_month": _Bounds(0, 1_000_000),
    "lambda_requests_per_month": _Bounds(0, 100_000_000_000, integer=True),
    # Lambda runs for at most 15 minutes.
    "lambda_avg_duration_ms": _Bounds(0, 900_000),
    # Lambda's memory range.
    "lambda_memory_mb": _Bounds(128, 10_240, integer=True),
    "endpoint_gb_per_month": _Bounds(0, 1_000_000),
    "alb_lcu": _Bounds(0, 100_000),
    "log_gb_per_month": _Bounds(0, 1_000_000),
    "secret_api_calls_per_month": _Bounds(0, 100_000_000_000, integer=True),
}


@dataclass(frozen=True)
class Assumptions:
    """Usage the graph cannot know. Defaults describe a small, steady internal workload."""

    #: Data the Lambda sends to and receives from the internet through NAT, all NATs together.
    nat_gb_per_month: float = 100
    lambda_requests_per_month: int = 1_000_000
    lambda_avg_duration_ms: float = 200
    #: The plan's MemorySize; change it here to see what a bigger function would cost.
    lambda_memory_mb: int = LAMBDA_MEMORY_MB
    #: Data through the Secrets Manager interface endpoint (small: the Lambda caches the secret).
    endpoint_gb_per_month: float = 1
    #: Average load balancer capacity units in use over the month.
    alb_lcu: float = 1
    log_gb_per_month: float = 1
    #: GetSecretValue calls: the Lambda caches the credential per execution environment, so
    #: this follows cold starts, not requests.
    secret_api_calls_per_month: int = 10_000

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: Any) -> tuple[Assumptions, list[Issue]]:
        """Assumptions from user input and field-keyed errors (:meth:`read` without its
        notes)."""
        assumptions, errors, _capped = cls.read(data)
        return assumptions, errors

    @classmethod
    def read(cls, data: Any) -> tuple[Assumptions, list[Issue], list[Issue]]:
        """Assumptions from user input (a form's strings or JSON numbers), field-keyed errors,
        and a note for each value that was capped.

        Never raises. Errors are :class:`~designer.spec.Issue` objects whose ``field`` is the
        assumption's name, like the spec's (``"assumptions"`` for an unknown name or a document
        that is not an object). A missing or null field keeps its default; a bad one (not a
        number, not finite, negative) is reported and keeps its default; a value outside
        :data:`ASSUMPTION_BOUNDS` is clamped to the nearest bound, and the note says so (code
        ``"capped"``): an estimate that quietly used another number than the one typed would
        mislead.
        """
        if data is None:
            return cls(), [], []
        if not isinstance(data, Mapping):
            return (
                cls(),
                [Issue("assumptions", "expected an object of assumption names to numbers")],
                [],
            )
        values: dict[str, Any] = {}
        errors: list[Issue] = []
        capped: list[Issue] = []
        for key, raw in data.items():
            bounds = ASSUMPTION_BOUNDS.get(key) if isinstance(key, str) else None
            if bounds is None:
                known = ", ".join(ASSUMPTION_BOUNDS)
                errors.append(
                    Issue("assumptions", f"unknown assumption {key!r}; use one of {known}")
                )
                continue
            if raw is None:  # null means "use the default", like a field left out
                continue
            name = key
            number, problem = _number(raw)
            if problem:
                errors.append(Issue(name, problem))
                continue
            clamped = min(max(number, bounds.low), bounds.high)
            if clamped != number:
                side = "largest" if number > bounds.high else "smallest"
                limit = f"{clamped:,.0f}" if clamped == int(clamped) else f"{clamped:,}"
                capped.append(
                    Issue(
                        name,
                        f"{_shown(raw)} is outside what the estimate allows; it uses the "
                        f"{side} value, {limit}",
                        code="capped",
                        params=(("limit", clamped),),
                    )
                )
            values[name] = round(clamped) if bounds.integer else clamped
        return cls(**values), errors, capped


def _shown(raw: Any) -> str:
    text = raw.strip() if isinstance(raw, str) else repr(raw)
    return text if len(text) <= 30 else text[:27] + "..."


def _number(raw: Any) -> tuple[float, str | None]:
    if isinstance(raw, bool):
        return 0.0, "enter a number, not true/false"
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an int beyond float range
            return 0.0, "enter a smaller number"
    elif isinstance(raw, str):
        text = raw.strip().replace(",", "")
        # float() reads Arabic-Indic and other Unicode digits too; a person typing a cost
        # assumption means ASCII digits, as everywhere else in Gantry.
        if not text.isascii():
            return 0.0, f"{raw!r} is not a number; enter the digits 0-9 only, e.g. 100"
        try:
            number = float(text)
        except ValueError:
            return 0.0, f"{raw!r} is not a number; enter digits only, e.g. 100"
    else:
        return 0.0, "enter a number"
    if not math.isfinite(number):
        return 0.0, "enter a finite number"
    if number < 0:
        return 0.0, f"{raw} is negative; enter 0 or more"
    return number, None


def estimate_cost(graph: ResourceGraph, assumptions: Assumptions | None = None) -> dict[str, Any]:
    """The monthly cost of ``graph``: one item per billed (or notably free) node, and the total.

    ``nat_comparison`` weighs the biggest lever, the NAT choice, from this graph alone:
    ``without_nat_monthly_usd`` is the total minus the NAT items (the NAT gateways with their
    data processing, and their Elastic IPs); for a graph without NAT, ``with_nat_monthly_usd``
    adds one NAT gateway and its address. Nothing else differs in price between the NAT
    choices: the Secrets Manager interface endpoint is in every design (the API reads its
    credential through it), so it stays on both sides. ``delta_monthly_usd`` is always
    with-NAT minus without-NAT.
    """
    a = assumptions or Assumptions()
    prices = price_list()
    p = prices.prices
    hours = Decimal(prices.hours_per_month)
    region = _region(graph)
    est = _Estimate(p, hours, a)

    nat_ids: list[str] = []
    for node in graph:
        est.node(graph, node)
        if node.type == "AWS::EC2::NatGateway":
            nat_ids.append(node.logical_id)

    total = sum((amount for _, _, amount, _ in est.items), Decimal(0))
    result: dict[str, Any] = {
        "currency": prices.currency,
        "effective_date": prices.effective_date,
        "region": region or prices.region,
        "source": prices.source,
        "hours_per_month": prices.hours_per_month,
        "items": [
            {"logical_id": lid, "label": label, "monthly_usd": _cents(amount), "detail": detail}
            for lid, label, amount, detail in est.items
        ],
        "total_monthly_usd": _cents(total),
        "assumptions": a.to_json(),
        "nat_comparison": _nat_comparison(graph, est, total, nat_ids),
    }
    if region and region != prices.region:
        result["region_note"] = (
            f"Prices are {prices.region} list prices; {region} is approximated by them and may "
            "differ by a few percent."
        )
    return result


class _Estimate:
    """Prices nodes one by one; ``items`` keeps (logical id, label, Decimal amount, detail)."""

    FREE = {
        "AWS::EC2::VPC": "vpc",
        "AWS::EC2::Subnet": "subnet",
        "AWS::EC2::RouteTable": "route_table",
        "AWS::EC2::SecurityGroup": "security_group",
        "AWS::EC2::InternetGateway": "internet_gateway",
    }

    def __init__(self, prices: Mapping[str, Decimal], hours: Decimal, a: Assumptions) -> None:
        self.p, self.hours, self.a = prices, hours, a
        self.items: list[tuple[str, str, Decimal, str]] = []

    def add(self, node: ResourceNode, amount: Decimal, detail: str, label: str = "") -> None:
        self.items.append(
            (node.logical_id, label or node.meta.get("label", node.logical_id), amount, detail)
        )

    def node(self, graph: ResourceGraph, node: ResourceNode) -> None:
        p, h, a = self.p, self.hours, self.a
        kind = node.type
        if kind in self.FREE:
            self.add(node, p[self.FREE[kind]], "no charge")
        elif kind == "AWS::EC2::NatGateway":
            gb = _dec(a.nat_gb_per_month) / max(1, len(graph.of_type(kind)))
            self.add(
                node,
                h * p["nat_gateway_hour"] + gb * p["nat_gateway_gb_processed"],
                f"{_n(h)} h × {_usd(p['nat_gateway_hour'])} + {_n(gb)} GB processed × "
                f"{_usd(p['nat_gateway_gb_processed'])}",
            )
        elif kind == "AWS::EC2::EIP":
            self.add(
                node,
                h * p["public_ipv4_hour"],
                f"{_n(h)} h × {_usd(p['public_ipv4_hour'])} (public IPv4 address)",
            )
        elif kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
            lcu = _dec(a.alb_lcu)
            self.add(
                node,
                h * p["alb_hour"] + h * lcu * p["alb_lcu_hour"],
                f"{_n(h)} h × {_usd(p['alb_hour'])} + {_n(h)} h × {_n(lcu)} LCU × "
                f"{_usd(p['alb_lcu_hour'])}",
            )
        elif kind == "AWS::EC2::VPCEndpoint" and node.properties.get("VpcEndpointType") == (
            "Interface"
        ):
            azs = Decimal(len(node.properties.get("SubnetIds", [])))
            amount, detail = _endpoint(p, h, azs, _dec(a.endpoint_gb_per_month))
            self.add(node, amount, detail)
        elif kind == "AWS::EC2::Instance":
            self.add(node, *self._instances(node.properties, Decimal(1)))
        elif kind == "AWS::AutoScaling::AutoScalingGroup":
            template = _template_data(graph, node)
            count = Decimal(node.properties.get("DesiredCapacity", node.properties["MinSize"]))
            self.add(node, *self._instances(template, count))
        elif kind == "AWS::Lambda::Function":
            self._lambda(node)
        elif kind == "AWS::SecretsManager::Secret":
            calls = _dec(a.secret_api_calls_per_month)
            self.add(
                node,
                p["secrets_manager_secret_month"]
                + calls / 10_000 * p["secrets_manager_10k_api_calls"],
                f"1 secret × {_usd(p['secrets_manager_secret_month'])} + {_n(calls)} API calls × "
                f"{_usd(p['secrets_manager_10k_api_calls'])} per 10,000",
            )
        elif kind == "AWS::Logs::LogGroup":
            self._logs(node)

    def _instances(self, props: Mapping[str, Any], count: Decimal) -> tuple[Decimal, str]:
        p, h = self.p, self.hours
        instance_type = props.get("InstanceType", "")
        key = f"ec2_{instance_type.replace('.', '_')}_hour"
        if key not in p:
            raise KeyError(f"{PRICE_FILE.name} has no price for instance type {instance_type}")
        volume_gb = sum(
            Decimal(m.get("Ebs", {}).get("VolumeSize", 0))
            for m in props.get("BlockDeviceMappings", [])
        )
        amount = count * (h * p[key] + volume_gb * p["ebs_gp3_gb_month"])
        times = f"{_n(count)} × " if count != 1 else ""
        detail = f"{times}{_n(h)} h × {_usd(p[key])} ({instance_type})"
        if volume_gb:
            detail += f" + {times}{_n(volume_gb)} GB gp3 × {_usd(p['ebs_gp3_gb_month'])}"
        return amount, detail

    def _lambda(self, node: ResourceNode) -> None:
        """Requests and compute, plus X-Ray traces when tracing is active (one item per node)."""
        p, a = self.p, self.a
        requests = _dec(a.lambda_requests_per_month)
        gb_seconds = (
            requests * _dec(a.lambda_avg_duration_ms) / 1000 * _dec(a.lambda_memory_mb) / 1024
        )
        amount = (
            requests / 1_000_000 * p["lambda_million_requests"] + gb_seconds * p["lambda_gb_second"]
        )
        detail = (
            f"{_n(requests)} requests × {_usd(p['lambda_million_requests'])} per million + "
            f"{_n(gb_seconds)} GB-s × {_usd(p['lambda_gb_second'])}"
        )
        if node.properties.get("TracingConfig", {}).get("Mode") == "Active":
            # Requests spread evenly over the month, under X-Ray's default sampling rule.
            seconds = self.hours * _SECONDS_PER_HOUR
            rate = requests / seconds
            sampled = min(rate, _XRAY_RESERVOIR_PER_S) + _XRAY_FIXED_RATE * max(
                rate - _XRAY_RESERVOIR_PER_S, Decimal(0)
            )
            traces = (sampled * seconds).to_integral_value()
            amount += traces / 1_000_000 * p["xray_million_traces_recorded"]
            detail += (
                f" + {_n(traces)} X-Ray traces × {_usd(p['xray_million_traces_recorded'])} per "
                "million (default sampling: 1/s + 5%)"
            )
        self.add(node, amount, detail + "; free tiers not applied")

    def _logs(self, node: ResourceNode) -> None:
        p = self.p
        gb = _dec(self.a.log_gb_per_month)
        amount = gb * p["cloudwatch_logs_ingested_gb"]
        detail = f"{_n(gb)} GB ingested × {_usd(p['cloudwatch_logs_ingested_gb'])}"
        retention = node.properties.get("RetentionInDays")
        if retention:
            # At steady state the group holds `retention` days of logs.
            stored = gb * Decimal(retention) * 24 / self.hours
            amount += stored * p["cloudwatch_logs_stored_gb_month"]
            detail += (
                f" + {_n(stored.quantize(_CENT))} GB stored ({retention} days) × "
                f"{_usd(p['cloudwatch_logs_stored_gb_month'])}"
            )
        else:
            detail += " (never expires: storage grows every month)"
        self.add(node, amount, detail)


def _nat_comparison(
    graph: ResourceGraph,
    est: _Estimate,
    total: Decimal,
    nat_ids: list[str],
) -> dict[str, Any]:
    p, h, a = est.p, est.hours, est.a
    vpc = graph.nodes.get("Vpc")
    # The plan puts the endpoint in every design, so the NAT choice neither adds nor removes it.
    stays = (
        " The Secrets Manager endpoint is in every design (the API reads its credential through "
        "it), so it stays."
        if graph.of_type("AWS::EC2::VPCEndpoint")
        else ""
    )
    estimated = " Estimated from this design's resources with the same assumptions."
    if nat_ids:
        eip_ids = {
            ref.logical_id
            for nat in nat_ids
            if isinstance(ref := graph[nat].properties.get("AllocationId"), Ref)
        }
        nat_cost = sum(
            (amount for lid, _, amount, _ in est.items if lid in nat_ids or lid in eip_ids),
            Decimal(0),
        )
        with_nat, without_nat = total, total - nat_cost
        choice = (vpc.meta.get("nat") if vpc else None) or (
            "single" if len(nat_ids) == 1 else "per_az"
        )
        detail = (
            f"Without NAT: minus {len(nat_ids)} NAT gateway(s) with their Elastic IPs and data "
            f"processing (${_cents(nat_cost):.2f})." + stays + estimated
        )
        result = {"choice": choice, "nat_monthly_usd": _cents(nat_cost)}
    else:
        gb = _dec(a.nat_gb_per_month)
        nat_cost = (
            h * p["nat_gateway_hour"]
            + gb * p["nat_gateway_gb_processed"]
            + h * p["public_ipv4_hour"]
        )
        with_nat, without_nat = total + nat_cost, total
        detail = (
            f"With one NAT gateway (nat: single): plus {_n(h)} h × {_usd(p['nat_gateway_hour'])} + "
            f"{_n(gb)} GB × {_usd(p['nat_gateway_gb_processed'])} + its Elastic IP {_n(h)} h × "
            f"{_usd(p['public_ipv4_hour'])} (${_cents(nat_cost):.2f})." + stays + estimated
        )
        result = {"choice": "none", "nat_monthly_usd": _cents(nat_cost), "compared_with": "single"}
    result.update(
        {
            "with_nat_monthly_usd": _cents(with_nat),
            "without_nat_monthly_usd": _cents(without_nat),
            "delta_monthly_usd": _cents(with_nat - without_nat),
            "detail": detail,
        }
    )
    return result


def _endpoint(
    p: Mapping[str, Decimal], hours: Decimal, azs: Decimal, gb: Decimal
) -> tuple[Decimal, str]:
    amount = (
        hours * azs * p["interface_endpoint_az_hour"] + gb * p["interface_endpoint_gb_processed"]
    )
    detail = (
        f"{_n(hours)} h × {_n(azs)} AZ × {_usd(p['interface_endpoint_az_hour'])} + "
        f"{_n(gb)} GB × {_usd(p['interface_endpoint_gb_processed'])}"
    )
    return amount, detail


def _template_data(graph: ResourceGraph, asg: ResourceNode) -> Mapping[str, Any]:
    ref = asg.properties.get("LaunchTemplate", {}).get("LaunchTemplateId")
    if isinstance(ref, Ref) and ref.logical_id in graph:
        return graph[ref.logical_id].properties.get("LaunchTemplateData", {})
    return {}


def _region(graph: ResourceGraph) -> str | None:
    vpc = graph.nodes.get("Vpc")
    if vpc and vpc.meta.get("region"):
        return vpc.meta["region"]
    for subnet in graph.of_type("AWS::EC2::Subnet"):
        az = subnet.properties.get("AvailabilityZone")
        if az:
            return az[:-1]
    return None


def _dec(value: float | int) -> Decimal:
    return Decimal(str(value))


def _cents(amount: Decimal) -> float:
    return float(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def _usd(price: Decimal) -> str:
    """A price: cents always shown (``$0.40``), finer prices in full (``$0.0000166667``)."""
    if price == price.quantize(_CENT):
        return f"${price:,.2f}"
    return f"${_n(price)}"


def _n(value: Decimal) -> str:
    """A number as people write it: ``1,000,000``, ``0.045``, ``33.33`` (no trailing zeros).

    Quantities of one or more show cents at most; smaller values are prices and keep their
    digits (``0.0000166667``).
    """
    if value == value.to_integral_value():
        return f"{int(value):,}"
    value = value.quantize(_CENT) if abs(value) >= 1 else round(value, 10)
    return f"{value.normalize():,f}"
