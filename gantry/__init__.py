# Load the Celery app with Django so that @shared_task binds to it (broker from settings) in
# every process that enqueues: web, CLI and workers alike.
from celery_app import app as celery_app

__all__ = ("celery_app",)
