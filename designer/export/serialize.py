"""A template as the text a pipeline stores: JSON or YAML, byte for byte the same every time.

YAML is written with CloudFormation's long-form intrinsic functions (``Ref:``, ``Fn::GetAtt:``),
which every YAML parser reads as plain mappings (the short ``!Ref`` tags need CloudFormation's
own loader), keys in the template's order, and multi-line strings (the function's code, the
instance's user data) as literal blocks so a reviewer reads them as they will run.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

#: Output format -> (media type, file extension).
OUTPUT_FORMATS: dict[str, tuple[str, str]] = {
    "yaml": ("application/yaml", "yaml"),
    "json": ("application/json", "json"),
}


class _TemplateDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as ``|`` blocks and never aliases a value."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TemplateDumper.add_representer(str, _str)


def template_text(template: dict[str, Any], output: str) -> str:
    """``template`` as ``output`` (``"json"`` or ``"yaml"``) text, ending in a newline."""
    if output == "json":
        return json.dumps(template, indent=2, ensure_ascii=False) + "\n"
    if output == "yaml":
        return yaml.dump(
            template,
            Dumper=_TemplateDumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=4096,
        )
    raise ValueError(f"output must be one of {', '.join(OUTPUT_FORMATS)}, not {output!r}")


def media_type(output: str) -> str:
    """The Content-Type of ``output`` text (RFC 9512's ``application/yaml`` for YAML)."""
    return OUTPUT_FORMATS[output][0]


def template_filename(*, design: str, version: int, output: str) -> str:
    """The download's file name: ``<design>-v<version>.cloudformation.<yaml|json>``."""
    return f"{design}-v{version}.cloudformation.{OUTPUT_FORMATS[output][1]}"
