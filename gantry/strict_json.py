"""JSON from people and programs we do not control: the CLI's spec files and the API's bodies.

Python's ``json.loads`` is lenient where that hides mistakes (it reads ``NaN`` and
``Infinity``, which are not JSON, and keeps the last of two equal keys, silently dropping the
first value) and fails with a traceback on hostile input (nesting deeper than the recursion
limit, integers longer than ``sys.get_int_max_str_digits()``). :func:`loads` reads RFC 8259
JSON only and turns every failure into one :class:`JSONRejected` whose text says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any


class JSONRejected(ValueError):
    """The text is not one unambiguous JSON document; ``str(exc)`` says why, for a person."""


def _no_constant(name: str) -> None:
    raise JSONRejected(f"is not valid JSON ({name} is not a JSON value; give a number)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise JSONRejected(
                f"has the key {key!r} twice in one object, so it is unclear which value is "
                f"meant; keep one"
            )
        data[key] = value
    return data


def loads(text: str) -> Any:
    """Decode ``text`` as strict JSON, or raise :class:`JSONRejected`."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except JSONRejected:
        raise
    except json.JSONDecodeError as exc:
        raise JSONRejected(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise JSONRejected("is nested too deeply to read") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits())
        raise JSONRejected("holds a number too long to read") from None
