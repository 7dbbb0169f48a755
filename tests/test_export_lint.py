"""AWS's own linter and a security scanner on the exported templates.

cfn-lint (with the resource schemas of every region) must report no error and no warning, and
checkov no failed check, on the templates of every variant of nat x api_kind, in YAML and JSON,
and of a sample of the valid specs the property tests generate (any region, subnet layout, port
and tags). The checks that do not fit the architecture are skipped in the resources' Metadata
(designer/export/scanner.py); the scanner must report exactly those as skipped.

checkov runs from its own virtualenv (``.venv/checkov``, made by ``make install``): its pins
conflict with Gantry's dependencies.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str
from hypothesis import HealthCheck, given, settings

from designer.export import spec_template, template_text
from designer.export.scanner import SKIPS
from designer.spec import validate_spec
from tests.specs import TWO_AZ
from tests.strategies import valid_specs

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"

VARIANTS = [
    dataclasses.replace(TWO_AZ, nat=nat, api_kind=kind, tags=(("team", "orders"),))
    for nat in ("none", "single", "per_az")
    for kind in ("ec2", "alb")
]


def lint_problems(text: str, region: str) -> list[str]:
    """cfn-lint's errors and warnings (informational notes are neither) on one template."""
    matches = lint(text, config=ManualArgs(regions=[region]))
    template = decode_str(text)[0]
    return [
        f"{m.rule.id} line {m.linenumber}: {m.message}"
        for m in matches
        if m.rule.id[0] in "EW" and not _boolean_tag_key_misread(m, template)
    ]


def _boolean_tag_key_misread(match, template: dict) -> bool:
    """cfn-lint's uniqueness check (E3024) compares the strings "true" and "false" as
    booleans (``cfnlint.jsonschema._utils.equal``), so a tag key "false", which AWS accepts,
    is taken for a duplicate of every other key but "true". Such a match is dropped only when
    the keys of that Tags list, compared as the strings they are, really are all different;
    any real duplicate is still reported."""
    if match.rule.id != "E3024" or not match.path or match.path[-1] != "Tags":
        return False
    found = template
    for part in match.path:
        found = found[part]
    keys = [tag["Key"] for tag in found]
    read_as_boolean = any(isinstance(k, str) and k.lower() == "false" for k in keys)
    return read_as_boolean and len(set(keys)) == len(keys)


def checkov(directory: Path) -> dict:
    """checkov's CloudFormation results on every template in ``directory``."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make install` creates checkov's virtualenv")
    run = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--compact",
            # No calls to the vendor's platform: this machine has no internet, and the checks
            # themselves ship with the package.
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Exit 1 means failed checks; the JSON says which. Anything else is a broken run.
    assert run.returncode in (0, 1), run.stderr
    report = json.loads(run.stdout)
    assert isinstance(report, dict), "one framework, one report"
    return report


def assert_scanner_passes(directory: Path, templates: int) -> None:
    report = checkov(directory)
    summary, results = report["summary"], report["results"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in results["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    # Every template was read, and only the documented checks were skipped, with our reasons.
    files = {c["file_path"] for c in results["passed_checks"]}
    assert len(files) == templates
    reasons = {check: reason for skips in SKIPS.values() for check, reason in skips}
    for skipped in results["skipped_checks"]:
        assert skipped["check_id"] in reasons, skipped["check_id"]
        assert skipped["check_result"]["suppress_comment"] == reasons[skipped["check_id"]]
    per_file = Counter(c["file_path"] for c in results["skipped_checks"])
    assert all(count >= 4 for count in per_file.values()), per_file


def test_every_variant_passes_cfn_lint_and_checkov(tmp_path):
    written = 0
    for spec in VARIANTS:
        template = spec_template(spec, version=1)
        for output in ("yaml", "json"):
            text = template_text(template, output)
            problems = lint_problems(text, spec.region)
            assert not problems, f"{spec.nat}/{spec.api_kind} {output}:\n" + "\n".join(problems)
            (tmp_path / f"{spec.nat}-{spec.api_kind}.{output}").write_text(text)
            written += 1
    assert_scanner_passes(tmp_path, written)


def test_a_tag_key_false_passes_and_a_real_duplicate_tag_is_still_reported():
    """Found by the property test below: cfn-lint read the tag key "false" as a boolean and
    reported every tagged resource's tags as duplicates."""
    spec = dataclasses.replace(TWO_AZ, tags=(("false", ""), ("team", "orders")))
    for output in ("yaml", "json"):
        assert (
            lint_problems(template_text(spec_template(spec, version=None), output), spec.region)
            == []
        )
    template = spec_template(spec, version=None)
    template["Resources"]["Vpc"]["Properties"]["Tags"].append({"Key": "false", "Value": "x"})
    problems = lint_problems(json.dumps(template), spec.region)
    assert [p.split(" line ")[0] for p in problems] == ["E3024"]


def test_templates_of_generated_valid_specs_pass_cfn_lint_and_checkov(tmp_path):
    written: list[Path] = []

    @settings(max_examples=20, suppress_health_check=list(HealthCheck))
    @given(valid_specs())
    def lint_one(data):
        spec = validate_spec(data).spec
        output = ("yaml", "json")[len(written) % 2]
        # Saved versions and, as `manage.py export` writes them, unsaved specs.
        version = len(written) + 1 if len(written) % 3 else None
        text = template_text(spec_template(spec, version=version), output)
        problems = lint_problems(text, spec.region)
        assert not problems, f"{json.dumps(data)}:\n" + "\n".join(problems)
        path = tmp_path / f"spec-{len(written) + 1}.{output}"
        path.write_text(text)
        written.append(path)

    lint_one()
    assert len(written) >= 10
    assert_scanner_passes(tmp_path, len(written))
