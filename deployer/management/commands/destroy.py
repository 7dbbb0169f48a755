"""`manage.py destroy ID [--wait] [--json]`."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from deployer import services
from deployer.cli import report
from deployer.management.commands.deploy import CLI_USER
from deployer.models import Deployment
from gantry.commands import ContextCommand


class Command(ContextCommand):
    help = "Destroy every resource of a deployment, in reverse order."

    def add_arguments(self, parser):
        parser.add_argument("id", type=int)
        parser.add_argument("--user", default=CLI_USER)
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--timeout", type=float, default=7200)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        deployment = Deployment.objects.filter(pk=opts["id"]).first()
        if deployment is None:
            raise CommandError(f"no deployment {opts['id']}", returncode=2)
        user, _ = get_user_model().objects.get_or_create(username=opts["user"])
        try:
            services.deployment_destroy(deployment=deployment, user=user)
        except (services.InvalidTransition, services.DeploymentConflict) as exc:
            raise CommandError(str(exc), returncode=1) from None
        report(self, deployment, opts, success="destroyed")
