"""What management commands that change state share."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from gantry.request_context import bind, new_request_id


class ContextCommand(BaseCommand):
    """A command run is one request: it gets a fresh request id and the "cli" channel, so the
    audit entries and log lines it writes carry them, as a page's or the API's do."""

    def execute(self, *args, **options):
        with bind(request_id=new_request_id(), channel="cli"):
            return super().execute(*args, **options)
