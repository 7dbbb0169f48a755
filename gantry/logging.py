"""Log lines as JSON, each naming the request and the deployment it belongs to.

In production every process (web, worker, beat) writes one JSON object per line to stderr, which
a log pipeline (CloudWatch Logs, Loki, Elasticsearch) indexes without parsing rules. A line carries
the request id (the ``X-Request-ID`` a user or proxy reports, or a Celery task's id) and the
deployment id, so one search finds everything the web and the workers did for either.

Stdlib only: the context comes from ``gantry.request_context``, which the request middleware and
the Celery task signals (``deployer.tasks``) set.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from gantry.request_context import current_deployment_id, current_request_id

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
#: Extras never written: Django puts the request (or, for runserver, the socket) on its records,
#: and neither belongs in a log line (headers, cookies); uvicorn adds its message again with
#: terminal colours.
_NEVER_WRITTEN = frozenset({"request", "color_message"})


def _request_id(record: logging.LogRecord) -> str:
    explicit = getattr(record, "request_id", None)
    if explicit:
        return str(explicit)
    # Django logs a 4xx/5xx response (``django.request``) after the middleware has left the
    # request's context, with the request on the record.
    return current_request_id() or getattr(getattr(record, "request", None), "request_id", "")


def _deployment_id(record: logging.LogRecord) -> int | None:
    explicit = getattr(record, "deployment_id", None)
    return explicit if explicit is not None else current_deployment_id()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id``, ``deployment_id`` (null outside one), ``exception`` when there is one, and
    every ``extra=`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record) or None,
            "deployment_id": _deployment_id(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRIBUTES or key in _NEVER_WRITTEN or key in entry:
                continue
            if key.startswith("_") or key in {"request_id", "deployment_id"}:
                continue
            entry[key] = value
        return json.dumps(entry, default=_jsonable, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(*, json_lines: bool, level: str = "INFO") -> dict[str, Any]:
    """The ``LOGGING`` dict: every record through one stderr handler, as JSON or as text."""
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "gantry": {"()": "gantry.logging.JsonFormatter"}
            if json_lines
            else {"format": TEXT_FORMAT}
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "gantry"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give "django" a handler of its own as well; one handler (root's)
            # writes each line once.
            "django": {"handlers": [], "level": level, "propagate": True},
            # botocore says "Found credentials in environment variables" for every new
            # session at INFO: noise in the worker's log and on the CLI's stderr.
            "botocore.credentials": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
    if json_lines:
        # uvicorn sets up its loggers with text handlers before it imports Django; route them
        # through root too, so that the access log and server messages are JSON lines as well.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            config["loggers"][name] = {"handlers": [], "level": level, "propagate": True}
    return config
