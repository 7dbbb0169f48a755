"""Where the CloudFormation export is offered: the design page (a download per version), the REST
API (``GET /api/designs/{id}/export/``) and the ``export`` command (a real ``manage.py``
process), each scoped and refusing bad input the way the rest of Gantry does."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import Client

from api.services import token_create
from audit.models import AuditEntry
from designer.models import Design
from designer.services import design_create, design_update
from designer.spec import DEFAULT_SPEC

ROOT = Path(__file__).resolve().parent.parent


def spec(**changes) -> dict:
    return {**copy.deepcopy(DEFAULT_SPEC), "name": "orders-api", **changes}


@pytest.fixture
def design(member, team) -> Design:
    """Version 1 in the article's layout (nat single), version 2 without NAT."""
    design = design_create(team=team, user=member, spec_data=spec())
    return design_update(design=design, user=member, spec_data=spec(nat="none"))


def api_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='ci')[1]}")


def nat_gateways(template: dict) -> int:
    return sum(r["Type"] == "AWS::EC2::NatGateway" for r in template["Resources"].values())


# --- the REST API ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_export_is_json_by_default_and_yaml_by_accept_or_output(design, member):
    api = api_client(member)
    url = f"/api/designs/{design.pk}/export/?format=cloudformation"

    as_json = api.get(url)
    assert as_json.status_code == 200
    assert as_json["Content-Type"] == "application/json; charset=utf-8"
    assert as_json["Content-Disposition"] == (
        'attachment; filename="orders-api-v2.cloudformation.json"'
    )
    template = as_json.json()
    assert "orders-api, version 2" in template["Description"]
    assert nat_gateways(template) == 0  # the current version: nat none

    by_accept = api.get(url, HTTP_ACCEPT="application/yaml")
    assert by_accept["Content-Type"] == "application/yaml; charset=utf-8"
    assert yaml.safe_load(by_accept.content) == template
    assert api.get(url, HTTP_ACCEPT="text/yaml, application/json;q=0.5")["Content-Type"].startswith(
        "application/yaml"
    )
    assert api.get(url, HTTP_ACCEPT="*/*")["Content-Type"].startswith("application/json")
    by_output = api.get(url + "&output=yaml", HTTP_ACCEPT="application/json")
    assert yaml.safe_load(by_output.content) == template

    old = api.get(url + "&version=1").json()
    assert "orders-api, version 1" in old["Description"]
    assert nat_gateways(old) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "format"),
        ("format=terraform", "format"),
        ("format=cloudformation&version=0", "version"),
        ("format=cloudformation&version=two", "version"),
        ("format=cloudformation&version=3", "version"),
        ("format=cloudformation&version=99999999999", "version"),
        ("format=cloudformation&output=xml", "output"),
    ],
)
def test_api_export_bad_parameters_are_a_400_by_field_in_json(design, member, query, field):
    response = api_client(member).get(
        f"/api/designs/{design.pk}/export/?{query}", HTTP_ACCEPT="application/yaml"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["message"] and list(body["errors"]) == [field], body


@pytest.mark.django_db
def test_api_export_says_which_versions_exist(design, member):
    body = api_client(member).get(
        f"/api/designs/{design.pk}/export/?format=cloudformation&version=5"
    )
    assert body.json()["errors"]["version"] == ["orders-api has versions 1 to 2"]


@pytest.mark.django_db
def test_api_export_is_team_scoped_and_needs_a_login(design, outsider, client):
    url = f"/api/designs/{design.pk}/export/?format=cloudformation"
    refused = api_client(outsider).get(url)
    assert refused.status_code == 404
    assert refused.json() == {"message": "Not found."}
    assert AuditEntry.objects.filter(action="auth.denied", actor=outsider).exists()
    assert client.get(url).status_code == 401


@pytest.mark.django_db
def test_api_export_is_documented_in_the_openapi_schema(member):
    schema = api_client(member).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/designs/{id}/export/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert {"format", "version", "output"} <= set(parameters)
    assert parameters["format"]["required"] is True
    assert parameters["format"]["schema"]["enum"] == ["cloudformation"]
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "application/yaml",
    }
    assert {"400", "401", "404"} <= set(operation["responses"])


