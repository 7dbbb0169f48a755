"""Deployment pages and the Server-Sent Events stream, on the real database and Redis.

The stream is read through Django's ASGI handler (AsyncClient), the way uvicorn serves it.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import reverse

from deployer import events, services
from deployer.models import Deployment
from designer.services import design_create
from designer.spec import DEFAULT_SPEC

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def deployment(team, member, settings):
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"  # never contacted: no worker runs
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    target = services.target_sandbox_ensure(team=team)
    return services.deployment_start(design=design, target=target, user=member)


def read_stream(
    user, url: str, *, headers: dict | None = None, until_seq: int, timeout: float = 10
):
    """Collect SSE events until one numbered ``until_seq`` arrives (or the stream ends)."""

    async def run():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(url, headers=headers or {})
        got, buffer = [], ""
        if response.status_code != 200:
            return response.status_code, got
        deadline = time.monotonic() + timeout
        async for chunk in response.streaming_content:
            buffer += chunk.decode()
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
                if data:
                    got.append(json.loads(data[0]))
            if (got and got[-1]["seq"] >= until_seq) or time.monotonic() > deadline:
                break
        return response.status_code, got

    return async_to_sync(run)()


def read_stream_while(user, url: str, until_seq: int, meanwhile) -> tuple[int, list]:
    """Read the stream while ``meanwhile()`` runs in another thread (as a worker would)."""
    thread = threading.Thread(target=meanwhile)
    thread.start()
    try:
        return read_stream(user, url, until_seq=until_seq)
    finally:
        thread.join()


def add_events(deployment: Deployment, n: int, *, final: bool = False) -> None:
    from django.db import transaction

    for i in range(n):
        with transaction.atomic():
            dep = Deployment.objects.select_for_update().get(pk=deployment.pk)
            state = "succeeded" if final and i == n - 1 else "deploying"
            kind = "status" if final and i == n - 1 else "resource"
            events.append(dep, kind=kind, message=f"event {i}", state=state)
            dep.save(update_fields=["last_event_seq"])


def test_stream_backfills_after_last_event_id_without_repeats(deployment, member):
    add_events(deployment, 5, final=True)  # seq 2..6, the last one terminal
    url = reverse("deployer:deployment_stream", args=[deployment.pk])
    status, got = read_stream(member, url, headers={"Last-Event-ID": "3"}, until_seq=6)
    assert status == 200
    assert [e["seq"] for e in got] == [4, 5, 6]
    status, got = read_stream(member, url + "?after=0", until_seq=6)
    assert [e["seq"] for e in got] == [1, 2, 3, 4, 5, 6]


def test_stream_delivers_live_events_in_order(deployment, member):
    url = reverse("deployer:deployment_stream", args=[deployment.pk]) + "?after=1"

    def later():
        time.sleep(0.5)
        add_events(deployment, 4, final=True)

    status, got = read_stream_while(member, url, 5, later)
    assert status == 200
    assert [e["seq"] for e in got] == [2, 3, 4, 5]
    assert got[-1]["state"] == "succeeded"


def test_stream_ignores_another_installations_events_on_the_same_redis(
    deployment, member, settings
):
    """Deployment ids repeat across databases, and Redis pub/sub is shared by every database
    number: a push for "deployment N" from another installation on this Redis must not reach
    this installation's deployment N."""
    ours = events.channel(deployment.pk)
    database = settings.DATABASES["default"]["NAME"]
    assert database in ours
    theirs = ours.replace(database, "gantry_elsewhere")
    intruder = {"seq": 2, "kind": "status", "state": "failed", "message": "not yours"}
    url = reverse("deployer:deployment_stream", args=[deployment.pk]) + "?after=1"

    def later():
        time.sleep(0.5)
        for other in (theirs, f"gantry:deployment:{deployment.pk}:events"):  # and unscoped
            events._redis().publish(other, json.dumps(intruder))
        time.sleep(0.2)
        add_events(deployment, 2, final=True)

    status, got = read_stream_while(member, url, 3, later)
    assert status == 200
    assert [(e["seq"], e["message"]) for e in got] == [(2, "event 0"), (3, "event 1")]


def test_only_the_team_may_open_deployment_pages_and_stream(deployment, outsider, member, client):
    urls = [
        reverse("deployer:deployment_detail", args=[deployment.pk]),
        reverse("deployer:deployment_status", args=[deployment.pk]),
        reverse("deployer:deployment_diagram", args=[deployment.pk]),
    ]
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("deployer:deployment_cancel", args=[deployment.pk])).status_code == 404
    )
    status, got = read_stream(
        outsider, reverse("deployer:deployment_stream", args=[deployment.pk]), until_seq=1
    )
    assert status == 404 and got == []
    deployment.refresh_from_db()
    assert not deployment.cancel_requested

    client.force_login(member)
    page = client.get(urls[0])
    assert page.status_code == 200
    assert b"progressbar" in page.content and b"LambdaFunction" in page.content
    status = client.get(urls[1]).json()
    assert status["total"] == len(status["resources"]) and status["percent"] == 0


def test_deploy_button_starts_one_deployment_and_a_second_is_refused(
    team, member, member_client, settings
):
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    url = reverse("deployer:deployment_create", args=[design.pk])
    first = member_client.post(url)
    deployment = Deployment.objects.get(design=design)
    assert first["Location"] == reverse("deployer:deployment_detail", args=[deployment.pk])
    second = member_client.post(url, follow=True)
    assert Deployment.objects.filter(design=design).count() == 1
    assert b"already has an active deployment" in second.content


def test_destroy_needs_the_design_name_typed(deployment, member_client):
    Deployment.objects.filter(pk=deployment.pk).update(status="succeeded")
    url = reverse("deployer:deployment_destroy", args=[deployment.pk])
    member_client.post(url, {"confirm": "wrong"})
    deployment.refresh_from_db()
    assert deployment.status == "succeeded"
    member_client.post(url, {"confirm": deployment.design.name})
    deployment.refresh_from_db()
    assert deployment.status == "destroying"


def test_deploying_to_another_teams_target_is_refused_not_redirected_to_the_sandbox(
    client, team, member, other_team
):
    from deployer.models import Target

    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    theirs = Target.objects.create(team=other_team, name="their-account")
    client.force_login(member)
    response = client.post(
        reverse("deployer:deployment_create", args=[design.pk]),
        {"target": theirs.pk},
        follow=True,
    )
    assert b"not one of this design" in response.content
    assert not Deployment.objects.exists()
