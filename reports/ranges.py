"""The date range an analytics page, export or command covers.

One parser for every place that takes a range, so that a URL copied from a chart, the CSV
export of the same chart and `manage.py senders --since/--until` mean the same days. Ranges are
whole UTC days, both ends included. Query parameters: `range` (one of PRESETS, or "custom"),
and with "custom" `since` and `until` (YYYY-MM-DD). A bad range is not an error page: the
default range is used and the reason is shown beside the form.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

PRESETS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
# Ten years: longer than any retention, short enough to bound a day-by-day series.
MAX_DAYS = 3660


@dataclass(frozen=True)
class DateRange:
    since: date
    until: date
    preset: int | None = None  # the number of days when chosen from PRESETS

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def each_day(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range(self.days)]

    @property
    def start(self) -> datetime:
        """The range's first instant (UTC): a datetime column is in the range when it is at
        or after `start` and before `end`, a comparison an index serves (a `__date` lookup
        is worked out row by row, and in the reader's time zone, not UTC)."""
        return datetime.combine(self.since, time(), UTC)

    @property
    def end(self) -> datetime:
        """The instant after the range's last day (UTC)."""
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)

    def __contains__(self, day: date) -> bool:
        return self.since <= day <= self.until

    def query(self) -> dict[str, str]:
        """The query parameters that give this range back through parse_range."""
        if self.preset is not None:
            return {"range": str(self.preset)}
        return {"range": "custom", "since": self.since.isoformat(), "until": self.until.isoformat()}

    @property
    def label(self) -> str:
        """The range in words, in the active language (the pages' headings and charts)."""
        if self.preset is not None:
            return ngettext("last %(days)s day", "last %(days)s days", self.preset) % {
                "days": self.preset
            }
        return _("%(since)s to %(until)s") % {
            "since": formats.date_format(self.since, "SHORT_DATE_FORMAT"),
            "until": formats.date_format(self.until, "SHORT_DATE_FORMAT"),
        }


def last_days(days: int, today: date) -> DateRange:
    return DateRange(today - timedelta(days=days - 1), today, days if days in PRESETS else None)


def default_range(today: date) -> DateRange:
    return last_days(DEFAULT_DAYS, today)


def custom_range(since: date | None, until: date | None, today: date) -> DateRange:
    """A range from explicit ends (either may be open); raises ValueError with the reason."""
    until = until or today
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise ValueError(
            _("the start (%(since)s) is after the end (%(until)s)")
            % {"since": since, "until": until}
        )
    if (until - since).days + 1 > MAX_DAYS:
        raise ValueError(_("a range covers at most %(days)s days") % {"days": MAX_DAYS})
    return DateRange(since, until)


def _day(text: str, message: str) -> date | None:
    """`message`: why `text` is refused, with a %(date)s placeholder for it."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(message % {"date": repr(text[:20])}) from None


def parse_range(params: Mapping[str, str], today: date) -> tuple[DateRange, str | None]:
    """The range asked for by query parameters, and why it was not used if it was not."""
    choice = (params.get("range") or "").strip()
    if not choice and not params.get("since") and not params.get("until"):
        return default_range(today), None
    if choice.isdigit() and int(choice) in PRESETS:
        return last_days(int(choice), today), None
    if choice in ("", "custom"):
        try:
            since = _day(params.get("since", ""), _("the start date %(date)s is not YYYY-MM-DD"))
            until = _day(params.get("until", ""), _("the end date %(date)s is not YYYY-MM-DD"))
            return custom_range(since, until, today), None
        except ValueError as error:
            return default_range(today), _("Showing the last %(days)s days: %(reason)s.") % {
                "days": DEFAULT_DAYS,
                "reason": error,
            }
    return default_range(today), _(
        "Showing the last %(days)s days: unknown range %(range)s "
        "(choose %(presets)s days or custom dates)."
    ) % {"days": DEFAULT_DAYS, "range": repr(choice[:20]), "presets": ", ".join(map(str, PRESETS))}
