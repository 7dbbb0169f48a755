"""What a resource's badge says, and in which colour: one table for the table, the diagram and
the live page.

A resource record knows its own state (``pending``, ``ready``, ``deleting``...); what a person
should read also depends on what the deployment is doing. During a destroy a subnet whose
deletion AWS refuses for now is still ``ready`` in its record, but it is *waiting to be
deleted*; a resource that was never started in a failed deployment is not *waiting to be
created*, it was *not created*. :data:`DISPLAY_RULES` says which badge each record state shows
in each phase of a deployment, and every view takes its badge from it: the page's first render,
its status answer, the coloured diagram and, through :func:`page_vocabulary`, the page's script
as events arrive.

States that only some deployments reach (``updating``, ``replacing``, ``drifted``: a live
stack's update and drift check) have their badge here already and show as themselves whatever
the phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployer.selectors import progress_done_state
from designer.diagram import StateMark


@dataclass(frozen=True)
class DisplayState:
    """One badge: its words, its text and border colour, and the tint behind the words.

    ``colour`` on ``background`` reads at a contrast of at least 4.5:1 (WCAG AA), and the
    words are always shown: colour is never the only signal.
    """

    key: str
    label: str
    colour: str
    background: str


#: Every badge, most urgent first: an element of the diagram that stands for several resources
#: shows the most urgent state among them.
DISPLAY_STATES: tuple[DisplayState, ...] = (
    DisplayState("failed", "Failed", "#B42318", "#FEE4E2"),
    DisplayState("drifted", "Drifted", "#8A5A00", "#FFF4C2"),
    DisplayState("replacing", "Replacing", "#7A3CC8", "#F4EBFF"),
    DisplayState("updating", "Updating", "#0B6B75", "#D9F4F5"),
    DisplayState("deleting", "Deleting", "#B03D00", "#FFEBDD"),
    DisplayState("waiting_to_delete", "Waiting to delete", "#7A4512", "#F3E6D8"),
    DisplayState("creating", "Creating", "#0A5CC2", "#DFEFFF"),
    DisplayState("waiting_to_create", "Waiting to create", "#4B5563", "#E9EDF1"),
    DisplayState("not_created", "Not created", "#525C68", "#F4F5F7"),
    DisplayState("ready", "Ready", "#17733A", "#DCF5E4"),
    DisplayState("deleted", "Deleted", "#58616C", "#ECEEF0"),
)
BY_KEY: dict[str, DisplayState] = {s.key: s for s in DISPLAY_STATES}

#: A change set's actions, as its table, its diagram and its legend show them: the sign
#: Terraform and CloudFormation readers know, the words, and the colours (WCAG AA, as above).
CHANGE_STATES: tuple[DisplayState, ...] = (
    DisplayState("remove", "Remove", "#B42318", "#FEE4E2"),
    DisplayState("replace", "Replace", "#7A3CC8", "#F4EBFF"),
    DisplayState("modify", "Modify in place", "#8A5A00", "#FFF4C2"),
    DisplayState("add", "Add", "#17733A", "#DCF5E4"),
)
CHANGE_BY_KEY: dict[str, DisplayState] = {s.key: s for s in CHANGE_STATES}
CHANGE_SIGNS: dict[str, str] = {"add": "+", "modify": "~", "replace": "-/+", "remove": "-"}

#: A deployment's phase, from its status: what the reconciler is doing with the resources.
#: ``build`` creates them, ``built`` has stopped creating (succeeded, or failed and kept),
#: ``teardown`` deletes them, ``torn_down`` has stopped deleting.
PHASES: dict[str, str] = {
    "queued": "build",
    "deploying": "build",
    "succeeded": "built",
    "failed": "built",
    "rolling_back": "teardown",
    "destroying": "teardown",
    "rolled_back": "torn_down",
    "cancelled": "torn_down",
    "destroyed": "torn_down",
    "destroy_failed": "torn_down",
    "updating": "build",
    "update_rolling_back": "build",
    "update_rolled_back": "built",
    "update_failed": "built",
}

#: Record state -> badge, per phase. A record state missing from a phase shows as itself
#: (``updating``, ``replacing``, ``drifted``). ``failed+delete`` is a record that failed after
#: its deletion had started: a failure to delete, which keeps its badge while the teardown
#: goes on, where a resource that failed to be created is waiting to be deleted like the rest.
DISPLAY_RULES: dict[str, dict[str, str]] = {
    "build": {"pending": "waiting_to_create"},
    "built": {"pending": "not_created"},
    "teardown": {
        "pending": "waiting_to_delete",
        "creating": "waiting_to_delete",
        "ready": "waiting_to_delete",
        "failed": "waiting_to_delete",
        "failed+delete": "failed",
    },
    "torn_down": {"pending": "not_created"},
}


def phase_of(status: str) -> str:
    """The phase of a deployment in ``status`` (an unknown status counts as building)."""
    return PHASES.get(status, "build")


#: A resource's drift (its last check's finding) that shows a ready resource as ``drifted``.
DRIFTED: tuple[str, ...] = ("modified", "deleted")


def display_state(
    *, state: str, status: str, delete_started: bool = False, drift: str = ""
) -> DisplayState:
    """The badge of a record in ``state`` in a deployment whose status is ``status``; a ready
    resource whose last drift check found it changed or deleted outside Gantry is drifted."""
    rules = DISPLAY_RULES[phase_of(status)]
    key = f"{state}+delete" if delete_started and f"{state}+delete" in rules else state
    shown = rules.get(key, state)
    if shown == "ready" and drift in DRIFTED:
        shown = "drifted"
    return BY_KEY.get(shown) or DisplayState(shown, shown.replace("_", " ").capitalize(), *_PLAIN)


_PLAIN = ("#4B5563", "#E9EDF1")


def diagram_marks(states: Mapping[str, str]) -> dict[str, StateMark]:
    """How the diagram draws each resource, from a ``{logical id: display state key}`` map."""
    rank = {s.key: i for i, s in enumerate(DISPLAY_STATES)}
    marks = {}
    for logical_id, key in states.items():
        shown = BY_KEY.get(key) or DisplayState(key, key.replace("_", " "), *_PLAIN)
        marks[logical_id] = StateMark(
            text=shown.label.lower(), colour=shown.colour, urgency=rank.get(key, len(rank))
        )
    return marks


def change_marks(actions: Mapping[str, str]) -> dict[str, StateMark]:
    """How the diagram draws a change set: each changed resource in its action's colour, with
    its words ("change: replace"); an element that stands for several shows the most drastic."""
    rank = {s.key: i for i, s in enumerate(CHANGE_STATES)}
    return {
        logical_id: StateMark(
            text=CHANGE_BY_KEY[action].label.lower(),
            colour=CHANGE_BY_KEY[action].colour,
            urgency=rank[action],
            prefix="change",
        )
        for logical_id, action in actions.items()
        if action in CHANGE_BY_KEY
    }


def page_vocabulary() -> dict[str, Any]:
    """What the deployment page's script needs to show a badge itself as events arrive: the
    same rules, labels and phases as the server, so a live page and a reloaded one agree."""
    return {
        "phases": PHASES,
        "rules": DISPLAY_RULES,
        "labels": {s.key: s.label for s in DISPLAY_STATES},
        "done": {status: progress_done_state(status) for status in PHASES},
        "drifted": list(DRIFTED),
    }


def badge_css() -> str:
    """The badge colours as CSS rules (``.state-<key>``), from :data:`DISPLAY_STATES`."""
    return "\n".join(
        f".state-{s.key}{{--state-fg:{s.colour};--state-bg:{s.background}}}"
        for s in (*DISPLAY_STATES, *CHANGE_STATES)
    )
