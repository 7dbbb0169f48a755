import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
django_application = get_asgi_application()

from gantry.body_limit import BodyLimitMiddleware  # noqa: E402 - needs settings loaded

#: What uvicorn serves: Django behind the body limit (gantry/body_limit.py).
application = BodyLimitMiddleware(django_application)
