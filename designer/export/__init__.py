"""Exports: a design version's resource graph as a document another tool deploys.

``cloudformation_template(graph, design=..., version=...)`` is a pure function from the graph
``designer.plan.plan`` builds to a CloudFormation template (a ``dict``); ``template_text`` writes
it as JSON or YAML. The page, the API and the ``export`` command all call these, and nothing
else knows how a template is made.
"""

from designer.export.cloudformation import (
    OUTPUTS,
    TEMPLATE_BODY_MAX,
    TEMPLATE_MAX,
    cloudformation_template,
    spec_template,
)
from designer.export.serialize import (
    OUTPUT_FORMATS,
    media_type,
    template_filename,
    template_text,
)

__all__ = [
    "OUTPUTS",
    "OUTPUT_FORMATS",
    "TEMPLATE_BODY_MAX",
    "TEMPLATE_MAX",
    "cloudformation_template",
    "media_type",
    "spec_template",
    "template_filename",
    "template_text",
]
