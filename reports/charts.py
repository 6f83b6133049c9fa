"""Daily charts of report data, drawn on the server as SVG (the style of domains/charts.py,
whose axis helpers they share): no JavaScript, no CDN, every text escaped.

`stacked_days` draws any daily series: stacked layers (messages by result, sessions by
outcome, ...) and optionally a percentage line on a right-hand axis. `daily_volume` is the
DMARC chart of a Series (reports/analytics.py): messages stacked by result, and the pass rate.
Any other page with daily counts (a sender's, say) builds a Series with analytics.series_of and
calls it too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from domains.charts import HEIGHT, MARGIN_BOTTOM, MARGIN_LEFT, WIDTH, _num, x_ticks
from mailsec.templatetags.localized import number, percent

MARGIN_TOP = 30  # room for the legend
MARGIN_RIGHT = 44  # room for the percentage axis
MAX_TOOLTIPS = 120  # days with a tooltip each; a longer range has its table below the chart
LINE_COLOUR = "#1d4ed8"


@dataclass(frozen=True)
class Layer:
    label: str
    values: Sequence[int]
    colour: str


def _nice_step(most: int, ticks: int = 4) -> int:
    if most <= ticks:
        return 1
    raw = most / ticks
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw) or 1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def stacked_days(
    days: Sequence[date],
    layers: Sequence[Layer],
    *,
    title: str,
    chart_id: str,
    description: str,
    line: Sequence[float | None] | None = None,
    line_label: str = "",
    unit: str = "messages",
) -> str:
    """Bars per day, `layers` stacked bottom up; `line` (0-100, None: no value that day) is
    drawn over them against a percentage axis on the right."""
    if not days:
        raise ValueError("a chart needs at least one day")
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    start, end = _midnight(days[0]), _midnight(days[-1]) + timedelta(days=1)
    slot = (right - left) / len(days)
    totals = [sum(layer.values[i] for layer in layers) for i in range(len(days))]
    step = _nice_step(max(totals))
    top_value = step * max(1, math.ceil(max(totals) / step))

    def y(value: float) -> float:
        return bottom - value / top_value * (bottom - top)

    def x(at: datetime) -> float:
        return left + (at - start).total_seconds() / (end - start).total_seconds() * (right - left)

    cid = escape(chart_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(description)}</desc>',
    ]
    grid = range(0, top_value + 1, step)
    parts.append(
        '<g class="chart-grid" stroke="#d9e2ec" stroke-width="1">'
        + "".join(
            f'<line x1="{left}" y1="{_num(y(v))}" x2="{right}" y2="{_num(y(v))}"/>' for v in grid
        )
        + '</g><g class="chart-y" fill="#616e7c" text-anchor="end">'
        + "".join(f'<text x="{left - 6}" y="{_num(y(v) + 4)}">{_count(v)}</text>' for v in grid)
        + "</g>"
    )
    # Bars: one path per layer, so that a year of days stays a small document.
    base = [0] * len(days)
    for layer in layers:
        shapes = []
        for i, value in enumerate(layer.values):
            if value:
                x0, top_y = left + i * slot, y(base[i] + value)
                height = y(base[i]) - top_y
                shapes.append(
                    f"M{_num(x0)},{_num(top_y)}h{_num(max(slot - 1, 0.5))}v{_num(height)}"
                    f"h{_num(-max(slot - 1, 0.5))}z"
                )
                base[i] += value
        if shapes:
            parts.append(
                f'<path class="chart-layer" fill="{layer.colour}" d="{"".join(shapes)}">'
                f"<title>{escape(layer.label)}</title></path>"
            )
    if line is not None:
        parts += _line(line, left, slot, top, bottom)
    parts += _axes(left, right, top, bottom, x, start, end, line is not None)
    if len(days) <= MAX_TOOLTIPS:
        parts.append('<g class="chart-days" fill="transparent">')
        for i, day in enumerate(days):
            said = ", ".join(f"{layer.label} {number(layer.values[i])}" for layer in layers)
            text = _day_text(unit, day, totals[i], said)
            if line is not None and line[i] is not None:
                text = _("%(day)s, %(label)s %(rate)s") % {
                    "day": text,
                    "label": line_label,
                    "rate": percent(line[i]),
                }
            parts.append(
                f'<rect x="{_num(left + i * slot)}" y="{top}" width="{_num(slot)}" '
                f'height="{bottom - top}"><title>{escape(text)}</title></rect>'
            )
        parts.append("</g>")
    parts.append(_legend(layers, line_label if line is not None else "", left))
    if not any(totals):
        parts.append(
            f'<text class="chart-empty" x="{_num((left + right) / 2)}" '
            f'y="{_num((top + bottom) / 2)}" text-anchor="middle" fill="#616e7c">'
            f"{escape(_nothing_text(unit))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _day(day: date) -> str:
    return formats.date_format(day, "SHORT_DATE_FORMAT")


def _day_text(unit: str, day: date, total: int, said: str) -> str:
    """A day's tooltip: its date, its total in `unit` and each layer's part."""
    values = {"day": _day(day), "count": number(total), "layers": said}
    if unit == "sessions":
        text = ngettext(
            "%(day)s: %(count)s session (%(layers)s)",
            "%(day)s: %(count)s sessions (%(layers)s)",
            total,
        )
    else:
        text = ngettext(
            "%(day)s: %(count)s message (%(layers)s)",
            "%(day)s: %(count)s messages (%(layers)s)",
            total,
        )
    return text % values


def _nothing_text(unit: str) -> str:
    if unit == "sessions":
        return _("No sessions reported in this period")
    return _("No messages reported in this period")


def _count(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return str(value)


def _line(line, left, slot, top, bottom) -> list[str]:
    def y(rate: float) -> float:
        return bottom - rate / 100 * (bottom - top)

    segments: list[list[str]] = [[]]
    for i, rate in enumerate(line):
        if rate is None:
            segments.append([])
        else:
            segments[-1].append(f"{_num(left + (i + 0.5) * slot)},{_num(y(rate))}")
    path = " ".join("M" + " L".join(points) for points in segments if len(points) > 1)
    # A day alone between two gaps is a dot: a path of one point draws nothing.
    dots = "".join(
        f'<circle class="chart-point" cx="{points[0].split(",")[0]}" '
        f'cy="{points[0].split(",")[1]}" r="2" fill="{LINE_COLOUR}"/>'
        for points in segments
        if len(points) == 1
    )
    if not path:
        return [dots] if dots else []
    return [
        f'<path class="chart-line" d="{path}" fill="none" stroke="{LINE_COLOUR}" '
        f'stroke-width="2" stroke-linejoin="round"/>{dots}'
    ]


def _axes(left, right, top, bottom, x, start, end, percent_axis: bool) -> list[str]:
    parts = [
        f'<line class="chart-axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" '
        'stroke="#9aa5b1"/>',
        f'<line class="chart-axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" '
        'stroke="#9aa5b1"/>',
        '<g class="chart-x" fill="#616e7c" text-anchor="middle">'
        + "".join(
            f'<line x1="{_num(x(t))}" y1="{bottom}" x2="{_num(x(t))}" y2="{bottom + 4}" '
            f'stroke="#9aa5b1"/><text x="{_num(x(t))}" y="{bottom + 16}">{escape(label)}</text>'
            for t, label in _day_ticks(start, end)
        )
        + "</g>",
    ]
    if percent_axis:
        parts.append(
            f'<g class="chart-y2" fill="{LINE_COLOUR}" text-anchor="start">'
            + "".join(
                f'<text x="{right + 6}" y="{_num(y_rate + 4)}">{escape(percent(v, 0))}</text>'
                for v in (0, 50, 100)
                if (y_rate := bottom - v / 100 * (bottom - top)) is not None
            )
            + "</g>"
        )
    return parts


def _day_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Where the x-axis is labelled: domains/charts.py's ticks, but never between midnights (a
    bar is a day); a week or less has each day labelled under the middle of its bar."""
    if end - start > timedelta(days=7):
        return x_ticks(start, end - timedelta(seconds=1))
    days = (end - start).days
    return [
        (
            start + timedelta(days=n, hours=12),
            # Translators: a day under a chart's bar, as Django's date filter writes it ("Mar 3").
            formats.date_format(start + timedelta(days=n), _("M j")),
        )
        for n in range(days)
    ]


