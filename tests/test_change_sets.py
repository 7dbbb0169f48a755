"""Change sets computed purely, from two plans: what a change interrupts is said only where
it does (a platform engineer confirms interruptions, so a false one trains them to ignore it)."""

from __future__ import annotations

import dataclasses

from deployer.changes import Live, change_set
from designer.plan import plan
from tests.specs import TWO_AZ


def _changes(before, after) -> dict:
    live = {
        node.logical_id: Live(node, physical_id=f"id-{node.logical_id}") for node in plan(before)
    }
    result = change_set(live, plan(after), region=after.region)
    return {c.logical_id: c for c in result.changes}


def test_a_nat_gateway_removed_with_its_whole_zone_interrupts_nothing():
    before = dataclasses.replace(TWO_AZ, nat="per_az")
    after = dataclasses.replace(
        before,
        public_subnet_cidrs=before.public_subnet_cidrs[:1],
        lambda_subnet_cidrs=before.lambda_subnet_cidrs[:1],
        api_subnet_cidrs=before.api_subnet_cidrs[:1],
    )
    changes = _changes(before, after)
    assert changes["NatGateway2"].action == "remove"
    assert changes["NatGateway2"].interrupts == ""
    assert "NatGateway1" not in changes  # the first zone's gateway is untouched


def test_a_nat_gateway_whose_subnets_stay_interrupts_their_internet_access():
    before = dataclasses.replace(TWO_AZ, nat="single")
    changes = _changes(before, dataclasses.replace(before, nat="none"))
    assert changes["NatGateway1"].action == "remove"
    assert "internet access" in changes["NatGateway1"].interrupts
    # per_az to single: the second zone's Lambda subnet moves to the first gateway.
    before = dataclasses.replace(TWO_AZ, nat="per_az")
    changes = _changes(before, dataclasses.replace(before, nat="single"))
    removed = [
        c for c in changes.values() if c.type == "AWS::EC2::NatGateway" and c.action == "remove"
    ]
    assert removed and all(c.interrupts for c in removed)


def _alb(**fields):
    return dataclasses.replace(TWO_AZ, api_kind="alb", **fields)


def test_a_new_launch_template_version_updates_the_auto_scaling_group_and_says_so():
    changes = _changes(_alb(tags=(("team", "a"),)), _alb(tags=(("team", "b"),)))
    group = changes["ApiAutoScalingGroup"]
    template = next(p for p in group.properties if p.name == "LaunchTemplate")
    assert "(new version of ApiLaunchTemplate)" in str(template.after)
    assert template.replacement is False
