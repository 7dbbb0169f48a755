"""The Celery application: `celery -A celery_app worker`.

Configuration comes from Django settings (``CELERY_*``), which read the environment.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")

app = Celery("gantry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
