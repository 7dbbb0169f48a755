"""Gantry's own "not found" and "internal error" pages, whatever ``DEBUG`` is.

With ``DEBUG`` on (``make run``) Django answers a missing page with its debug 404, which lists
every URL pattern, and an error with a traceback page: neither is for a person who followed a
stale or forbidden link. :class:`ErrorPageMiddleware` answers both through the project's error
handlers instead (``gantry/errors.py``: these pages, or the API's JSON under ``/api/``), as
Django does with ``DEBUG`` off; the traceback still goes to the log.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signals
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import get_resolver, get_urlconf
from django.utils.deprecation import MiddlewareMixin
from django.utils.log import log_response

logger = logging.getLogger("django.request")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: the page does not exist, or it is another team's (the same answer, on purpose)."""
    html = render_to_string("404.html", {"request_path": request.path}, request=request)
    return HttpResponse(html, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: said plainly, with the request id to quote. Rendered without the request's
    context (no user, no database): whatever failed must not fail this page too."""
    html = render_to_string("500.html", {"request_id": getattr(request, "request_id", "")})
    return HttpResponse(html, status=500)


def _handler(status: int):
    """The project's own handler for ``status`` (``handler404`` in ``gantry/urls.py``: JSON
    under ``/api/``, these pages elsewhere), the one Django calls with ``DEBUG`` off."""
    return get_resolver(get_urlconf()).resolve_error_handler(status)


class ErrorPageMiddleware(MiddlewareMixin):
    """The last middleware: it sees a view's exception before Django's debug pages do, and the
    404 of a path no URL pattern matched (Django's debug page has answered that by then). It
    answers them with the project's handlers, as Django does with ``DEBUG`` off."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return _handler(404)(request, exception)
        if not settings.DEBUG:
            return None  # Django logs it and calls handler500 itself
        response = _handler(500)(request)
        # What Django does for an error it handles itself: tell listeners (error reporters,
        # the test client), and log the traceback once.
        signals.got_request_exception.send(sender=None, request=request)
        log_response(
            "%s: %s",
            "Internal Server Error",
            request.path,
            response=response,
            request=request,
            exception=exception,
        )
        return response

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        unmatched = getattr(request, "resolver_match", None) is None
        if settings.DEBUG and response.status_code == 404 and unmatched:
            return _handler(404)(request, None)
        return response
