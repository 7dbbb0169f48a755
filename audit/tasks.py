"""Beat's audit work: the summaries of failure windows that have closed."""

from __future__ import annotations

from celery import shared_task

from audit.services import audit_windows_close


@shared_task(name="audit.tasks.close_failure_windows", ignore_result=True)
def close_failure_windows() -> int:
    """Write one summary entry per closed window of repeated failures (audit_windows_close)."""
    return audit_windows_close()
