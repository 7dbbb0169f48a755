"""The designer's CLI, run as a user or a pipeline runs it: a real `manage.py` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from designer.spec import DEFAULT_SPEC

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gantry.settings"},
        timeout=120,
    )


@pytest.fixture
def spec_file(tmp_path):
    def write(content, name="spec.json") -> str:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        return str(path)

    return write


def test_validate_accepts_the_article_layout(spec_file):
    proc = manage("validate", spec_file(DEFAULT_SPEC), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["valid"] is True
    assert out["errors"] == []
    assert isinstance(out["warnings"], list)


def test_validate_reports_each_error_by_field_and_exits_1(spec_file):
    spec = {
        **DEFAULT_SPEC,
        "vpc_cidr": "10.0.0.1/16",
        "lambda_subnet_cidrs": ["10.0.2.0/24"],  # the same range as the API subnet
    }
    proc = manage("validate", spec_file(spec), "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert out["valid"] is False
    fields = {e["field"] for e in out["errors"]}
    assert "vpc_cidr" in fields
    assert fields <= {"vpc_cidr", "lambda_subnet_cidrs", "api_subnet_cidrs"}
    host_bits = next(e for e in out["errors"] if e["field"] == "vpc_cidr")
    assert "10.0.0.0/16" in host_bits["message"]


def test_validate_human_output_names_the_field(spec_file):
    proc = manage("validate", spec_file({**DEFAULT_SPEC, "api_port": 70000}))
    assert proc.returncode == 1
    assert "api_port" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "holds a list"),
        ("null", "holds null"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        ("", "not valid JSON"),
        ('"spec"', "holds a string"),
        ("true", "holds a boolean"),
        ("42", "holds a number"),
        # Python's json reads these, but they are not JSON, or not one unambiguous object;
        # each used to be a traceback or a silently accepted spec.
        ('{"api_port": NaN}', "NaN is not a JSON value"),
        ('{"api_port": -Infinity}', "-Infinity is not a JSON value"),
        ('{"nat": "none", "tags": {}, "nat": "per_az"}', "has the key 'nat' twice"),
        ('{"tags": {"team": "a", "team": "b"}}', "has the key 'team' twice"),
        # Short ids: the test id goes into the child's environment (PYTEST_CURRENT_TEST).
        pytest.param('{"api_port": 1' + "0" * 5000 + "}", "number too long", id="5001-digits"),
        pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deep-list"),
        pytest.param(
            '{"tags": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
            "nested too deeply",
            id="deep-object",
        ),
    ],
)
def test_validate_exits_2_when_the_file_is_not_a_json_object(spec_file, content, fragment):
    proc = manage("validate", spec_file(content), "--json")
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["valid"] is False and out["errors"][0]["field"] == "spec"


def test_validate_exits_2_for_a_missing_file(tmp_path):
    proc = manage("validate", str(tmp_path / "nope.json"))
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_reads_stdin():
    proc = manage("validate", "-", "--json", stdin=json.dumps(DEFAULT_SPEC))
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["valid"] is True


def test_plan_json_has_the_graph_routes_rules_and_cost(spec_file):
    proc = manage("plan", spec_file(DEFAULT_SPEC), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    ids = {r["logical_id"] for r in doc["resources"]}
    assert {"Vpc", "LambdaSubnet1", "ApiSubnet1", "NatGateway1", "LambdaFunction"} <= ids
    for resource in doc["resources"]:
        assert set(resource) >= {"logical_id", "type", "depends_on", "properties"}
        assert resource["type"].startswith("AWS::")
    seen: set[str] = set()
    for resource in doc["resources"]:  # creation order: dependencies come first
        assert set(resource["depends_on"]) <= seen, resource["logical_id"]
        seen.add(resource["logical_id"])
    assert doc["route_tables"] and doc["security_groups"]
    assert doc["cost"]["total_monthly_usd"] > 0


def test_plan_of_an_invalid_spec_exits_1_with_errors(spec_file):
    proc = manage("plan", spec_file({**DEFAULT_SPEC, "nat": "sometimes"}), "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["errors"][0]["field"] == "nat"


def test_plan_human_output_shows_route_tables(spec_file):
    proc = manage("plan", spec_file(DEFAULT_SPEC))
    assert proc.returncode == 0, proc.stderr
    assert "0.0.0.0/0" in proc.stdout
    assert "local" in proc.stdout


def test_plan_human_output_compares_the_nat_choice_with_none(spec_file):
    proc = manage("plan", spec_file({**DEFAULT_SPEC, "region": "eu-west-1"}))
    assert proc.returncode == 0, proc.stderr
    # One NAT gateway: 730 h x $0.045 + 100 GB x $0.045 + its address 730 h x $0.005.
    assert "nat single costs 41.00 a month more than nat none" in proc.stdout
    assert "eu-west-1 is approximated by them" in proc.stdout

    proc = manage("plan", spec_file({**DEFAULT_SPEC, "nat": "none"}))
    assert proc.returncode == 0, proc.stderr
    assert "nat none saves 41.00 a month against nat single" in proc.stdout


def test_diagram_writes_svg_and_png(spec_file, tmp_path):
    spec = spec_file(DEFAULT_SPEC)
    svg, png = tmp_path / "d.svg", tmp_path / "d.png"
    assert manage("diagram", spec, "-o", str(svg)).returncode == 0
    assert manage("diagram", spec, "-o", str(png)).returncode == 0
    assert "<svg" in svg.read_text()
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_diagram_rejects_an_unknown_output_format(spec_file, tmp_path):
    proc = manage("diagram", spec_file(DEFAULT_SPEC), "-o", str(tmp_path / "d.gif"))
    assert proc.returncode == 2
    assert ".svg or .png" in proc.stderr
