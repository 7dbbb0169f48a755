"""The audit trail: append-only down to the database, written by the services for every
state-changing action through the pages, and for failed logins and refused lookups."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError, connection, transaction
from django.http import Http404
from django.test import AsyncClient
from django.urls import reverse

from audit.models import AuditEntry, AuditEntryImmutable
from audit.services import audit_record, get_for_user_or_404
from deployer import services as deployer_services
from deployer.models import Deployment
from designer.models import Design
from designer.selectors import design_list
from designer.services import design_create, design_delete
from designer.spec import DEFAULT_SPEC
from tests.test_design_pages import form_data

pytestmark = pytest.mark.django_db

A = AuditEntry.Action


def only(action: str, **filters) -> AuditEntry:
    (entry,) = AuditEntry.objects.filter(action=action, **filters)
    return entry


def assert_from_request(entry: AuditEntry, response, *, actor, team) -> None:
    """The entry names who, for which team, from where and under which request."""
    assert entry.actor == actor
    assert entry.actor_name == actor.username
    assert entry.team == team
    assert entry.channel == "web"
    assert entry.ip == "127.0.0.1"
    assert entry.request_id and entry.request_id == response["X-Request-ID"]


# --- append-only ------------------------------------------------------------------------------


def test_the_model_refuses_to_change_or_delete_an_entry(team, member):
    entry = audit_record(action=A.DESIGN_CREATED, actor=member, team=team, object_repr="x")
    entry.object_repr = "rewritten"
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(object_repr="rewritten")
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry(pk=entry.pk, action=A.DESIGN_DELETED).save(force_update=True)
    assert AuditEntry.objects.get(pk=entry.pk).object_repr == "x"


NO_TRIGGER = (
    "the append-only trigger is PostgreSQL's (audit migration 0002); SQLite is only a "
    "development database and relies on the model's refusals"
)


def _refused(sql: str, params: list) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET object_repr = 'rewritten' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_the_database_refuses_raw_sql_that_rewrites_history(team, member, sql):
    if connection.vendor != "postgresql":
        pytest.skip(NO_TRIGGER)
    entry = audit_record(action=A.DESIGN_CREATED, actor=member, team=team, object_repr="x")
    _refused(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).object_repr == "x"


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_to_truncate_the_trail(team, member):
    """Committed rows: PostgreSQL refuses any TRUNCATE in a transaction with pending
    foreign-key checks, which would hide whether the trigger works."""
    if connection.vendor != "postgresql":
        pytest.skip(NO_TRIGGER)
    entry = audit_record(action=A.DESIGN_CREATED, actor=member, team=team, object_repr="x")
    _refused("TRUNCATE audit_auditentry", [])
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


# --- designs and deployments through the pages ------------------------------------------------


def test_design_create_and_edit_through_the_pages_are_recorded(member_client, member, team):
    response = member_client.post(
        reverse("designer:design_new"),
        form_data(DEFAULT_SPEC, team=str(team.pk)),
        headers={"X-Request-ID": "proxy-req-0001"},
    )
    assert response.status_code == 302
    design = Design.objects.get(team=team)
    created = only(A.DESIGN_CREATED)
    assert_from_request(created, response, actor=member, team=team)
    assert created.request_id == "proxy-req-0001"  # a proxy's id follows the request through
    assert created.object_type == "design" and created.object_id == str(design.pk)
    assert created.data["spec"] == design.spec

    changed = {**DEFAULT_SPEC, "nat": "none", "public_subnet_cidrs": []}
    response = member_client.post(
        reverse("designer:design_edit", args=[design.pk]), form_data(changed)
    )
    assert response.status_code == 302
    updated = only(A.DESIGN_UPDATED)
    assert_from_request(updated, response, actor=member, team=team)
    assert updated.request_id != created.request_id
    assert updated.data["version"] == 2
    assert updated.data["before"]["nat"] == "single"
    assert updated.data["before"]["public_subnet_cidrs"] == DEFAULT_SPEC["public_subnet_cidrs"]
    assert updated.data["after"]["nat"] == "none"
    assert updated.data["after"]["public_subnet_cidrs"] == []

    # Saving the same spec again changes nothing, so it records nothing.
    member_client.post(reverse("designer:design_edit", args=[design.pk]), form_data(changed))
    assert AuditEntry.objects.filter(action=A.DESIGN_UPDATED).count() == 1


def test_deploy_cancel_and_destroy_through_the_pages_are_recorded(
    member_client, member, team, settings
):
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"  # never contacted: no worker runs
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    target = deployer_services.target_sandbox_ensure(team=team)

    response = member_client.post(
        reverse("deployer:deployment_create", args=[design.pk]), {"target": str(target.pk)}
    )
    deployment = Deployment.objects.get(design=design)
    requested = only(A.DEPLOYMENT_REQUESTED)
    assert_from_request(requested, response, actor=member, team=team)
    assert requested.object_type == "deployment" and requested.object_id == str(deployment.pk)
    assert requested.data["target_id"] == target.pk
    assert requested.data["target"] == "sandbox"
    assert requested.data["design_version"] == 1

    # A second deploy while the first is active is refused, and nothing is recorded for it.
    member_client.post(reverse("deployer:deployment_create", args=[design.pk]))
    assert AuditEntry.objects.filter(action=A.DEPLOYMENT_REQUESTED).count() == 1

    response = member_client.post(reverse("deployer:deployment_cancel", args=[deployment.pk]))
    cancelled = only(A.DEPLOYMENT_CANCELLED)
    assert_from_request(cancelled, response, actor=member, team=team)
    assert cancelled.object_id == str(deployment.pk)
    member_client.post(reverse("deployer:deployment_cancel", args=[deployment.pk]))
    assert AuditEntry.objects.filter(action=A.DEPLOYMENT_CANCELLED).count() == 1

    Deployment.objects.filter(pk=deployment.pk).update(status=Deployment.Status.FAILED)
    response = member_client.post(
        reverse("deployer:deployment_destroy", args=[deployment.pk]), {"confirm": design.name}
    )
    destroyed = only(A.DEPLOYMENT_DESTROYED)
    assert_from_request(destroyed, response, actor=member, team=team)
    assert destroyed.data["previous_status"] == "failed"
    assert len({e.request_id for e in AuditEntry.objects.all()}) == AuditEntry.objects.count()


# --- failed authorization ---------------------------------------------------------------------


@pytest.mark.parametrize("username", ["alice", "nobody-by-that-name"])
def test_a_failed_login_is_recorded_without_the_password(client, member, username):
    response = client.post(reverse("login"), {"username": username, "password": "s3cret-guess"})
    assert response.status_code == 200  # the form again, with its error
    entry = only(A.LOGIN_FAILED)
    assert entry.actor is None and entry.team is None
    assert entry.actor_name == username
    assert entry.channel == "web" and entry.ip == "127.0.0.1"
    assert entry.request_id == response["X-Request-ID"]
    assert "s3cret-guess" not in json.dumps(entry.data) + entry.object_repr
    # Further failures from this address within the window are counted, not written.
    assert entry.data == {"path": reverse("login"), "window_seconds": 300}


def test_a_good_login_records_nothing(client, member):
    client.post(reverse("login"), {"username": "alice", "password": "pw-alice"})
    assert not AuditEntry.objects.exists()


@pytest.fixture
def owned(team, member, settings):
    """A design and a deployment of it, both belonging to ``team``."""
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    target = deployer_services.target_sandbox_ensure(team=team)
    deployment = deployer_services.deployment_start(design=design, target=target, user=member)
    return design, deployment


def _denied_urls(design: Design, deployment: Deployment) -> list[tuple[str, str, str]]:
    """(method, url, object type) of every page and endpoint that looks up a design or a
    deployment by id."""
    return [
        ("get", reverse("designer:design_edit", args=[design.pk]), "design"),
        ("post", reverse("designer:design_edit", args=[design.pk]), "design"),
        ("get", reverse("designer:design_versions", args=[design.pk]), "design"),
        ("get", reverse("designer:design_diagram", args=[design.pk, "svg"]), "design"),
        ("post", reverse("deployer:deployment_create", args=[design.pk]), "design"),
        ("get", reverse("deployer:deployment_detail", args=[deployment.pk]), "deployment"),
        ("get", reverse("deployer:deployment_status", args=[deployment.pk]), "deployment"),
        ("get", reverse("deployer:deployment_diagram", args=[deployment.pk]), "deployment"),
        ("post", reverse("deployer:deployment_cancel", args=[deployment.pk]), "deployment"),
        ("post", reverse("deployer:deployment_destroy", args=[deployment.pk]), "deployment"),
    ]


def test_another_teams_object_is_the_same_404_as_none_and_the_attempt_is_recorded(
    client, owned, team, outsider
):
    design, deployment = owned
    missing_design = Design(pk=design.pk + 10_000)
    missing_deployment = Deployment(pk=deployment.pk + 10_000)
    client.force_login(outsider)
    before = AuditEntry.objects.count()
    for (method, url, kind), (_, missing_url, _) in zip(
        _denied_urls(design, deployment),
        _denied_urls(missing_design, missing_deployment),
        strict=True,
    ):
        response = getattr(client, method)(url)
        nothing = getattr(client, method)(missing_url)
        assert response.status_code == nothing.status_code == 404, url
        assert response.content == nothing.content, url  # nothing says the object exists
        entry = AuditEntry.objects.filter(action=A.ACCESS_DENIED).first()
        assert entry.data == {"path": url}
        assert entry.team == team  # the owners see who tried
        assert entry.actor == outsider and entry.channel == "web" and entry.ip == "127.0.0.1"
        assert entry.request_id == response["X-Request-ID"]
        assert entry.object_type == kind
        assert entry.object_id == str(design.pk if kind == "design" else deployment.pk)
    # One entry per attempt on an existing object, none for the ids that do not exist.
    assert AuditEntry.objects.count() - before == len(_denied_urls(design, deployment))
    deployment.refresh_from_db()
    assert not deployment.cancel_requested and deployment.status == "queued"


# Committed rows: under ASGI the entry is written after the answer in another thread, on a
# connection of its own.
@pytest.mark.django_db(transaction=True)
def test_the_event_stream_of_another_teams_deployment_is_denied_and_recorded(owned, team, outsider):
    _, deployment = owned
    url = reverse("deployer:deployment_stream", args=[deployment.pk])

    async def get():
        client = AsyncClient()
        await client.aforce_login(outsider)
        return await client.get(url)

    response = async_to_sync(get)()
    assert response.status_code == 404
    # Written after the answer, in a worker thread (ASGI): it lands shortly after.
    deadline = time.monotonic() + 10
    while not AuditEntry.objects.filter(action=A.ACCESS_DENIED).exists():
        assert time.monotonic() < deadline, "the refusal was never recorded"
        time.sleep(0.02)
    entry = only(A.ACCESS_DENIED)
    assert entry.team == team and entry.actor == outsider
    assert entry.data == {"path": url} and entry.object_id == str(deployment.pk)
    assert entry.request_id == response["X-Request-ID"]


def test_a_members_own_hidden_design_is_a_404_but_no_denial(member_client, team, member):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    design_delete(design=design, user=member)
    response = member_client.get(reverse("designer:design_edit", args=[design.pk]))
    assert response.status_code == 404
    assert not AuditEntry.objects.filter(action=A.ACCESS_DENIED).exists()


def test_staff_may_open_any_teams_objects_without_a_denial(client, owned, make_user):
    design, deployment = owned
    client.force_login(make_user("root", staff=True))
    assert client.get(reverse("designer:design_edit", args=[design.pk])).status_code == 200
    assert (
        client.get(reverse("deployer:deployment_detail", args=[deployment.pk])).status_code == 200
    )
    assert not AuditEntry.objects.filter(action=A.ACCESS_DENIED).exists()


def test_the_lookup_helper_answers_404_for_a_malformed_id_and_records_nothing(team, outsider):
    with pytest.raises(Http404):
        get_for_user_or_404(design_list(user=outsider), user=outsider, path="/x/", pk="abc")
    assert not AuditEntry.objects.exists()
