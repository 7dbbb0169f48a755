"""Numbers, durations and times for a person (gantry/human.py); the page script's twin is
compared with it in tests/test_browser_pages.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gantry.human import count, duration, timestamp, usd

DURATIONS = [
    (0, "0.0 s"),
    (0.04, "0.0 s"),
    (0.46, "0.4 s"),
    (9.99, "9.9 s"),
    (10, "10 s"),
    (59.9, "59 s"),
    (60, "1 min"),
    (92, "1 min 32 s"),
    (3599, "59 min 59 s"),
    (3600, "1 h 00 min"),
    (7505, "2 h 05 min"),
    (-3, "0.0 s"),
]


@pytest.mark.parametrize(("seconds", "text"), DURATIONS)
def test_durations_read_as_a_person_says_them(seconds, text):
    assert duration(seconds) == text


def test_money_and_counts_have_thousands_separators():
    assert usd(4567.5) == "4,567.50" and usd(0) == "0.00"
    assert count(1465) == "1,465" and count(100_000_000_000) == "100,000,000,000"


def test_a_timestamp_is_utc_in_the_markup_for_the_script_to_localise():
    at = datetime(2025, 3, 1, 23, 5, 9, tzinfo=timezone(timedelta(hours=2)))
    html = timestamp(at, "time")
    assert 'datetime="2025-03-01T21:05:09+00:00"' in html
    assert 'title="2025-03-01 21:05:09 UTC"' in html and ">21:05:09 UTC</time>" in html
    assert timestamp(None) == ""
    assert ">2025-03-01 21:05 UTC<" in timestamp(at.astimezone(UTC))