# --- the design page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_design_page_offers_the_template_of_each_version(member_client, design):
    editor = member_client.get(f"/designs/{design.pk}/").content.decode()
    assert f'href="/designs/{design.pk}/versions/2/cloudformation.yaml"' in editor
    older = member_client.get(f"/designs/{design.pk}/?version=1").content.decode()
    assert f'href="/designs/{design.pk}/versions/1/cloudformation.json"' in older
    history = member_client.get(f"/designs/{design.pk}/versions/").content.decode()
    for version in (1, 2):
        for output in ("yaml", "json"):
            assert f"/designs/{design.pk}/versions/{version}/cloudformation.{output}" in history

    download = member_client.get(f"/designs/{design.pk}/versions/1/cloudformation.yaml")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/yaml; charset=utf-8"
    assert download["Content-Disposition"] == (
        'attachment; filename="orders-api-v1.cloudformation.yaml"'
    )
    template = yaml.safe_load(download.content)
    assert nat_gateways(template) == 1
    as_json = member_client.get(f"/designs/{design.pk}/versions/1/cloudformation.json").json()
    assert as_json == template


@pytest.mark.django_db
def test_the_page_download_is_team_scoped_and_refuses_what_does_not_exist(
    member_client, design, outsider, client
):
    base = f"/designs/{design.pk}/versions"
    assert member_client.get(f"{base}/3/cloudformation.yaml").status_code == 404
    assert member_client.get(f"{base}/1/cloudformation.xml").status_code == 404
    client.force_login(outsider)
    assert client.get(f"{base}/1/cloudformation.yaml").status_code == 404
    assert AuditEntry.objects.filter(action="auth.denied", actor=outsider).exists()


@pytest.mark.django_db
def test_a_version_that_no_longer_validates_is_explained_not_a_500(member_client, design):
    design.versions.filter(version=1).update(spec={**spec(), "vpc_cidr": "10.0.0.1/16"})
    page = member_client.get(f"/designs/{design.pk}/versions/1/cloudformation.yaml")
    assert page.status_code == 409
    assert b"no longer passes validation" in page.content
    api = api_client(design.created_by).get(
        f"/api/designs/{design.pk}/export/?format=cloudformation&version=1"
    )
    assert api.status_code == 400 and "vpc_cidr" in api.json()["errors"]


# --- the command line ------------------------------------------------------------------------


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gantry.settings"},
        timeout=120,
    )


def test_cli_export_writes_yaml_or_json_by_the_extension(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec()))
    out_yaml, out_json = tmp_path / "stack.yaml", tmp_path / "stack.json"
    run = manage("export", str(spec_path), "--format", "cloudformation", "-o", str(out_yaml))
    assert run.returncode == 0, run.stderr
    assert f"wrote {out_yaml}" in run.stdout
    assert "--s3-bucket" not in run.stdout  # small enough to send in the request
    template = yaml.safe_load(out_yaml.read_text())
    assert "orders-api, an unsaved spec" in template["Description"]
    assert manage("export", str(spec_path), "-o", str(out_json)).returncode == 0
    assert json.loads(out_json.read_text()) == template


def test_cli_export_says_how_to_deploy_a_template_over_the_request_limit(tmp_path):
    spec_path = tmp_path / "spec.json"
    alb = spec(api_kind="alb", api_subnet_cidrs=["10.0.2.0/24", "10.0.3.0/24"])
    spec_path.write_text(json.dumps(alb))
    out = tmp_path / "stack.json"
    run = manage("export", str(spec_path), "--format", "cloudformation", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 51_200
    assert "51,200-byte limit" in run.stdout and "--s3-bucket" in run.stdout


def test_cli_export_exit_codes_follow_plan(tmp_path):
    out = str(tmp_path / "stack.yaml")
    missing = manage("export", str(tmp_path / "nope.json"), "-o", out)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    not_json = tmp_path / "bad.json"
    not_json.write_text("{not json")
    assert manage("export", str(not_json), "-o", out).returncode == 2
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(spec(vpc_cidr="10.0.0.1/16")))
    run = manage("export", str(invalid), "-o", out)
    assert run.returncode == 1
    assert "vpc_cidr" in run.stderr and "did you mean 10.0.0.0/16" in run.stderr
    assert not Path(out).exists()
    wrong_extension = manage("export", str(invalid), "-o", str(tmp_path / "stack.txt"))
    assert wrong_extension.returncode == 2 and ".yaml, .yml or .json" in wrong_extension.stderr
    wrong_format = manage("export", str(invalid), "--format", "terraform", "-o", out)
    assert wrong_format.returncode == 2 and "cloudformation" in wrong_format.stderr
