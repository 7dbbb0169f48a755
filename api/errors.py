"""Every API error is JSON with a ``message``; wrong input also has field-level ``errors``.

The services raise domain exceptions (``SpecInvalid``, ``DeploymentConflict``...); this module is
the one place that turns them into HTTP answers, so no view repeats a rule.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.services import TokenLimitReached
from deployer.services import (
    AwsUnreadable,
    ChangeSetRefused,
    ChangeSetStale,
    DeploymentBusy,
    DeploymentConflict,
    InterruptionNotConfirmed,
    InvalidTransition,
    TargetInUse,
)
from designer.services import DesignInUse, SpecInvalid
from designer.spec import Issue
from gantry.body_limit import body_limit, too_large_answer

INVALID = "The request is invalid; see errors for each field."


def spec_errors(issues: list[Issue]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for issue in issues:
        errors.setdefault(issue.field, []).append(issue.message)
    return errors


def spec_invalid_body(issues: list[Issue]) -> dict[str, Any]:
    return {
        "message": "The spec is invalid; fix the fields listed in errors.",
        "errors": spec_errors(issues),
        "issues": [issue.to_json() for issue in issues],
    }


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": ["message", ...]} ("field.sub" when nested)."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            for field, messages in _flatten(item, f"{prefix}[{index}]").items():
                out.setdefault(field, []).extend(messages)
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def _deployment_ref(deployment) -> dict[str, Any]:
    return {
        "id": deployment.pk,
        "status": deployment.status,
        "url": f"/api/deployments/{deployment.pk}/",
    }


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, SpecInvalid):
        return Response(spec_invalid_body(exc.issues), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TokenLimitReached):
        return Response({"message": exc.messages[0]}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        errors = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response({"message": INVALID, "errors": errors}, status=400)
    if isinstance(exc, DeploymentConflict):
        return Response(
            {"message": str(exc), "active_deployment": _deployment_ref(exc.active)},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DesignInUse):
        return Response(
            {"message": str(exc), "deployment": _deployment_ref(exc.deployment)},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, InvalidTransition | TargetInUse | ChangeSetStale | DeploymentBusy):
        return Response({"message": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, AwsUnreadable):
        # Not the caller's fault, and it passes: the target's AWS could not be read just now.
        return Response(
            {"message": f"{exc}; try again later"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, InterruptionNotConfirmed):
        # Wrong input of one field: the change set interrupts traffic, and the request did
        # not say that is fine.
        return Response(
            {
                "message": str(exc),
                "errors": {
                    "allow_interruption": [
                        "this change set interrupts traffic; set allow_interruption to true "
                        "to apply it"
                    ]
                },
                "interruptions": [
                    {"logical_id": c.logical_id, "action": c.action, "interrupts": c.interrupts}
                    for c in exc.changes
                ],
                "change_set": exc.change_set.to_json(),
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ChangeSetRefused):
        return Response(
            {"message": str(exc), "refused": exc.reasons, "change_set": exc.change_set.to_json()},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"message": INVALID, "errors": _flatten(response.data)}
    else:
        data = response.data
        message = data.get("detail") if isinstance(data, dict) else data
        response.data = {"message": str(message)}
    return response


def _json_under_api(django_default, status: int, message):
    """A Django error handler that answers JSON ``{"message": ...}`` under ``/api/`` and
    Django's own page elsewhere. ``message`` may take the request (500 quotes its id)."""

    def handler(request, exception=None):
        if request.path.startswith("/api/"):
            text = message(request) if callable(message) else message
            return JsonResponse({"message": text}, status=status)
        if exception is None:
            return django_default(request)
        return django_default(request, exception)

    return handler


_bad_request = _json_under_api(defaults.bad_request, 400, "Bad request.")


def handler400(request, exception=None):
    """400, except a body over the limit (Django's ``RequestDataTooBig``): that is the 413
    the ASGI layer gives (``gantry.body_limit``), JSON under ``/api/``, a page elsewhere."""
    if isinstance(exception, RequestDataTooBig):
        limit = body_limit(request.path)
        content_type, body = too_large_answer(request.path, limit)
        return HttpResponse(body, status=413, content_type=content_type)
    return _bad_request(request, exception)


handler403 = _json_under_api(
    defaults.permission_denied, 403, "Forbidden (a CSRF token is missing or wrong?)"
)
handler404 = _json_under_api(defaults.page_not_found, 404, "Not found.")
handler500 = _json_under_api(
    defaults.server_error,
    500,
    lambda request: (
        "Gantry hit an internal error; it has been logged. Quote request id "
        f"{getattr(request, 'request_id', '')} when you report it."
    ),
)
