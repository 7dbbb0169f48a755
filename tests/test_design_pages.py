"""The design pages through Django's test client, on the real database and Redis."""

from __future__ import annotations

import pytest
from django.urls import reverse

from designer.models import Design
from designer.services import design_create
from designer.spec import DEFAULT_SPEC

pytestmark = pytest.mark.django_db


def form_data(spec: dict, **extra) -> dict:
    """The design form as the browser posts it (a field per row)."""
    data = {
        "name": spec["name"],
        "region": spec["region"],
        "vpc_cidr": spec["vpc_cidr"],
        "public_subnet_cidrs": spec["public_subnet_cidrs"],
        "lambda_subnet_cidrs": spec["lambda_subnet_cidrs"],
        "api_subnet_cidrs": spec["api_subnet_cidrs"],
        "api_port": str(spec["api_port"]),
        "nat": spec["nat"],
        "api_kind": spec["api_kind"],
        "tag_key": list(spec.get("tags", {})),
        "tag_value": list(spec.get("tags", {}).values()),
    }
    data.update(extra)
    return data


def test_pages_need_a_login(client):
    response = client.get(reverse("designer:design_new"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
    assert client.post(reverse("designer:preview"), {}).status_code == 302


def test_new_design_page_starts_from_the_article_layout(member_client):
    page = member_client.get(reverse("designer:design_new")).content.decode()
    for value in ("10.0.0.0/16", "10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", 'value="443"'):
        assert value in page
    assert "<svg" in page  # the diagram is drawn on first load, before any script runs
    assert "RT-Lambda" in page and "RT-API" in page
    assert "SG-Lambda" in page and "SG-API" in page


def test_save_then_edit_keeps_every_version(member_client, team):
    response = member_client.post(
        reverse("designer:design_new"), form_data(DEFAULT_SPEC, team=str(team.pk))
    )
    design = Design.objects.get(team=team, name=DEFAULT_SPEC["name"])
    assert response.status_code == 302
    assert response["Location"] == reverse("designer:design_edit", args=[design.pk])

    changed = {**DEFAULT_SPEC, "nat": "none", "public_subnet_cidrs": []}
    response = member_client.post(
        reverse("designer:design_edit", args=[design.pk]), form_data(changed)
    )
    assert response.status_code == 302
    design.refresh_from_db()
    assert design.version == 2
    assert design.spec["nat"] == "none"
    versions = {v.version: v.spec for v in design.versions.all()}
    assert versions[1]["nat"] == "single"
    assert versions[2]["nat"] == "none"

    history = member_client.get(reverse("designer:design_versions", args=[design.pk])).content
    assert b"v1" in history and b"v2" in history
    old = member_client.get(reverse("designer:design_edit", args=[design.pk]) + "?version=1")
    assert b"Showing version 1" in old.content
    assert b'value="10.0.0.0/24"' in old.content  # version 1's public subnet is back in the form


def test_saving_an_unchanged_design_makes_no_new_version(member_client, team, member):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    member_client.post(reverse("designer:design_edit", args=[design.pk]), form_data(DEFAULT_SPEC))
    design.refresh_from_db()
    assert design.version == 1


def test_invalid_save_shows_field_errors_and_keeps_the_input(member_client, team):
    bad = {**DEFAULT_SPEC, "lambda_subnet_cidrs": ["10.0.2.0/25"]}
    response = member_client.post(reverse("designer:design_new"), form_data(bad, team=str(team.pk)))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'value="10.0.2.0/25"' in page  # nothing the user typed is lost
    assert 'id="err-lambda_subnet_cidrs-0"' in page
    assert "overlap" in page
    assert not Design.objects.exists()


def test_a_duplicate_name_in_the_team_is_a_name_error(member_client, team, member):
    design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    response = member_client.post(
        reverse("designer:design_new"), form_data(DEFAULT_SPEC, team=str(team.pk))
    )
    assert response.status_code == 400
    assert "already exists in this team" in response.content.decode()
    assert Design.objects.count() == 1


def test_a_user_cannot_save_into_another_team(member_client, other_team):
    response = member_client.post(
        reverse("designer:design_new"), form_data(DEFAULT_SPEC, team=str(other_team.pk))
    )
    assert response.status_code == 400
    assert not Design.objects.exists()


def test_other_teams_designs_are_404_and_staff_see_all(client, team, member, outsider, make_user):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    urls = [
        reverse("designer:design_edit", args=[design.pk]),
        reverse("designer:design_versions", args=[design.pk]),
        reverse("designer:design_diagram", args=[design.pk, "svg"]),
    ]
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 404, url
    response = client.post(urls[0], form_data({**DEFAULT_SPEC, "nat": "none"}))
    assert response.status_code == 404
    design.refresh_from_db()
    assert design.version == 1
    assert DEFAULT_SPEC["name"].encode() not in client.get(reverse("designer:design_list")).content

    client.force_login(make_user("root", staff=True))
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_preview_places_errors_by_field_and_row(member_client):
    bad = {**DEFAULT_SPEC, "lambda_subnet_cidrs": ["10.0.1.0/24", "10.0.2.0/24"]}
    data = member_client.post(reverse("designer:preview"), form_data(bad)).json()
    assert data["valid"] is False
    assert data["html"] is None
    # The overlap is reported at one row and names the other, so the user finds both.
    (overlap,) = data["errors"]
    assert (overlap["field"], overlap["index"]) == ("api_subnet_cidrs", 0)
    assert "the second Lambda subnet" in overlap["message"]  # the form's words, not the spec's


def test_preview_of_a_valid_form_draws_the_topology(member_client):
    data = member_client.post(reverse("designer:preview"), form_data(DEFAULT_SPEC)).json()
    assert data["valid"] is True
    assert "<svg" in data["html"]
    assert "RT-Lambda" in data["html"]


def test_preview_cost_drops_when_nat_is_turned_off(member_client):
    def total(spec):
        html = member_client.post(reverse("designer:preview"), form_data(spec)).json()["html"]
        marker = "data-cost-total>"
        return float(html.split(marker, 1)[1].split("<", 1)[0].replace(",", ""))

    with_nat = total(DEFAULT_SPEC)
    without = total({**DEFAULT_SPEC, "nat": "none", "public_subnet_cidrs": []})
    assert without < with_nat


def test_preview_accepts_json_and_rejects_garbage_without_a_500(member_client):
    url = reverse("designer:preview")
    ok = member_client.post(url, {"spec": DEFAULT_SPEC}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["valid"] is True
    for body in ("{nope", "[]", '"spec"', '{"other": 1}'):
        response = member_client.post(url, body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "spec"
    # Read as strictly as API bodies and spec files: deep nesting was a 500 (RecursionError),
    # a key given twice silently kept the last value.
    for body, fragment in (
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
        ('{"spec": {"nat": "none", "nat": "single"}}', "has the key 'nat' twice"),
        (b'{"spec": "\xff"}', "not UTF-8"),
    ):
        response = member_client.post(url, body, content_type="application/json")
        assert response.status_code == 400
        assert fragment in response.json()["errors"][0]["message"]
    weird = member_client.post(url, {"spec": [1, {"a": None}]}, content_type="application/json")
    assert weird.status_code == 200 and weird.json()["valid"] is False


def test_preview_form_with_junk_values_never_fails(member_client):
    junk = form_data(DEFAULT_SPEC, api_port="4x3", vpc_cidr="ten/8", nat="maybe", region="mars-1")
    response = member_client.post(reverse("designer:preview"), junk)
    assert response.status_code == 200
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"api_port", "vpc_cidr", "nat", "region"} <= fields


def test_a_negative_or_huge_port_typed_in_the_form_is_out_of_range(member_client):
    """The user typed a number: the message says it is out of range, not that it is a string."""
    for typed in ("-1", "99999999"):
        body = member_client.post(
            reverse("designer:preview"), form_data(DEFAULT_SPEC, api_port=typed)
        )
        (error,) = body.json()["errors"]
        assert error["field"] == "api_port"
        assert error["message"].startswith(f"{typed} is out of range"), error


def test_duplicate_tag_rows_are_reported_not_dropped(member_client):
    data = form_data(DEFAULT_SPEC, tag_key=["team", "team"], tag_value=["a", "b"])
    body = member_client.post(reverse("designer:preview"), data).json()
    assert any(e["field"] == "tags" and "in 2 rows" in e["message"] for e in body["errors"])


def test_download_diagram_of_the_current_form(member_client):
    url = reverse("designer:diagram_download")
    png = member_client.post(url, form_data(DEFAULT_SPEC, format="png"))
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert "attachment" in png["Content-Disposition"]
    svg = member_client.post(url, form_data(DEFAULT_SPEC, format="svg"))
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    bad = member_client.post(url, form_data({**DEFAULT_SPEC, "vpc_cidr": "nope"}, format="png"))
    assert bad.status_code == 400 and b"VPC CIDR: 'nope' is not an IPv4 CIDR" in bad.content


def test_saved_design_diagram_download(member_client, team, member):
    design = design_create(team=team, user=member, spec_data=DEFAULT_SPEC)
    response = member_client.get(reverse("designer:design_diagram", args=[design.pk, "png"]))
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    assert member_client.get(f"/designs/{design.pk}/diagram.gif").status_code == 404
