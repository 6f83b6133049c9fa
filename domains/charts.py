"""Charts drawn on the server as SVG strings: no JavaScript, no CDN, readable in any browser.

Pure functions: data in, markup out, every text escaped. The SVG has a viewBox and no fixed
size, so it scales to its container (see .chart in mailsec.css); presentation attributes give
it colours of its own, which the stylesheet may override.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

WIDTH, HEIGHT = 720, 240
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 40, 14, 12, 30
Y_TICKS = (0, 20, 40, 60, 80, 100)
# Steps between x-axis labels, the smallest giving at most MAX_X_LABELS is used.
X_STEPS = [timedelta(hours=h) for h in (1, 3, 6, 12)] + [
    timedelta(days=d) for d in (1, 2, 7, 14, 30, 61, 91, 182, 365)
]
MAX_X_LABELS = 7


# The axis' date formats, as the language writes them ("Sep 13", "13 sept.").
def day_month_format() -> str:
    return pgettext("chart axis date format (Django date codes)", "M j")


def month_year_format() -> str:
    return pgettext("chart axis date format (Django date codes)", "M Y")


MAX_DOTS = 120


@dataclass(frozen=True)
class Point:
    """One run: when it finished, its score (None: could not be scored) and grade."""

    at: datetime
    score: int | None
    grade: str = ""


def _num(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def x_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Label positions between start and end at round times: whole hours, midnights (UTC),
    or the first days of months."""
    span = end - start
    step = next((s for s in X_STEPS if span / s <= MAX_X_LABELS), X_STEPS[-1])
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if step >= timedelta(days=30):
        months = round(step.days / 30.4)
        ticks, month = [], first.year * 12 + first.month - 1
        while (tick := first.replace(year=month // 12, month=month % 12 + 1, day=1, hour=0)) <= end:
            if tick >= start and month % months == 0:
                ticks.append(
                    (tick, date_format(tick, month_year_format() if tick.month == 1 else "M"))
                )
            month += 1
        return ticks
    if step < timedelta(days=1):
        hours = int(step.total_seconds() // 3600)
        tick = first + timedelta(hours=(-first.hour) % hours)
    else:
        tick = first.replace(hour=0) + timedelta(days=(-first.toordinal()) % step.days)
    ticks = []
    while tick <= end:
        if tick >= start:
            label = (
                f"{tick:%H:%M}"
                if step < timedelta(days=1)
                else date_format(tick, day_month_format())
            )
            ticks.append((tick, label))
        tick += step
    return ticks


def score_history(
    points: Iterable[Point],
    start: datetime,
    end: datetime,
    *,
    title: str = "",
    chart_id: str = "score-history",
) -> str:
    """A line chart of scores (0-100) over [start, end]; a run without a score breaks the line
    and is marked on the time axis."""
    if end <= start:
        raise ValueError("the chart's end must come after its start")
    title = title or _("Score history")
    inside = sorted((p for p in points if start <= p.at <= end), key=lambda p: p.at)
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    span = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return left + (at - start).total_seconds() / span * (right - left)

    def y(score: float) -> float:
        return bottom - score / 100 * (bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(describe(inside, start, end))}</desc>',
    ]
    parts += _grid(left, right, top, bottom, y)
    parts += [
        '<g class="chart-x" fill="#616e7c" text-anchor="middle">'
        + "".join(
            f'<line x1="{_num(x(t))}" y1="{bottom}" x2="{_num(x(t))}" y2="{bottom + 4}" '
            f'stroke="#9aa5b1"/><text x="{_num(x(t))}" y="{bottom + 16}">{escape(label)}</text>'
            for t, label in x_ticks(start, end)
        )
        + "</g>"
    ]
    if not inside:
        parts.append(
            f'<text class="chart-empty" x="{_num((left + right) / 2)}" '
            f'y="{_num((top + bottom) / 2)}" text-anchor="middle" fill="#616e7c">'
            f"{escape(_('No runs in this period'))}</text>"
        )
    parts += _series(inside, x, y, bottom)
    parts.append("</svg>")
    return "".join(parts)


def _grid(left, right, top, bottom, y) -> list[str]:
    lines = "".join(
        f'<line x1="{left}" y1="{_num(y(v))}" x2="{right}" y2="{_num(y(v))}"/>' for v in Y_TICKS
    )
    labels = "".join(f'<text x="{left - 6}" y="{_num(y(v) + 4)}">{v}</text>' for v in Y_TICKS)
    return [
        f'<g class="chart-grid" stroke="#d9e2ec" stroke-width="1">{lines}</g>',
        f'<g class="chart-y" fill="#616e7c" text-anchor="end">{labels}</g>',
        f'<line class="chart-axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" '
        'stroke="#9aa5b1"/>',
        f'<line class="chart-axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" '
        'stroke="#9aa5b1"/>',
    ]


def _series(points: list[Point], x, y, bottom) -> list[str]:
    segments: list[list[Point]] = [[]]
    for point in points:
        if point.score is None:
            segments.append([])
        else:
            segments[-1].append(point)
    path = " ".join(
        "M" + " L".join(f"{_num(x(p.at))},{_num(y(p.score))}" for p in segment)
        for segment in segments
        if segment
    )
    parts = []
    if path:
        parts.append(
            f'<path class="chart-line" d="{path}" fill="none" stroke="#1d4ed8" '
            'stroke-width="2" stroke-linejoin="round"/>'
        )
    # Dots where they can be told apart (each with its tooltip); on a dense chart only the
    # latest and the runs the line cannot show, alone between two gaps.
    scored = [p for p in points if p.score is not None]
    if len(scored) > MAX_DOTS:
        alone = {id(s[0]) for s in segments if len(s) == 1}
        points = [p for p in points if p.score is None or id(p) in alone or p is scored[-1]]
    dots = []
    for p in points:
        if p.score is None:
            label = _("%(when)s: could not be scored") % {"when": _when(p.at)}
            dots.append(
                f'<path class="chart-gap" d="M{_num(x(p.at) - 3)},{bottom - 8} l6,6 m0,-6 l-6,6" '
                f'stroke="#b91c1c" stroke-width="1.5"><title>{escape(label)}</title></path>'
            )
        else:
            if p.grade:
                label = _("%(when)s: score %(score)s (%(grade)s)")
            else:
                label = _("%(when)s: score %(score)s")
            label %= {"when": _when(p.at), "score": p.score, "grade": p.grade}
            dots.append(
                f'<circle class="chart-point" cx="{_num(x(p.at))}" cy="{_num(y(p.score))}" '
                f'r="2.5" fill="#1d4ed8"><title>{escape(label)}</title></circle>'
            )
    parts.append(f'<g class="chart-points">{"".join(dots)}</g>')
    return parts


def describe(points: list[Point], start: datetime, end: datetime) -> str:
    """The chart in one sentence, for screen readers and for the SVG's <desc>."""
    period = {
        "start": f"{start.astimezone(UTC):%Y-%m-%d}",
        "end": f"{end.astimezone(UTC):%Y-%m-%d}",
    }
    if not points:
        return _("No runs from %(start)s to %(end)s.") % period
    scored = [p for p in points if p.score is not None]
    text = ngettext(
        "%(count)d run from %(start)s to %(end)s",
        "%(count)d runs from %(start)s to %(end)s",
        len(points),
    ) % {"count": len(points), **period}
    if not scored:
        return _("%(runs)s; none could be scored.") % {"runs": text}
    latest = scored[-1]
    facts = {
        "runs": text,
        "score": latest.score,
        "grade": latest.grade,
        "lowest": min(p.score for p in scored),
        "highest": max(p.score for p in scored),
    }
    if latest.grade:
        text = (
            _(
                "%(runs)s; latest score %(score)s (grade %(grade)s), "
                "lowest %(lowest)s, highest %(highest)s"
            )
            % facts
        )
    else:
        text = _("%(runs)s; latest score %(score)s, lowest %(lowest)s, highest %(highest)s") % facts
    unscored = len(points) - len(scored)
    if unscored:
        text = _("%(text)s; %(count)d could not be scored") % {"text": text, "count": unscored}
    return text + "."
