"""`manage.py export SPEC.json --format cloudformation -o FILE.yaml|FILE.json`."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from designer.cli import EXIT_INVALID, EXIT_UNREADABLE, validate_file, write_issues
from designer.export import TEMPLATE_BODY_MAX, spec_template, template_text

#: Output file extension -> the text written.
EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


class Command(BaseCommand):
    help = (
        "Export a Gantry spec as a CloudFormation template (YAML or JSON, by the output "
        "file's extension)."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("spec", help="path to the spec JSON file, or - for stdin")
        parser.add_argument(
            "--format",
            choices=["cloudformation"],
            default="cloudformation",
            help="what to export to (default: cloudformation)",
        )
        parser.add_argument(
            "-o", "--output", required=True, help="FILE.yaml, FILE.yml or FILE.json"
        )

    def handle(self, *args, spec: str, output: str, **options):
        text_format = EXTENSIONS.get(Path(output).suffix.lower())
        if text_format is None:
            raise CommandError(
                f"{output}: the output must end in .yaml, .yml or .json",
                returncode=EXIT_UNREADABLE,
            )
        result = validate_file(spec)
        if not result.valid or result.spec is None:
            write_issues(self.stderr, result)
            sys.exit(EXIT_INVALID)
        write_issues(self.stderr, result)  # warnings
        text = template_text(spec_template(result.spec, version=None), text_format)
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                f"{output}: cannot be written ({exc.strerror})", returncode=EXIT_UNREADABLE
            ) from None
        size = len(text.encode())
        self.stdout.write(f"wrote {output} ({size:,} bytes)")
        if size > TEMPLATE_BODY_MAX:
            self.stdout.write(
                f"It is over CloudFormation's {TEMPLATE_BODY_MAX:,}-byte limit for a template "
                "sent in the request: deploy it from S3, e.g. `aws cloudformation deploy "
                "--template-file FILE --stack-name NAME --s3-bucket BUCKET "
                "--capabilities CAPABILITY_IAM`."
            )
