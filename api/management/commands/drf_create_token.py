"""``manage.py drf_create_token USER``: make an API token for a user and print it once.

Same name and output as Django REST framework's command; Gantry keeps only the token's digest,
so ``-r`` (regenerate) revokes the user's tokens of that name and makes a new one.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken
from api.services import token_create, token_revoke
from gantry.request_context import bind


class Command(BaseCommand):
    help = "Create an API token for the given user and print it (it is not shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "-r",
            "--reset",
            action="store_true",
            help="Revoke the user's active tokens of this name before making the new one.",
        )
        parser.add_argument("--name", default="cli", help="The token's name (default: cli).")

    def handle(self, *args, username, reset, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Cannot create the Token: user {username} does not exist")
        with bind(channel="cli"):
            if reset:
                for token in ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True):
                    token_revoke(token=token, user=user)
            try:
                _token, key = token_create(user=user, name=name)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Generated token {key} for user {username}")
