"""`manage.py deploy --dry-run` answers as the deploy itself would, and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from designer.models import Design
from designer.spec import DEFAULT_SPEC
from teams.models import Team

pytestmark = pytest.mark.django_db


def test_a_dry_run_names_a_missing_target_as_the_deploy_would(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(DEFAULT_SPEC))
    with pytest.raises(CommandError) as raised:
        call_command("deploy", str(spec), "--team", "nobody", "--target", "prod", "--dry-run")
    assert "no target named 'prod'" in str(raised.value)
    assert raised.value.returncode == 2
    assert not Team.objects.filter(name="nobody").exists()
    assert not Design.objects.exists()
