"""Create the demo team and user for a local run (`make run` calls this)."""

from django.core.management.base import BaseCommand

from teams.services import demo_setup


class Command(BaseCommand):
    help = "Create or reset the local demo user and team, and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-gantry")
        parser.add_argument("--team", default="demo-team")

    def handle(self, *args, username: str, password: str, team: str, **options):
        user, team_obj = demo_setup(username=username, password=password, team_name=team)
        self.stdout.write(
            f"Demo login: user '{user.get_username()}', password '{password}' (team {team_obj})"
        )