def _legend(layers: Sequence[Layer], line_label: str, left: int) -> str:
    items, at = [], left
    for layer in layers:
        items.append(
            f'<rect x="{at}" y="8" width="10" height="10" fill="{layer.colour}"/>'
            f'<text x="{at + 14}" y="17">{escape(layer.label)}</text>'
        )
        at += 30 + 7 * len(layer.label)  # about 7 units a character at this size
    if line_label:
        items.append(
            f'<line x1="{at}" y1="13" x2="{at + 12}" y2="13" stroke="{LINE_COLOUR}" '
            f'stroke-width="2"/><text x="{at + 16}" y="17">{escape(line_label)}</text>'
        )
    return f'<g class="chart-legend" fill="#323f4b">{"".join(items)}</g>'


# --- the DMARC chart --------------------------------------------------------------------------

# The layers' names in the reader's language (reports/analytics.RESULTS keeps the English).
RESULT_LABELS = {
    "passed": gettext_lazy("DMARC pass"),
    "fail_none": gettext_lazy("Failed, delivered (none)"),
    "quarantined": gettext_lazy("Quarantined"),
    "rejected": gettext_lazy("Rejected"),
}
RESULT_COLOURS = {
    "passed": "#15803d",
    "fail_none": "#f59e0b",
    "quarantined": "#c2410c",
    "rejected": "#b91c1c",
}


