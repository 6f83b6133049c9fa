"""The one date-range parser of the analytics pages, exports and commands (pure logic)."""

from datetime import date

import pytest

from reports.ranges import DEFAULT_DAYS, MAX_DAYS, DateRange, custom_range, parse_range

TODAY = date(2026, 12, 4)


def test_no_parameters_is_the_last_30_days_today_included():
    chosen, error = parse_range({}, TODAY)
    assert error is None
    assert (chosen.since, chosen.until, chosen.days) == (date(2026, 11, 5), TODAY, DEFAULT_DAYS)
    assert chosen.query() == {"range": "30"}


@pytest.mark.parametrize("days", [7, 30, 90, 365])
def test_presets(days):
    chosen, error = parse_range({"range": str(days)}, TODAY)
    assert error is None and chosen.days == days and chosen.until == TODAY
    assert parse_range(chosen.query(), TODAY)[0] == chosen


def test_custom_range_round_trips_through_its_query():
    params = {"range": "custom", "since": "2026-01-01", "until": "2026-01-31"}
    chosen, error = parse_range(params, TODAY)
    assert error is None
    assert chosen == DateRange(date(2026, 1, 1), date(2026, 1, 31))
    assert chosen.days == 31 and len(chosen.each_day()) == 31
    assert date(2026, 1, 15) in chosen and date(2026, 2, 1) not in chosen
    assert parse_range(chosen.query(), TODAY)[0] == chosen


def test_an_open_end_is_today():
    chosen, error = parse_range({"since": "2026-12-01"}, TODAY)
    assert error is None and (chosen.since, chosen.until) == (date(2026, 12, 1), TODAY)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"range": "custom", "since": "2026-13-01"}, "not YYYY-MM-DD"),
        ({"range": "custom", "since": "2026-12-04", "until": "2026-12-01"}, "is after the end"),
        ({"range": "custom", "since": "1990-01-01"}, f"at most {MAX_DAYS} days"),
        ({"range": "12"}, "unknown range"),
        ({"range": "<script>"}, "unknown range"),
    ],
)
def test_a_bad_range_falls_back_to_the_default_and_says_why(params, reason):
    chosen, error = parse_range(params, TODAY)
    assert chosen.days == DEFAULT_DAYS and chosen.until == TODAY
    assert reason in error


def test_custom_range_raises_for_commands():
    with pytest.raises(ValueError, match="after the end"):
        custom_range(date(2026, 2, 1), date(2026, 1, 1), TODAY)
