"""Badges that never contradict the text (pages/states.py), and the rows the deployment page
shows for them (pages/deployment.py): pure rules, then records on the real database played as
the engine writes them (no worker: the test sets what a pass would)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployer import services
from deployer.models import Deployment, ResourceRecord
from designer.services import design_create
from designer.spec import DEFAULT_SPEC
from pages.deployment import page_status
from pages.states import (
    BY_KEY,
    CHANGE_SIGNS,
    CHANGE_STATES,
    DISPLAY_STATES,
    PHASES,
    badge_css,
    change_marks,
    display_state,
    page_vocabulary,
)

#: Every state a record can be in, and those a live stack's update and drift check add.
RECORD_STATES = [*ResourceRecord.State.values, "updating", "replacing", "drifted"]


def contrast(fg: str, bg: str) -> float:
    def luminance(colour: str) -> float:
        rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_state_has_its_own_badge_and_colour_readable_on_its_tint():
    keys = {s.key for s in DISPLAY_STATES}
    wanted = {"waiting_to_create", "creating", "ready", "waiting_to_delete", "deleting"}
    wanted |= {"deleted", "failed", "updating", "replacing", "drifted", "not_created"}
    assert wanted <= keys
    assert len({s.colour for s in DISPLAY_STATES}) == len(DISPLAY_STATES)
    assert len({s.label for s in DISPLAY_STATES}) == len(DISPLAY_STATES)
    for s in DISPLAY_STATES:
        assert contrast(s.colour, s.background) >= 4.5, s
        assert contrast(s.colour, "#ffffff") >= 4.5, s  # the diagram draws it on white
        assert f".state-{s.key}{{--state-fg:{s.colour};" in badge_css()


def test_every_change_action_has_its_sign_words_and_a_readable_colour():
    from deployer.constants import ChangeAction

    assert {s.key for s in CHANGE_STATES} == set(ChangeAction.values) == set(CHANGE_SIGNS)
    for s in CHANGE_STATES:
        assert contrast(s.colour, s.background) >= 4.5, s
        assert contrast(s.colour, "#ffffff") >= 4.5, s
        assert f".state-{s.key}{{" in badge_css()
    marks = change_marks({"Vpc": "replace", "Subnet": "add", "Odd": "unknown"})
    assert set(marks) == {"Vpc", "Subnet"}  # an unknown action is not drawn as a change
    assert (marks["Vpc"].prefix, marks["Vpc"].text) == ("change", "replace")
    assert marks["Vpc"].urgency < marks["Subnet"].urgency  # a replace outranks an add


def test_a_ready_resource_found_drifted_shows_drifted_and_only_while_it_is_ready():
    for drift in ("modified", "deleted"):
        assert display_state(state="ready", status="succeeded", drift=drift).key == "drifted"
    assert display_state(state="ready", status="succeeded", drift="in_sync").key == "ready"
    assert display_state(state="ready", status="succeeded").key == "ready"
    # While it is worked on, or deleted, the run's badge is what matters.
    assert display_state(state="creating", status="updating", drift="modified").key == "creating"
    assert (
        display_state(state="ready", status="destroying", drift="deleted").key
        == "waiting_to_delete"
    )
    # The page's script applies the same rule.
    assert page_vocabulary()["drifted"] == ["modified", "deleted"]


@pytest.mark.parametrize("status", sorted(PHASES))
@pytest.mark.parametrize("state", RECORD_STATES)
def test_every_record_state_shows_a_known_badge_in_every_status(state, status):
    assert display_state(state=state, status=status).key in BY_KEY


def test_a_ready_resource_in_a_destroy_is_waiting_to_delete_not_ready():
    assert display_state(state="ready", status="destroying").label == "Waiting to delete"
    assert display_state(state="ready", status="destroy_failed").label == "Ready"  # it is
    assert display_state(state="pending", status="deploying").label == "Waiting to create"
    assert display_state(state="pending", status="failed").label == "Not created"
    # A failure to create is deleted with the rest; a failure to delete stays a failure.
    assert display_state(state="failed", status="rolling_back").label == "Waiting to delete"
    failed = display_state(state="failed", status="rolling_back", delete_started=True)
    assert failed.label == "Failed"
    assert display_state(state="drifted", status="succeeded").label == "Drifted"


@pytest.mark.django_db
def test_rows_say_why_a_resource_waits_and_when_it_is_looked_at_again(team, member):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    deployment = services.deployment_start(
        design=design, target=services.target_sandbox_ensure(team=team), user=member
    )
    now = timezone.now()
    deployment.resources.update(
        state="ready", started_at=now - timedelta(seconds=100), ready_at=now - timedelta(seconds=8)
    )
    Deployment.objects.filter(pk=deployment.pk).update(status="destroying")
    deployment.refresh_from_db()
    held = deployment.resources.get(logical_id="LambdaSubnet1")
    held.waiting_reason = "DependencyViolation: the subnet has network interfaces in use"
    held.next_check_at = now + timedelta(seconds=30)
    held.delete_started_at = now
    held.save()
    deployment.resources.filter(logical_id="LambdaFunction").update(
        state="deleted", delete_started_at=now - timedelta(seconds=5), deleted_at=now
    )

    status = page_status(deployment)
    rows = {r["logical_id"]: r for r in status["resources"]}
    subnet = rows["LambdaSubnet1"]
    assert (subnet["state"], subnet["display_label"]) == ("ready", "Waiting to delete")
    assert subnet["reason"].startswith("DependencyViolation")
    assert subnet["next_check_at"] == held.next_check_at.isoformat()
    # Nothing told it why: it waits for what depends on it.
    vpc = rows["Vpc"]
    assert vpc["display_label"] == "Waiting to delete" and vpc["reason"].startswith("after ")
    assert vpc["next_check_at"] is None  # no countdown without a reason to count down to
    assert rows["LambdaFunction"]["display_label"] == "Deleted"
    assert rows["LambdaFunction"]["elapsed"] == "5.0 s"  # the record's times, not an event's
    assert status["done_state"] == "deleted" and status["phase"] == "teardown"

    Deployment.objects.filter(pk=deployment.pk).update(status="succeeded")
    deployment.refresh_from_db()
    rows = {r["logical_id"]: r for r in page_status(deployment)["resources"]}
    assert rows["Vpc"]["display_label"] == "Ready"
    assert rows["Vpc"]["elapsed"] == "1 min 32 s"
