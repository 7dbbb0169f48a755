"""`manage.py deploy SPEC.json [--team T] [--target NAME] [--dry-run] [--allow-interruption]
[--wait] [--json]`."""

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
from teams.models import Team
from teams.services import membership_ensure, team_ensure

CLI_USER = "gantry-cli"


class Command(ContextCommand):
    help = (
        "Create or update the design named in a spec and deploy it: a new deployment, or the "
        "design's live deployment on the target changed in place."
    )

    def add_arguments(self, parser):
        parser.add_argument("spec")
        parser.add_argument("--team", default="default", help="team name (created if missing)")
        parser.add_argument("--target", default=services.SANDBOX_TARGET_NAME)
        parser.add_argument("--user", default=CLI_USER, help="who the audit trail names")
        parser.add_argument("--keep-on-failure", action="store_true")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print the change set and change nothing (not even the design)",
        )
        parser.add_argument(
            "--allow-interruption",
            action="store_true",
            help="apply a change set that interrupts traffic (a replaced VPC, subnet or API "
            "instance; NAT removed while the Lambda uses it)",
        )
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
        if opts["dry_run"]:
            self._dry_run(result.spec, opts)
            return
        user, _ = get_user_model().objects.get_or_create(username=opts["user"])
        team = team_ensure(name=opts["team"])
        membership_ensure(team=team, user=user, role="admin")
        target = self._target(team, opts["target"], create=True)
        design = Design.objects.filter(
            team=team, name=result.spec.name, deleted_at__isnull=True
        ).first()
        # Refuse before saving anything: a version that cannot be applied is not kept.
        live = services.deployment_live(design=design, target=target) if design else None
        changes = services.change_set_for(deployment=live, spec=result.spec)
        self._refuse(changes, opts)
        try:
            if design is None:
                design = design_create(team=team, user=user, spec_data=spec_data)
            elif design.spec != result.spec.to_json():
                design = design_update(design=design, user=user, spec_data=spec_data)
        except SpecInvalid as exc:
            raise CommandError(
                "; ".join(f"{i.field}: {i.message}" for i in exc.issues), returncode=1
            ) from None
        try:
            started = services.deployment_apply(
                design=design,
                target=target,
                user=user,
                keep_on_failure=opts["keep_on_failure"],
                allow_interruption=opts["allow_interruption"],
            )
        except services.DeploymentConflict as exc:
            raise CommandError(str(exc), returncode=1) from None
        except (services.ChangeSetRefused, services.InterruptionNotConfirmed) as exc:
            self._refuse(exc.change_set, opts)
            raise
        except services.InvalidTransition as exc:
            raise CommandError(str(exc), returncode=1) from None
        deployment = started.deployment
        if not opts["json"]:
            if started.run is None:
                self.stdout.write(
                    f"deployment {deployment.pk} is already at {design.name} "
                    f"v{deployment.design_version}: nothing to change"
                )
            elif started.created:
                self.stdout.write(
                    f"deployment {deployment.pk} started ({design.name} v{design.version} -> "
                    f"{target.name})"
                )
            else:
                self.stdout.write(
                    f"deployment {deployment.pk}: updating to {design.name} v{design.version} "
                    f"({len(started.change_set.changes)} changes)"
                )
                for line in _change_lines(started.change_set):
                    self.stdout.write(f"  {line}")
        extra = {
            "changes": started.change_set.to_json()["changes"],
            "run": started.run.number if started.run else None,
        }
        report(self, deployment, opts, success="succeeded", extra=extra)

    def _target(self, team, name: str, *, create: bool) -> Target | None:
        if name == services.SANDBOX_TARGET_NAME:
            if create:
                return services.target_sandbox_ensure(team=team)
            return Target.objects.filter(team=team, name=name).first()
        target = Target.objects.filter(team=team, name=name).first()
        if target is None:
            raise CommandError(f"team {team} has no target named {name!r}", returncode=2)
        return target

    def _dry_run(self, spec, opts) -> None:
        team = Team.objects.filter(name=opts["team"]).first()
        design = (
            Design.objects.filter(team=team, name=spec.name, deleted_at__isnull=True).first()
            if team
            else None
        )
        if team is None and opts["target"] != services.SANDBOX_TARGET_NAME:
            # The deploy itself would make the team, then find no such target in it.
            raise CommandError(
                f"team {opts['team']} has no target named {opts['target']!r}", returncode=2
            )
        target = self._target(team, opts["target"], create=False) if team else None
        live = services.deployment_live(design=design, target=target) if design and target else None
        changes = services.change_set_for(deployment=live, spec=spec)
        body = {"deployment": live.pk if live else None, **changes.to_json()}
        if opts["json"]:
            self.stdout.write(json.dumps(body))
            return
        where = f"deployment {live.pk}" if live else "a new deployment"
        self.stdout.write(f"{where}: {len(changes.changes)} changes")
        for line in _change_lines(changes):
            self.stdout.write(f"  {line}")
        for reason in changes.refused:
            self.stdout.write(f"  refused: {reason}")

    def _refuse(self, changes, opts) -> None:
        """Exit 1, naming why, for a change set that is refused or interrupts without
        --allow-interruption."""
        if changes.refused:
            message = "this version cannot be applied: " + " ".join(changes.refused)
        elif changes.interruptions and not opts["allow_interruption"]:
            message = (
                "this version interrupts traffic; run again with --allow-interruption to apply "
                "it: "
                + "; ".join(
                    f"{c.logical_id} ({c.action}): {c.interrupts}" for c in changes.interruptions
                )
            )
        else:
            return
        if opts["json"]:
            self.stdout.write(json.dumps({"error": message, **changes.to_json()}))
        self.stderr.write(message)
        sys.exit(1)


SYMBOLS = {"add": "+", "modify": "~", "replace": "-/+", "remove": "-"}


def _change_lines(changes) -> list[str]:
    lines = []
    for change in changes.changes:
        lines.append(
            f"{SYMBOLS.get(change.action, '?'):>3} {change.logical_id} ({change.type})"
            + (f": {change.reason}" if change.reason else "")
            + (f" [interrupts: {change.interrupts}]" if change.interrupts else "")
        )
        for prop in change.properties:
            forced = " (forces replacement)" if prop.replacement else ""
            lines.append(
                f"      {prop.name}: {json.dumps(prop.before)} -> {json.dumps(prop.after)}{forced}"
            )
    return lines
