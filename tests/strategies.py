"""Hypothesis strategies shared by the property tests (spec validation, plan).

``valid_specs()`` builds specs that spec v1 must accept, by construction rather than by filtering:
it draws a VPC, then carves it into disjoint blocks by repeatedly halving a block, so the subnets
it hands out can never overlap or leave the VPC. Plan tests import it to get valid input.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from designer.regions import REGION_AZ_LETTERS, REGIONS
from designer.spec import API_KINDS, MAX_PREFIX, MAX_USER_TAGS, MIN_PREFIX, NAT_CHOICES

#: Address space a VPC is drawn from: the three RFC 1918 blocks, CGNAT space and anything at
#: all (public ranges are valid, only warned about).
_VPC_POOLS = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "0.0.0.0/0")
)


def special_purpose(network: ipaddress.IPv4Network) -> bool:
    """Loopback, link-local, multicast, reserved (240/4) or "this network" (0/8): no VPC.
    Told by ``ipaddress`` itself, independently of the validator's own list."""
    return (
        network.is_loopback
        or network.is_link_local
        or network.is_multicast
        or network.is_reserved
        or network.subnet_of(ipaddress.IPv4Network("0.0.0.0/8"))
    )


names = st.from_regex(r"[a-z][a-z0-9-]{2,39}", fullmatch=True)

#: Letters and digits of any script, space and the punctuation AWS allows in every service's tags.
_tag_chars = st.characters(categories=("L", "N")) | st.sampled_from(" _.:/=+-@")
tag_keys = st.text(_tag_chars, min_size=1, max_size=128).filter(
    lambda k: not k.lower().startswith(("aws:", "gantry:")) and k != "Name"
)
tag_values = st.text(_tag_chars, max_size=256)
tags = st.dictionaries(tag_keys, tag_values, max_size=MAX_USER_TAGS)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any value ``json.loads`` can return (floats include inf and nan, which it also accepts)."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


@st.composite
def _carve(draw: st.DrawFn, vpc: ipaddress.IPv4Network, count: int) -> list[str]:
    """``count`` disjoint subnets of ``vpc`` with prefixes from the VPC's own down to /28."""
    blocks = [vpc]
    target = count + draw(st.integers(0, 6))
    while len(blocks) < target:
        splittable = [i for i, b in enumerate(blocks) if b.prefixlen < MAX_PREFIX]
        if not splittable:
            break
        i = draw(st.sampled_from(splittable))
        blocks[i : i + 1] = list(blocks[i].subnets())
    chosen = draw(st.permutations(blocks))[:count]
    return [str(b) for b in chosen]


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec v1 document (plain JSON types) that :func:`validate_spec` must accept.

    Covers every region, NAT choice and API kind, one to all AZs per list, subnets of mixed sizes
    anywhere in the VPC, optional region/tags/version keys, and public subnets given with nat
    "none" (allowed, only warned about).
    """
    region = draw(st.sampled_from(REGIONS))
    azs = len(REGION_AZ_LETTERS[region])
    nat = draw(st.sampled_from(NAT_CHOICES))
    api_kind = draw(st.sampled_from(API_KINDS))
    n_lambda = draw(st.integers(1, azs))
    n_api = draw(st.integers(2 if api_kind == "alb" else 1, azs))
    n_public = draw(
        {
            "none": st.integers(0, azs),
            "single": st.integers(1, azs),
            "per_az": st.integers(n_lambda, azs),
        }[nat]
    )
    total = n_public + n_lambda + n_api
    # The VPC must hold `total` /28s: 2 ** (28 - prefix) >= total.
    vpc_prefix = draw(st.integers(MIN_PREFIX, MAX_PREFIX - (total - 1).bit_length()))
    pool = draw(st.sampled_from(_VPC_POOLS))
    offset = draw(st.integers(0, 2 ** (vpc_prefix - pool.prefixlen) - 1))
    vpc = ipaddress.IPv4Network(
        (int(pool.network_address) + offset * 2 ** (32 - vpc_prefix), vpc_prefix)
    )
    # Public ranges are valid (with a warning); special-purpose ones cannot hold a VPC.
    assume(not special_purpose(vpc))
    subnets = draw(_carve(vpc, total))

    spec: dict[str, Any] = {
        "name": draw(names),
        "vpc_cidr": str(vpc),
        "lambda_subnet_cidrs": subnets[n_public : n_public + n_lambda],
        "api_subnet_cidrs": subnets[n_public + n_lambda :],
        "api_port": draw(st.integers(1, 65535)),
        "nat": nat,
        "api_kind": api_kind,
    }
    if n_public or nat != "none" or draw(st.booleans()):
        spec["public_subnet_cidrs"] = subnets[:n_public]
    if region != "us-east-1" or draw(st.booleans()):
        spec["region"] = region
    if draw(st.booleans()):
        spec["tags"] = draw(tags)
    if draw(st.booleans()):
        spec["version"] = 1
    # Key order must not matter to the validator.
    keys = draw(st.permutations(list(spec)))
    return {key: spec[key] for key in keys}