def daily_volume(series, *, title: str, chart_id: str) -> str:
    """Messages per day of a Series (reports/analytics.py), stacked by result, with the DMARC
    pass rate."""
    from reports.analytics import RESULTS

    layers = [
        Layer(
            str(RESULT_LABELS.get(key, label)),
            [getattr(d, key) for d in series.days],
            RESULT_COLOURS[key],
        )
        for key, label in RESULTS
    ]
    return stacked_days(
        [d.day for d in series.days],
        layers,
        title=title,
        chart_id=chart_id,
        description=describe(series),
        line=[d.pass_rate for d in series.days],
        line_label=_("DMARC pass rate"),
    )


def describe(series) -> str:
    """The chart in a sentence or two, for screen readers and the SVG's <desc>."""
    r = series.range
    if not series.messages:
        return _("No messages reported from %(since)s to %(until)s.") % {
            "since": _day(r.since),
            "until": _day(r.until),
        }
    busiest = max(series.days, key=lambda d: (d.messages, d.day))
    summary = ngettext(
        "%(count)s message from %(since)s to %(until)s, %(rate)s passing DMARC; "
        "%(quarantined)s quarantined, %(rejected)s rejected.",
        "%(count)s messages from %(since)s to %(until)s, %(rate)s passing DMARC; "
        "%(quarantined)s quarantined, %(rejected)s rejected.",
        series.messages,
    ) % {
        "count": number(series.messages),
        "since": _day(r.since),
        "until": _day(r.until),
        "rate": percent(series.pass_rate),
        "quarantined": number(sum(d.quarantined for d in series.days)),
        "rejected": number(sum(d.rejected for d in series.days)),
    }
    busiest_text = ngettext(
        "Busiest day %(day)s with %(count)s message.",
        "Busiest day %(day)s with %(count)s messages.",
        busiest.messages,
    ) % {"day": _day(busiest.day), "count": number(busiest.messages)}
    return f"{summary} {busiest_text}"


def tls_sessions(tls, *, title: str, chart_id: str) -> str:
    """Successful and failed TLS sessions per day (reports/analytics.TlsAnalytics)."""
    total = tls.successful + tls.failed
    r = tls.range
    values = {
        "count": number(total),
        "failed": number(tls.failed),
        "since": _day(r.since),
        "until": _day(r.until),
    }
    description = (
        ngettext(
            "%(count)s TLS session reported from %(since)s to %(until)s, %(failed)s failed.",
            "%(count)s TLS sessions reported from %(since)s to %(until)s, %(failed)s failed.",
            total,
        )
        % values
        if total
        else _("No TLS sessions reported from %(since)s to %(until)s.") % values
    )
    return stacked_days(
        [d.day for d in tls.days],
        [
            Layer(pgettext("sessions", "Successful"), [d.successful for d in tls.days], "#15803d"),
            Layer(pgettext("sessions", "Failed"), [d.failed for d in tls.days], "#b91c1c"),
        ],
        title=title,
        chart_id=chart_id,
        description=description,
        unit="sessions",
    )
