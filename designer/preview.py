"""Everything a user sees before deploying, computed from the plan's graph.

``design_preview`` is what the design page calls on every (debounced) keystroke, so it is cached
by the hash of the normalised spec and the cost assumptions: a spec seen before is a cache hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import asdict
from typing import Any

from django.core.cache import cache
from django.template.loader import render_to_string
from redis.exceptions import RedisError

from designer.cost import Assumptions, estimate_cost
from designer.diagram import render_svg
from designer.graph import ResourceGraph
from designer.plan import plan
from designer.spec import Issue, Spec, validate_spec
from designer.tables import route_tables, security_group_rules
from designer.wording import choice_words, page_issues

logger = logging.getLogger(__name__)

#: Bump when the preview's output changes shape, so stale cache entries are never served.
PREVIEW_VERSION = "4"


def plan_document(*, spec: Spec, assumptions: Assumptions | None = None) -> dict[str, Any]:
    """The plan and its views as one JSON-able document (CLI `plan --json`, preview, API)."""
    graph = plan(spec)
    cost = estimate_cost(graph, assumptions or Assumptions())
    return {
        "resources": graph.to_json(),
        "route_tables": route_tables(graph),
        "security_groups": security_group_rules(graph),
        "cost": cost,
    }


def graph_summary(graph: ResourceGraph) -> str:
    """One sentence describing the topology, for captions and the diagram's text alternative."""
    roles = Counter(n.meta.get("role") for n in graph.of_type("AWS::EC2::Subnet"))
    vpc = next(iter(graph.of_type("AWS::EC2::VPC")), None)
    nats = len(graph.of_type("AWS::EC2::NatGateway"))
    api = (
        "an internal ALB with an Auto Scaling group"
        if graph.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")
        else "one EC2 instance"
    )
    parts = [
        f"VPC {vpc.properties.get('CidrBlock')}" if vpc else "VPC",
        f"Lambda in {roles['lambda']} private subnet{'s' if roles['lambda'] != 1 else ''}",
        f"API ({api}) in {roles['api']} private subnet{'s' if roles['api'] != 1 else ''}",
        f"{nats} NAT gateway{'s' if nats != 1 else ''}" if nats else "no NAT gateway",
    ]
    return ", ".join(parts) + "."


def _cache_key(spec: Spec, assumptions: Assumptions) -> str:
    blob = json.dumps(
        {"v": PREVIEW_VERSION, "spec": spec.to_json(), "assumptions": asdict(assumptions)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "preview:" + hashlib.sha256(blob.encode()).hexdigest()


#: A small per-process memo in front of Redis: the spec a user is typing into is asked for again
#: and again, and a dictionary lookup is cheaper than a network round trip. Redis stays the
#: cache shared by every web process.
_MEMO: OrderedDict[str, str] = OrderedDict()
_MEMO_SIZE = 256
_MEMO_LOCK = threading.Lock()


def _memo_get(key: str) -> str | None:
    with _MEMO_LOCK:
        value = _MEMO.get(key)
        if value is not None:
            _MEMO.move_to_end(key)
        return value


def _memo_set(key: str, value: str) -> None:
    with _MEMO_LOCK:
        _MEMO[key] = value
        _MEMO.move_to_end(key)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except RedisError:
        logger.warning("preview cache unavailable; rendering without it", exc_info=True)
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value)
    except RedisError:
        logger.warning("preview cache unavailable; result not cached", exc_info=True)


def _render_panel(spec: Spec, assumptions: Assumptions) -> str:
    graph = plan(spec)
    cost = estimate_cost(graph, assumptions)
    comparison = cost.get("nat_comparison")
    if comparison:
        comparison["delta_abs"] = abs(comparison["delta_monthly_usd"])
        comparison["choice_words"] = choice_words("nat", comparison["choice"])
    context = {
        "svg": render_svg(graph),
        "summary": graph_summary(graph),
        "route_tables": route_tables(graph),
        "security_groups": security_group_rules(graph),
        "cost": cost,
        "free_labels": [item["label"] for item in cost["items"] if not item["monthly_usd"]],
        "resources": graph.to_json(),
    }
    return render_to_string("designer/_preview.html", {"preview": context})


def design_preview(
    *,
    spec_data: Any,
    assumptions_data: Any = None,
    extra_errors: list[Issue] | None = None,
) -> dict[str, Any]:
    """Validate a spec and, when it is valid, the rendered preview panel (cached by hash).

    Returns ``{"valid", "errors", "warnings", "assumption_errors", "assumption_notes",
    "html"}``, each issue in the design form's words (``designer/wording.py``: this is what the
    design page shows); ``html`` is None when the spec is invalid so the page keeps showing the
    last valid topology. ``assumption_notes`` says which cost assumptions were capped.
    """
    result = validate_spec(spec_data)
    assumptions, assumption_errors, capped = Assumptions.read(assumptions_data or {})
    errors = [*(extra_errors or []), *result.errors]
    out: dict[str, Any] = {
        "valid": not errors,
        "errors": page_issues(errors),
        "warnings": page_issues(result.warnings),
        "assumption_errors": page_issues(assumption_errors),
        "assumption_notes": page_issues(capped),
        "html": None,
    }
    if errors or result.spec is None:
        return out
    key = _cache_key(result.spec, assumptions)
    html = _memo_get(key) or _cache_get(key)
    if html is None:
        html = _render_panel(result.spec, assumptions)
        _cache_set(key, html)
    _memo_set(key, html)
    out["html"] = html
    return out
