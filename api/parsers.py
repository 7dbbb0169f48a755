"""JSON bodies with a size limit.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` guards ``request.body``, but DRF's parsers read the
stream directly, so the API enforces its own limit while reading."""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than {limit} bytes.")


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.GANTRY_API_MAX_BODY
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise BodyTooLarge(limit)
        return super().parse(io.BytesIO(data), media_type, parser_context)
