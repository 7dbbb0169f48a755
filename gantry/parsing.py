"""Integers from the outside world: a path, a query string, a header or a form field.

One place decides what an integer from a client looks like, so no view re-implements it
(and gets it wrong: ``str.isdigit()`` accepts ``"²"`` and ``"①"``, which ``int()`` then
refuses with a traceback, and ``int()`` itself reads ``"٣"``, ``" 3 "`` and ``"1_000"``).
An integer here is 1 to 19 ASCII digits, nothing else: no sign, no spaces, no underscores,
no other script's digits, and at most the database's bigint (:data:`MAX_ID`).

:func:`parse_int` answers a field-level :class:`IntegerInvalid` for the caller to turn into
its 400 (JSON for the API, the form again for a page); :func:`parse_id` answers ``None``
for an id that cannot name anything, which the caller answers with its usual 404.
:class:`IdConverter` is the same rule as a URL path converter (``<id:pk>``).
"""

from __future__ import annotations

import re

#: What a client's integer looks like (``re.ASCII``: ``\\d`` would take other scripts' digits).
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
#: The largest id the database holds (a bigint).
MAX_ID = 2**63 - 1


class IntegerInvalid(ValueError):
    """The text is not an acceptable integer; ``str(exc)`` says why, for a person, and
    ``field`` names the input it came from."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_int(
    raw: str | None,
    *,
    field: str,
    minimum: int = 0,
    maximum: int = MAX_ID,
    default: int | None = None,
) -> int:
    """``raw`` as an integer between ``minimum`` and ``maximum``, or :class:`IntegerInvalid`.

    ``None`` or an empty string is ``default`` when one is given (a query parameter left
    out), an error otherwise."""
    if raw is None or raw == "":
        if default is not None:
            return default
        raise IntegerInvalid(field, "give a whole number")
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw):
        shown = raw if isinstance(raw, str) and len(raw) <= 20 else f"{str(raw)[:20]}…"
        raise IntegerInvalid(
            field, f"{shown!r} is not a whole number; use the digits 0-9 only, e.g. 42"
        )
    value = int(raw)
    if value < minimum:
        raise IntegerInvalid(field, f"must be {minimum} or more")
    if value > maximum:
        raise IntegerInvalid(field, f"must be {maximum} or less")
    return value


def parse_id(raw: str | int | None) -> int | None:
    """An object id from a client, or ``None`` when ``raw`` cannot be one (the caller
    answers 404: nothing has that id)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if 1 <= raw <= MAX_ID else None
    try:
        return parse_int(raw, field="id", minimum=1)
    except IntegerInvalid:
        return None


class IdConverter:
    """``<id:pk>`` in URL patterns: 1 to 18 ASCII digits (Django's ``<int:>`` takes any
    length, and a 30-digit id reaches the database as a number it cannot hold)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(f"{value!r} is not an id")  # the URL resolver's "no match"
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))
