"""Design pages that need only the designer: the list, the version history, the live preview
and the diagram downloads. Thin: they reshape requests and call services, selectors and the
preview. The editor page itself composes other apps too and lives in the page layer
(``pages/design.py``)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from designer import selectors
from designer.diagram import render_png, render_svg
from designer.editor import assumption_names
from designer.export import OUTPUT_FORMATS, media_type, template_filename, template_text
from designer.forms import assumptions_from_form, spec_from_form
from designer.models import DesignVersion
from designer.plan import plan
from designer.preview import design_preview
from designer.services import SpecInvalid
from designer.spec import validate_spec
from designer.wording import page_issues
from gantry import strict_json


@login_required
@require_GET
def design_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "designer/design_list.html", {"designs": selectors.design_list(user=request.user)}
    )


@login_required
@require_GET
def design_versions(request: HttpRequest, pk: int) -> HttpResponse:
    design = selectors.design_get(user=request.user, pk=pk, path=request.path)
    versions = list(selectors.design_version_list(design=design))
    for v in versions:
        v.spec_json = json.dumps(v.spec, indent=2, sort_keys=True)
    return render(
        request, "designer/design_versions.html", {"design": design, "versions": versions}
    )


def _json_error(message: str, status: int) -> JsonResponse:
    return JsonResponse(
        {"valid": False, "errors": [{"field": "spec", "message": message}]}, status=status
    )


@login_required
@require_POST
def preview(request: HttpRequest) -> JsonResponse:
    """Validate and preview a spec: the page posts its form; automation may post JSON
    ``{"spec": {...}, "assumptions": {...}}``."""
    if request.content_type == "application/json":
        try:
            body = strict_json.loads(request.body.decode("utf-8") or "null")
        except UnicodeDecodeError:
            return _json_error("the request body is not UTF-8 text; send JSON", 400)
        except strict_json.JSONRejected as exc:
            return _json_error(f"the request body {exc}", 400)
        if not isinstance(body, dict) or "spec" not in body:
            return _json_error('send a JSON object {"spec": {...}, "assumptions": {...}}', 400)
        result = design_preview(spec_data=body["spec"], assumptions_data=body.get("assumptions"))
    else:
        spec, problems = spec_from_form(request.POST)
        assumptions = assumptions_from_form(request.POST, assumption_names())
        result = design_preview(spec_data=spec, assumptions_data=assumptions, extra_errors=problems)
    return JsonResponse(result)


def _diagram_response(graph, fmt: str, name: str) -> HttpResponse:
    if fmt == "png":
        response = HttpResponse(render_png(graph), content_type="image/png")
    else:
        response = HttpResponse(render_svg(graph), content_type="image/svg+xml")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@login_required
@require_POST
def diagram_download(request: HttpRequest) -> HttpResponse:
    """The diagram of the form's current (unsaved) spec, as a file."""
    fmt = request.POST.get("format", "png")
    if fmt not in ("png", "svg"):
        return HttpResponse("format must be png or svg", status=400, content_type="text/plain")
    spec, problems = spec_from_form(request.POST)
    result = validate_spec(spec)
    if problems or not result.valid or result.spec is None:
        lines = [f"{i['label']}: {i['message']}" for i in page_issues([*problems, *result.errors])]
        return HttpResponse(
            "This design has errors; fix them and download again.\n\n" + "\n".join(lines),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    return _diagram_response(plan(result.spec), fmt, result.spec.name)


@login_required
@require_GET
def design_diagram(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    design = selectors.design_get(user=request.user, pk=pk, path=request.path)
    if fmt not in ("png", "svg"):
        raise Http404("diagrams come as .png or .svg")
    result = validate_spec(design.spec)
    if result.spec is None:  # a spec saved under older rules; say so instead of failing
        return HttpResponse(
            "This saved design no longer passes validation; open it in the editor to fix it.",
            status=409,
            content_type="text/plain",
        )
    return _diagram_response(plan(result.spec), fmt, design.name)


@login_required
@require_GET
def design_template(request: HttpRequest, pk: int, version: int, fmt: str) -> HttpResponse:
    """A saved version of the design as a CloudFormation template file (YAML or JSON)."""
    design = selectors.design_get(user=request.user, pk=pk, path=request.path)
    if fmt not in OUTPUT_FORMATS:
        raise Http404("templates come as .yaml or .json")
    try:
        template = selectors.design_version_template(design=design, version=version)
    except DesignVersion.DoesNotExist:
        raise Http404(f"{design.name} has no version {version}") from None
    except SpecInvalid:
        return HttpResponse(
            f"Version {version} of this design no longer passes validation; open it in the "
            "editor to fix it.",
            status=409,
            content_type="text/plain",
        )
    response = HttpResponse(
        template_text(template, fmt), content_type=f"{media_type(fmt)}; charset=utf-8"
    )
    filename = template_filename(design=design.name, version=version, output=fmt)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
