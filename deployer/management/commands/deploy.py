"""`manage.py deploy SPEC.json [--team T] [--target NAME] [--wait] [--json]`."""

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from deployer import services
from deployer.cli import report
from deployer.models import Target
from designer.cli import EXIT_INVALID, read_spec_file, write_issues
from designer.models import Design
from designer.services import SpecInvalid, design_create, design_update
from designer.spec import validate_spec
from gantry.commands import ContextCommand
from teams.services import membership_ensure, team_ensure

CLI_USER = "gantry-cli"


class Command(ContextCommand):
    help = "Create or update the design named in a spec and deploy it."

    def add_arguments(self, parser):
        parser.add_argument("spec")
        parser.add_argument("--team", default="default", help="team name (created if missing)")
        parser.add_argument("--target", default=services.SANDBOX_TARGET_NAME)
        parser.add_argument("--user", default=CLI_USER, help="who the audit trail names")
        parser.add_argument("--keep-on-failure", action="store_true")
        parser.add_argument("--wait", action="store_true", help="return when it ends")
        parser.add_argument("--timeout", type=float, default=3600)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        spec_data = read_spec_file(opts["spec"])
        result = validate_spec(spec_data)
        if not result.valid:
            if opts["json"]:
                self.stdout.write(json.dumps(result.to_json()))
            write_issues(self.stderr, result)
            sys.exit(EXIT_INVALID)
        user, _ = get_user_model().objects.get_or_create(username=opts["user"])
        team = team_ensure(name=opts["team"])
        membership_ensure(team=team, user=user, role="admin")
        design = Design.objects.filter(
            team=team, name=result.spec.name, deleted_at__isnull=True
        ).first()
        try:
            if design is None:
                design = design_create(team=team, user=user, spec_data=spec_data)
            else:
                design = design_update(design=design, user=user, spec_data=spec_data)
        except SpecInvalid as exc:
            raise CommandError(
                "; ".join(f"{i.field}: {i.message}" for i in exc.issues), returncode=1
            ) from None
        if opts["target"] == services.SANDBOX_TARGET_NAME:
            target = services.target_sandbox_ensure(team=team)
        else:
            target = Target.objects.filter(team=team, name=opts["target"]).first()
            if target is None:
                raise CommandError(
                    f"team {team} has no target named {opts['target']!r}", returncode=2
                )
        try:
            deployment = services.deployment_start(
                design=design, target=target, user=user, keep_on_failure=opts["keep_on_failure"]
            )
        except services.DeploymentConflict as exc:
            raise CommandError(str(exc), returncode=1) from None
        if not opts["json"]:
            self.stdout.write(
                f"deployment {deployment.pk} started ({design.name} v{design.version} -> {target.name})"
            )
        report(self, deployment, opts, success="succeeded")
