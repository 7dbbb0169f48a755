"""`manage.py validate SPEC.json [--json]`: exit 0 valid, 1 invalid, 2 unreadable."""

import json
import sys

from django.core.management.base import BaseCommand

from designer.cli import EXIT_INVALID, SpecFileError, unreadable_json, validate_file, write_issues


class Command(BaseCommand):
    help = "Validate a Gantry spec file (spec v1)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("spec", help="path to the spec JSON file, or - for stdin")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, spec: str, **options):
        as_json = options["json"]
        try:
            result = validate_file(spec)
        except SpecFileError as exc:
            if as_json:
                self.stdout.write(unreadable_json(str(exc)))
            raise
        if as_json:
            self.stdout.write(json.dumps(result.to_json()))
        else:
            if result.valid:
                self.stdout.write(self.style.SUCCESS(f"{spec}: valid"))
            else:
                self.stderr.write(f"{spec}: invalid, {len(result.errors)} error(s)")
            write_issues(self.stdout if result.valid else self.stderr, result)
        if not result.valid:
            sys.exit(EXIT_INVALID)
