"""`manage.py diagram SPEC.json -o FILE.svg|FILE.png`."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from designer.cli import EXIT_INVALID, EXIT_UNREADABLE, validate_file, write_issues
from designer.diagram import render_png, render_svg
from designer.plan import plan


class Command(BaseCommand):
    help = "Draw a Gantry spec's topology to an SVG or PNG file."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("spec", help="path to the spec JSON file, or - for stdin")
        parser.add_argument("-o", "--output", required=True, help="FILE.svg or FILE.png")

    def handle(self, *args, spec: str, output: str, **options):
        suffix = Path(output).suffix.lower()
        if suffix not in (".svg", ".png"):
            raise CommandError(
                f"{output}: the output must end in .svg or .png", returncode=EXIT_UNREADABLE
            )
        result = validate_file(spec)
        if not result.valid or result.spec is None:
            write_issues(self.stderr, result)
            sys.exit(EXIT_INVALID)
        graph = plan(result.spec)
        try:
            if suffix == ".svg":
                Path(output).write_text(render_svg(graph), encoding="utf-8")
            else:
                Path(output).write_bytes(render_png(graph))
        except OSError as exc:
            raise CommandError(
                f"{output}: cannot be written ({exc.strerror})", returncode=EXIT_UNREADABLE
            ) from None
        self.stdout.write(f"wrote {output}")
