"""Django's error handlers: JSON under ``/api/`` (``api/errors.py``), Gantry's own pages
everywhere else (``pages/errors.py``). Here, above both, because neither may import the other
(import-linter's contracts in pyproject.toml)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from api import errors as api_errors
from pages import errors as page_errors


def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return api_errors.handler404(request, exception)
    return page_errors.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _api(request):
        return api_errors.handler500(request)
    return page_errors.server_error(request)
