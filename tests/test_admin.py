"""The staff admin for deployments and the audit trail: read-only, filtered and searched,
exported as CSV (the selected rows, or every row under the current filters)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from deployer import events
from deployer import services as deployer_services
from deployer.models import Deployment, ResourceRecord
from designer.services import design_create
from designer.spec import DEFAULT_SPEC

pytestmark = pytest.mark.django_db

A = AuditEntry.Action
DEPLOYMENTS = reverse("admin:deployer_deployment_changelist")
ENTRIES = reverse("admin:audit_auditentry_changelist")


def grant_view(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def staff(make_user):
    user = make_user("sam", staff=True)
    grant_view(user, "view_deployment", "view_auditentry")
    return user


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def history(team, other_team, member, outsider, settings):
    """Two teams' deployments: payments' ``web-api`` failed after it started (with a NAT
    gateway's physical id), search's ``search-api`` still queued, on its own target."""
    settings.GANTRY_SANDBOX_ENDPOINT = "http://127.0.0.1:9"
    ours = deployer_services.deployment_start(
        design=design_create(team=team, user=member, spec_data={**DEFAULT_SPEC, "name": "web-api"}),
        target=deployer_services.target_sandbox_ensure(team=team),
        user=member,
    )
    theirs = deployer_services.deployment_start(
        design=design_create(
            team=other_team, user=outsider, spec_data={**DEFAULT_SPEC, "name": "search-api"}
        ),
        target=deployer_services.target_sandbox_ensure(team=other_team),
        user=outsider,
    )
    nat = ResourceRecord.objects.filter(deployment=ours, logical_id="NatGateway1")
    assert nat.update(state="ready", physical_id="nat-0abc123def4567890") == 1
    Deployment.objects.filter(pk=ours.pk).update(
        status=Deployment.Status.FAILED,
        started_at=timezone.now() - timedelta(days=3),
        created_at=timezone.now() - timedelta(days=3),
    )
    ours.refresh_from_db()
    events.append(ours, kind="resource", message="NatGateway1 is ready", state="ready")
    events.append(ours, kind="status", message="the deployment failed", state="failed")
    return ours, theirs


def midnight():
    """Today's start, as the admin's date filters write it in their links."""
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def ids(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_deployment_admin_is_read_only_with_resources_and_the_event_timeline(staff_client, history):
    ours, _ = history
    change = reverse("admin:deployer_deployment_change", args=[ours.pk])
    page = staff_client.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert "nat-0abc123def4567890" in html and "LambdaFunction" in html
    timeline = [html.index(m) for m in ("requested a deployment", "is ready", "deployment failed")]
    assert timeline == sorted(timeline)  # the event timeline, in seq order
    assert 'name="_save"' not in html
    assert staff_client.get(reverse("admin:deployer_deployment_add")).status_code == 403
    delete = reverse("admin:deployer_deployment_delete", args=[ours.pk])
    assert staff_client.get(delete).status_code == 403
    assert staff_client.post(change, {"status": "succeeded"}).status_code == 403
    ours.refresh_from_db()
    assert ours.status == "failed"


def test_a_superuser_cannot_add_change_or_delete_deployments_targets_or_entries(
    client, history, django_user_model
):
    ours, _ = history
    client.force_login(
        django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    )
    entry = AuditEntry.objects.first()
    for url in (
        reverse("admin:deployer_deployment_add"),
        reverse("admin:deployer_deployment_delete", args=[ours.pk]),
        reverse("admin:deployer_target_add"),  # targets change through the audited services
        reverse("admin:deployer_target_delete", args=[ours.target_id]),
        reverse("admin:audit_auditentry_add"),
        reverse("admin:audit_auditentry_delete", args=[entry.pk]),
    ):
        assert client.get(url).status_code == 403, url
    change = reverse("admin:audit_auditentry_change", args=[entry.pk])
    assert client.post(change, {"actor_name": "someone"}).status_code == 403
    target_page = client.get(reverse("admin:deployer_target_change", args=[ours.target_id]))
    assert target_page.status_code == 200
    assert 'name="_save"' not in target_page.content.decode()
    assert "external_id" not in target_page.content.decode()
    for changelist in (ENTRIES, DEPLOYMENTS):
        response = client.get(changelist)
        actions = response.context["cl"].model_admin.get_actions(response.wsgi_request)
        assert "delete_selected" not in actions and "export_selected_csv" in actions
    assert AuditEntry.objects.get(pk=entry.pk).actor_name == entry.actor_name


def test_deployment_admin_filters_by_team_user_status_target_and_date(
    staff_client, history, team, member
):
    ours, theirs = history
    assert ids(staff_client.get(DEPLOYMENTS)) == {ours.pk, theirs.pk}
    today = midnight()
    for query, expected in [
        ({"status__exact": "failed"}, {ours.pk}),
        ({"team__id__exact": team.pk}, {ours.pk}),
        ({"requested_by__id__exact": member.pk}, {ours.pk}),
        ({"target__id__exact": theirs.target_id}, {theirs.pk}),
        ({"created_at__gte": str(today)}, {theirs.pk}),
        ({"started_at__isnull": "False"}, {ours.pk}),
        ({"started_at__gte": str(today - timedelta(days=4))}, {ours.pk}),
    ]:
        assert ids(staff_client.get(DEPLOYMENTS, query)) == expected, query


def test_deployment_admin_searches_design_names_and_physical_ids(staff_client, history):
    ours, theirs = history
    assert ids(staff_client.get(DEPLOYMENTS, {"q": "search-api"})) == {theirs.pk}
    assert ids(staff_client.get(DEPLOYMENTS, {"q": "nat-0abc123def4567890"})) == {ours.pk}


def pks(**filters) -> set[int]:
    return set(AuditEntry.objects.filter(**filters).values_list("pk", flat=True))


def test_audit_admin_is_read_only_filtered_and_searched(
    staff_client, history, team, member, outsider
):
    # The fixture's entries were written outside a request (channel "cli"); one from a page:
    staff_client.post(reverse("login"), {"username": "mallory", "password": "wrong"})
    failed = AuditEntry.objects.get(action=A.LOGIN_FAILED)
    target = audit_record(
        action=A.TARGET_CREATED,
        actor=member,
        team=team,
        object_type="target",
        object_id="tgt-unique-77",
        object_repr="prod-account (AWS account)",
    )
    everything = pks()
    assert ids(staff_client.get(ENTRIES)) == everything
    for query, expected in [
        ({"team__id__exact": team.pk}, pks(team=team)),
        ({"actor__id__exact": member.pk}, pks(actor=member)),
        ({"action__exact": A.LOGIN_FAILED}, {failed.pk}),
        ({"channel__exact": "web"}, {failed.pk}),
        ({"channel__exact": "cli"}, everything - {failed.pk}),
        ({"at__gte": str(midnight())}, everything),
        ({"at__lt": str(midnight())}, set()),
        ({"q": "mallory"}, {failed.pk} | pks(actor=outsider)),
        ({"q": failed.request_id}, {failed.pk}),
        ({"q": "tgt-unique-77"}, {target.pk}),
        ({"q": "prod-account"}, {target.pk}),
    ]:
        assert ids(staff_client.get(ENTRIES, query)) == expected, query
    assert pks(team=team) and pks(actor=member) and pks(actor=outsider)

    detail = staff_client.get(reverse("admin:audit_auditentry_change", args=[failed.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert staff_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    delete = reverse("admin:audit_auditentry_delete", args=[failed.pk])
    assert staff_client.get(delete).status_code == 403


# --- CSV export -------------------------------------------------------------------------------


def test_export_selected_rows_as_csv(staff_client, history):
    ours, theirs = history
    response = staff_client.post(
        DEPLOYMENTS,
        {"action": "export_selected_csv", "_selected_action": [str(ours.pk)], "index": "0"},
    )
    (row,) = read_csv(response)
    assert row["id"] == str(ours.pk)
    assert row["design"] == "web-api" and row["team"] == "payments"
    assert row["status"] == "failed" and row["requested_by"] == "alice"
    assert row["target"] == "sandbox" and row["design_version"] == "1"
    assert row["created_at"] == ours.created_at.isoformat()


def test_export_link_exports_every_row_matching_the_filters_not_just_the_page(
    staff_client, history
):
    for i in range(105):  # more than the changelist's 100 rows per page
        audit_record(action=A.LOGIN_FAILED, actor_name=f"guess-{i}")
    query = {"action__exact": A.LOGIN_FAILED, "q": "guess"}
    changelist = staff_client.get(ENTRIES, query)
    assert len(changelist.context["cl"].result_list) == 100
    html = changelist.content.decode()
    link = (
        reverse("admin:audit_auditentry_export_csv")
        + "?action__exact=auth.login_failed&amp;q=guess"
    )
    assert link in html and "Export CSV (105 matching)" in html

    rows = read_csv(staff_client.get(reverse("admin:audit_auditentry_export_csv"), query))
    assert len(rows) == 105
    assert {r["action"] for r in rows} == {A.LOGIN_FAILED}
    assert {r["actor"] for r in rows} == {f"guess-{i}" for i in range(105)}
    assert list(rows[0]) == [
        "id", "at", "action", "actor", "team", "object_type", "object_id", "object",
        "channel", "ip", "request_id", "data",
    ]  # fmt: skip

    rows = read_csv(
        staff_client.get(
            reverse("admin:deployer_deployment_export_csv"), {"status__exact": "queued"}
        )
    )
    assert [r["design"] for r in rows] == ["search-api"]


def test_export_neutralizes_spreadsheet_formulas(staff_client, client, db):
    names = ['=HYPERLINK("http://evil.example")', "+1+2", "-2+3", "@SUM(A1)", "bob", "a=b"]
    # Each from an address of its own: failures from one address are one entry per window.
    for i, name in enumerate(names):
        client.post(
            reverse("login"), {"username": name, "password": "wrong"}, REMOTE_ADDR=f"192.0.2.{i}"
        )
    rows = read_csv(
        staff_client.get(
            reverse("admin:audit_auditentry_export_csv"), {"action__exact": A.LOGIN_FAILED}
        )
    )
    assert sorted(r["actor"] for r in rows) == sorted(
        ['\'=HYPERLINK("http://evil.example")', "'+1+2", "'-2+3", "'@SUM(A1)", "bob", "a=b"]
    )


def test_export_needs_staff_and_the_view_permission(client, make_user, history):
    export = reverse("admin:deployer_deployment_export_csv")
    client.force_login(make_user("plain"))
    response = client.get(export)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(make_user("staff-without-rights", staff=True))
    assert client.get(export).status_code == 403
    assert client.get(reverse("admin:audit_auditentry_export_csv")).status_code == 403
