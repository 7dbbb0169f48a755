"""JSON bodies with a size limit, read strictly.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` guards ``request.body``, but DRF's parsers read the
stream directly, so the API enforces its own limit while reading. The body is decoded by
``gantry.strict_json``, as the CLI's spec files are: a key given twice, ``NaN`` or nesting
deeper than Python's recursion limit is a 400 saying so (DRF's parser keeps the last key and
answers deep nesting with a 500)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from gantry import strict_json
from gantry.parsing import IntegerInvalid, parse_int


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
        try:
            if parse_int(declared, field="Content-Length", default=0) > limit:
                raise BodyTooLarge(limit)
        except IntegerInvalid:
            raise ParseError("The Content-Length header is not a number of bytes.") from None
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise BodyTooLarge(limit)
        try:
            text = data.decode((parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET)
        except (UnicodeDecodeError, LookupError):
            raise ParseError("The request body is not UTF-8 text; send JSON.") from None
        try:
            return strict_json.loads(text)
        except strict_json.JSONRejected as exc:
            raise ParseError(f"The request body {exc}.") from None
