"""`manage.py drift ID [--json]`: compare a live deployment's resources with what was applied."""

from __future__ import annotations

import json
import sys

from django.core.management.base import CommandError

from deployer import services
from deployer.models import Deployment
from gantry.commands import ContextCommand


class Command(ContextCommand):
    help = (
        "Read every resource of a live deployment from AWS and compare it with what Gantry "
        "applied. Exit 0 in sync, 1 drifted."
    )

    def add_arguments(self, parser):
        parser.add_argument("id", type=int)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        deployment = Deployment.objects.filter(pk=opts["id"]).first()
        if deployment is None:
            raise CommandError(f"no deployment {opts['id']}", returncode=2)
        try:
            report = services.deployment_drift_check(deployment=deployment)
        except (services.DeploymentBusy, services.AwsUnreadable) as exc:
            raise CommandError(str(exc), returncode=2) from None
        body = {"id": deployment.pk, **report.to_json()}
        if opts["json"]:
            self.stdout.write(json.dumps(body))
        else:
            self.stdout.write(f"deployment {deployment.pk}: {body['status'].replace('_', ' ')}")
            for finding in report.drifted:
                self.stdout.write(f"  {finding.logical_id} ({finding.type}): {finding.drift}")
                for d in finding.differences:
                    self.stdout.write(
                        f"      {d.property}: expected {json.dumps(d.expected)}, "
                        f"actual {json.dumps(d.actual)}"
                    )
        if report.drifted:
            sys.exit(1)
