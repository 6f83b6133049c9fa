"""The score chart: pure SVG from points, no database."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from domains import charts

SVG = "{http://www.w3.org/2000/svg}"

# --- the chart (pure) -----------------------------------------------------------------------

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=90)


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  (our own markup; a parse error fails the test)


def texts(root: ET.Element, group: str) -> list[str]:
    return [t.text for t in root.find(f"{SVG}g[@class='{group}']").iter(f"{SVG}text")]


def test_chart_has_axes_labels_grid_and_a_scaling_viewbox():
    points = [charts.Point(at(d), 60 + d // 3, "C") for d in range(0, 90, 3)]
    root = parse(charts.score_history(points, START, END))
    assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"
    assert root.get("width") is None and root.get("height") is None
    assert texts(root, "chart-y") == ["0", "20", "40", "60", "80", "100"]
    assert texts(root, "chart-x") == [
        "Jan 5",
        "Jan 19",
        "Feb 2",
        "Feb 16",
        "Mar 2",
        "Mar 16",
        "Mar 30",
    ]
    assert len(root.find(f"{SVG}g[@class='chart-grid']")) == 6
    assert len(root.findall(f".//{SVG}circle")) == 30
    path = root.find(f"{SVG}path[@class='chart-line']").get("d")
    assert path.count("M") == 1
    assert path.startswith(f"M{charts.MARGIN_LEFT},")  # the first run, at the start
    assert "30 runs from 2025-01-01 to 2025-04-01; latest score 89 (grade C)" in root.findtext(
        f"{SVG}desc"
    )


def test_a_run_without_a_score_breaks_the_line():
    points = [
        charts.Point(at(1), 90, "A"),
        charts.Point(at(2), 80, "B"),
        charts.Point(at(3), None),
        charts.Point(at(4), 70, "C"),
        charts.Point(at(5), None),
        charts.Point(at(6), None),
    ]
    root = parse(charts.score_history(points, START, END))
    path = root.find(f"{SVG}path[@class='chart-line']").get("d")
    assert [len(seg.split(" L")) for seg in path.split("M")[1:]] == [2, 1]
    gaps = root.findall(f".//{SVG}path[@class='chart-gap']")
    assert [g.findtext(f"{SVG}title") for g in gaps] == [
        "2025-01-04 00:00 UTC: could not be scored",
        "2025-01-06 00:00 UTC: could not be scored",
        "2025-01-07 00:00 UTC: could not be scored",
    ]
    assert len(root.findall(f".//{SVG}circle")) == 3
    assert "6 runs" in root.findtext(f"{SVG}desc")
    assert "3 could not be scored" in root.findtext(f"{SVG}desc")


def test_a_dense_chart_keeps_dots_for_the_latest_and_lonely_runs_only():
    points = [charts.Point(at(d / 4), 80, "B") for d in range(360)]
    points[100] = charts.Point(points[100].at, None)
    points[102] = charts.Point(points[102].at, None)  # run 101 is alone between two gaps
    root = parse(charts.score_history(points, START, END))
    dots = [c.findtext(f"{SVG}title") for c in root.iter(f"{SVG}circle")]
    assert dots == [
        "2025-01-26 06:00 UTC: score 80 (B)",  # run 101
        "2025-03-31 18:00 UTC: score 80 (B)",  # the latest
    ]
    assert len(root.findall(f".//{SVG}path[@class='chart-gap']")) == 2


def test_points_land_where_their_time_and_score_say():
    root = parse(charts.score_history([charts.Point(at(45), 50, "D")], START, END))
    dot = root.find(f".//{SVG}circle")
    middle_x = (charts.MARGIN_LEFT + charts.WIDTH - charts.MARGIN_RIGHT) / 2
    middle_y = (charts.MARGIN_TOP + charts.HEIGHT - charts.MARGIN_BOTTOM) / 2
    assert (float(dot.get("cx")), float(dot.get("cy"))) == (middle_x, middle_y)
    assert dot.findtext(f"{SVG}title") == "2025-02-15 00:00 UTC: score 50 (D)"


def test_runs_outside_the_period_are_left_out_and_an_empty_chart_says_so():
    outside = [charts.Point(at(-1), 90, "A"), charts.Point(at(91), 90, "A")]
    root = parse(charts.score_history(outside, START, END))
    assert root.find(f".//{SVG}circle") is None
    assert root.find(f"{SVG}path[@class='chart-line']") is None
    assert root.findtext(f"{SVG}text[@class='chart-empty']") == "No runs in this period"
    assert root.findtext(f"{SVG}desc") == "No runs from 2025-01-01 to 2025-04-01."


def test_chart_text_is_escaped():
    svg = charts.score_history(
        [charts.Point(at(1), 90, '<b>"A"</b>')],
        START,
        END,
        title="x</title><script>&",
        chart_id='a"b',
    )
    root = parse(svg)  # would not parse if anything leaked
    assert root.findtext(f"{SVG}title") == "x</title><script>&"
    assert "<script>" not in svg
    assert root.find(f".//{SVG}circle").findtext(f"{SVG}title").endswith('(<b>"A"</b>)')


@pytest.mark.parametrize(
    ("span", "labels"),
    [
        (timedelta(hours=6), ["01:00", "02:00", "03:00", "04:00", "05:00", "06:00"]),
        (timedelta(days=7), ["Jan 2", "Jan 3", "Jan 4", "Jan 5", "Jan 6", "Jan 7", "Jan 8"]),
        (timedelta(days=200), ["Feb", "Mar", "Apr", "May", "Jun", "Jul"]),
        (timedelta(days=365), ["Mar", "May", "Jul", "Sep", "Nov", "Jan 2026"]),
    ],
)
def test_time_axis_labels_fit_the_period(span, labels):
    start = START + timedelta(minutes=30)
    ticks = charts.x_ticks(start, start + span)
    assert [label for _, label in ticks] == labels
    assert all(start <= t <= start + span for t, _ in ticks)


def test_chart_needs_a_period():
    with pytest.raises(ValueError, match="end must come after"):
        charts.score_history([], END, START)
