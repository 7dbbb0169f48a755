"""What the designer's management commands share: reading a spec file and reporting issues.

Exit codes are part of the CLI's contract: 0 valid, 1 invalid spec, 2 the file cannot be read
as a JSON object (or the command was misused).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from designer.spec import Issue, ValidationResult, json_kind, validate_spec
from gantry import strict_json

EXIT_INVALID = 1
EXIT_UNREADABLE = 2


class SpecFileError(CommandError):
    """The spec file is missing, unreadable, not JSON or not a JSON object (exit 2)."""

    def __init__(self, message: str):
        super().__init__(message, returncode=EXIT_UNREADABLE)


def read_spec_file(path: str) -> dict[str, Any]:
    """Load a spec file as a JSON object, or raise SpecFileError saying exactly what is wrong."""
    try:
        raw = Path(path).read_bytes() if path != "-" else sys.stdin.buffer.read()
    except FileNotFoundError:
        raise SpecFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecFileError(f"{path}: is a directory, not a spec file") from None
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecFileError(f"{path}: is not UTF-8 text; a spec is a JSON file") from None
    try:
        data = strict_json.loads(text)
    except strict_json.JSONRejected as exc:
        raise SpecFileError(f"{path}: {exc}; a spec is a JSON object of fields {{...}}") from None
    if not isinstance(data, dict):
        raise SpecFileError(f"{path}: holds {json_kind(data)}; a spec is a JSON object {{...}}")
    return data


def describe(issue: Issue) -> str:
    where = issue.field if issue.index is None else f"{issue.field}[{issue.index}]"
    return f"{where}: {issue.message}"


def validate_file(path: str) -> ValidationResult:
    return validate_spec(read_spec_file(path))


def write_issues(stream, result: ValidationResult) -> None:
    for issue in result.errors:
        stream.write(f"error   {describe(issue)}")
    for issue in result.warnings:
        stream.write(f"warning {describe(issue)}")


def unreadable_json(message: str) -> str:
    """The --json document for a file that could not be read, so automation always gets JSON."""
    return json.dumps(
        {"valid": False, "errors": [{"field": "spec", "message": message}], "warnings": []}
    )
