"""Report analytics (issue 15, items 3, 5, 6): the daily series and their chart, the domain
page's range, the CSV/JSON downloads (hand-computed for a report over three days), the team
overview, SMTP TLS over time and single TLS/failure reports (real fixture reports), the index's
filters, sort, search and streamed export; another team's everything is a 404; bounded queries."""

import csv
import io
import json
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.models import Domain
from reports import analytics, charts, models
from reports.ingest import ingest_input
from reports.models import SourceAddress
from reports.ranges import DateRange, parse_range
from tests.conftest import client_for
from tests.reports.test_pages import (
    _serial,
    make_aggregate,
    make_failure,
    make_rollup,
    make_tls,
    page_of,
)
from tests.reports.test_spread import BEGIN, END, RECORDS, report_xml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
MARCH = "range=custom&since=2026-03-01&until=2026-03-03"


def download(response) -> str:
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return body.decode()


# --- the series and the chart, pure -----------------------------------------------------------


def test_a_day_stacks_to_its_messages_quarantined_and_rejected_first():
    day = analytics.Day(date(2026, 3, 3), messages=7, dmarc_pass=6, quarantined=2, rejected=1)
    assert day.results() == (4, 0, 2, 1) and sum(day.results()) == 7
    failing = analytics.Day(date(2026, 3, 3), messages=10, dmarc_pass=3, quarantined=1)
    assert failing.results() == (3, 6, 1, 0)
    assert analytics.Day(date(2026, 3, 3)).pass_rate is None


def test_series_of_fills_every_day_of_the_range_and_drops_days_outside():
    r = DateRange(date(2026, 3, 1), date(2026, 3, 4))
    rows = [(date(2026, 3, 2), 5, 4, 0, 1), (date(2026, 2, 28), 9, 9, 0, 0)]
    series = analytics.series_of(rows, r)
    assert [d.day.day for d in series.days] == [1, 2, 3, 4]
    assert [d.messages for d in series.days] == [0, 5, 0, 0]
    assert series.messages == 5 and series.pass_rate == 80.0


def test_the_chart_is_an_accessible_svg_whose_text_is_escaped():
    r = DateRange(date(2026, 3, 1), date(2026, 3, 3))
    series = analytics.series_of([(date(2026, 3, 2), 10, 9, 1, 0)], r)
    svg = charts.daily_volume(series, title="Mail of <b>&", chart_id="c1")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert 'role="img" aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Mail of &lt;b&gt;&amp;</title>' in svg
    assert (
        '<desc id="c1-desc">10 messages from 2026-03-01 to 2026-03-03, 90.0% passing DMARC; '
        "1 quarantined, 0 rejected. Busiest day 2026-03-02 with 10 messages.</desc>"
    ) in svg
    # One tooltip per day, each saying the day's numbers.
    assert (
        "<title>2026-03-02: 10 messages (DMARC pass 9, Failed, delivered (none) 0, "
        "Quarantined 1, Rejected 0), DMARC pass rate 90.0%</title>"
    ) in svg
    assert svg.count('class="chart-layer"') == 2  # pass and quarantined; empty layers not drawn
    assert 'class="chart-line"' not in svg  # one day with a rate: a dot, not a line
    assert "<circle" in svg and "<script" not in svg


def test_a_long_range_has_no_tooltip_per_day_and_an_empty_one_says_so():
    r = DateRange(date(2025, 1, 1), date(2025, 12, 31))
    svg = charts.daily_volume(analytics.series_of([], r), title="t", chart_id="c")
    assert "chart-days" not in svg
    assert "No messages reported in this period" in svg
    assert "No messages reported from 2025-01-01 to 2025-12-31." in svg
    with pytest.raises(ValueError):
        charts.stacked_days([], [], title="t", chart_id="c", description="d")


def test_the_chart_takes_any_daily_series():
    days = [date(2026, 3, 1) + timedelta(days=n) for n in range(3)]
    svg = charts.stacked_days(
        days,
        [charts.Layer("Mine", [1, 2, 3], "#123456")],
        title="A sender",
        chart_id="sender",
        description="d",
        line=[None, 50.0, 100.0],
        line_label="rate",
        unit="messages",
    )
    assert 'fill="#123456"' in svg and 'class="chart-line"' in svg
    assert "2026-03-03: 3 messages (Mine 3), rate 100.0%" in svg


# --- the domain page and its downloads ----------------------------------------------------------


@pytest.fixture
def three_days(acme, acme_domain):
    """The report of tests/reports/test_spread.py: 12:00 March 1 to midnight after March 3."""
    [outcome] = ingest_input(
        report_xml(BEGIN, END, RECORDS), "r.xml", via="upload", organization=acme
    )
    assert outcome.status == "imported"
    return outcome


# By hand from test_spread.EXPECTED: per day (messages, DMARC pass, quarantined, rejected):
# March 1: 2 + 1 = 3, 3, 1, 0 -> stack: pass min(3, 3 - 1) = 2, fail delivered 0.
# March 2: 4 + 2 = 6, 6, 2, 0 -> pass 4, fail 0.     March 3: 5 + 2 = 7, 6, 2, 1 -> pass 4, fail 0.
EXPECTED_CSV = """\
day,messages,dmarc_pass,pass_delivered,fail_none,quarantined,rejected,pass_rate
2026-03-01,3,3,2,0,1,0,100.0
2026-03-02,6,6,4,0,2,0,100.0
2026-03-03,7,6,4,0,2,1,85.71
"""


def test_the_csv_of_a_three_day_report_is_as_computed_by_hand(alice, acme_domain, three_days):
    client = client_for(alice)
    response = client.get(f"/reports/domain/{acme_domain.pk}/volume.csv?{MARCH}")
    assert response["Content-Type"].startswith("text/csv")
    assert "dmarc-acme.example-2026-03-01-2026-03-03.csv" in response["Content-Disposition"]
    assert download(response) == EXPECTED_CSV
    data = json.loads(download(client.get(f"/reports/domain/{acme_domain.pk}/volume.json?{MARCH}")))
    assert data["domain"] == "acme.example" and data["since"] == "2026-03-01"
    assert [d["messages"] for d in data["days"]] == [3, 6, 7]
    assert data["days"][2] == {
        "day": "2026-03-03",
        "messages": 7,
        "dmarc_pass": 6,
        "pass_delivered": 4,
        "fail_none": 0,
        "quarantined": 2,
        "rejected": 1,
        "pass_rate": 85.71,
    }


def test_the_domain_page_shows_the_range_chosen_with_its_chart_and_links(
    alice, acme_domain, three_days
):
    page = page_of(client_for(alice).get(f"/reports/domain/{acme_domain.pk}/?{MARCH}"))
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in page
    assert "16 messages from 2026-03-01 to 2026-03-03" in page
    assert "<dt>Messages</dt><dd>16</dd>" in page
    assert (
        f'href="/reports/domain/{acme_domain.pk}/volume.csv?range=custom&amp;since=2026-03-01'
        in page
    )
    assert 'value="2026-03-01"' in page and '<option value="custom" selected>' in page


@pytest.mark.parametrize("days", [7, 30, 90, 365])
def test_each_preset_range_counts_its_days(alice, acme_domain, days):
    make_rollup("acme.example", 0, "192.0.2.1", 1, 1)
    make_rollup("acme.example", days - 1, "192.0.2.1", 10, 10)  # the range's first day
    make_rollup("acme.example", days, "192.0.2.1", 100, 100)  # the day before it
    page = page_of(client_for(alice).get(f"/reports/domain/{acme_domain.pk}/?range={days}"))
    assert f"Last {days} days" in page and f'<option value="{days}" selected>' in page
    assert "<dt>Messages</dt><dd>11</dd>" in page


def test_a_bad_range_shows_the_default_and_says_why(alice, acme_domain):
    url = f"/reports/domain/{acme_domain.pk}/?range=custom&since=2026-05-01&until=2026-04-01"
    page = page_of(client_for(alice).get(url))
    assert "Showing the last 30 days: the start (2026-05-01) is after the end" in page
    assert "Last 30 days" in page


# --- the team overview -----------------------------------------------------------------------


def test_the_overview_adds_up_the_teams_domains_only(alice, acme, acme_domain, globex):
    other = Domain.objects.create(organization=acme, name="other.example")
    make_rollup("acme.example", 1, "192.0.2.1", 10, 9)
    make_rollup("other.example", 1, "192.0.2.2", 5, 0, reject=5)
    make_rollup("unmonitored.example", 1, "192.0.2.3", 1000, 0, team=acme)
    Domain.objects.create(organization=globex, name="acme.example")
    make_rollup("acme.example", 1, "192.0.2.4", 777, 0, team=globex)
    client = client_for(alice)
    page = page_of(client.get("/reports/overview/?range=7"))
    assert "15 messages" in page and "777" not in page and "1000" not in page
    assert page.index("acme.example") < page.index("other.example")  # busiest first
    assert f'href="/reports/domain/{other.pk}/?range=7"' in page
    rows = list(
        csv.DictReader(io.StringIO(download(client.get("/reports/overview/volume.csv?range=7"))))
    )
    day = (timezone.now().date() - timedelta(days=1)).isoformat()
    [busy] = [r for r in rows if r["day"] == day]
    assert busy["messages"] == "15" and busy["rejected"] == "5" and len(rows) == 7


# --- SMTP TLS ---------------------------------------------------------------------------------


@pytest.fixture
def company_y(acme):
    """The RFC 8460 example report (one policy of company-y.example, three failure types)."""
    domain = Domain.objects.create(organization=acme, name="company-y.example")
    name = "smtp_tls/parsedmarc__rfc8460.json"
    [outcome] = ingest_input(str(FIXTURES / name), name, via="upload", organization=acme)
    assert outcome.status == "imported"
    return domain, models.TlsReport.objects.get(pk=outcome.report_pk)


def test_tls_over_time_with_mx_failure_types_mtas_and_reporters(alice, company_y):
    domain, report = company_y
    tls = analytics.tls_analytics(
        domain.organization, domain.name, DateRange(date(2016, 3, 31), date(2016, 4, 2))
    )
    assert [(d.day.day, d.successful, d.failed) for d in tls.days] == [
        (31, 0, 0),
        (1, 5326, 303),
        (2, 0, 0),
    ]
    assert tls.by_mx == [("*.mail.company-y.example", 5326, 303)]
    assert tls.failure_types == [
        ("starttls-not-supported", 200),
        ("certificate-expired", 100),
        ("validation-failure", 3),
    ]
    assert tls.receiving_mtas == [
        ("mx2.mail.company-y.example", "203.0.113.56", 200),
        ("mx1.mail.company-y.example", "", 100),
        ("mx-backup.mail.company-y.example", "203.0.113.58", 3),
    ]
    assert tls.reporters == [("Company-X", 1, 5326, 303)]
    client = client_for(alice)
    url = f"/reports/domain/{domain.pk}/tls/?range=custom&since=2016-03-31&until=2016-04-02"
    page = page_of(client.get(url))
    assert "5,326 successful, 303 failed sessions" in page  # grouped by the locale
    assert '<code>starttls-not-supported</code></td><td class="num">200' in page
    assert f'href="/reports/tls/{report.pk}/"' in page
    sessions = download(client.get(url.replace("/tls/?", "/tls/sessions.csv?")))
    assert sessions.splitlines()[2] == "2016-04-01,5326,303"


def test_tls_days_are_utc_days_whatever_the_readers_time_zone(company_y):
    # The report begins 2016-04-01T00:00Z: 2016-03-31 19:00 in Bogota. Ranges are UTC days,
    # as the chart's days are: the report is in the range of April 1 alone.
    domain, _report = company_y
    with timezone.override(zoneinfo.ZoneInfo("America/Bogota")):
        april = analytics.tls_analytics(
            domain.organization, domain.name, DateRange(date(2016, 4, 1), date(2016, 4, 1))
        )
        march = analytics.tls_analytics(
            domain.organization, domain.name, DateRange(date(2016, 3, 31), date(2016, 3, 31))
        )
    assert [(d.day, d.successful) for d in april.days] == [(date(2016, 4, 1), 5326)]
    assert march.successful == 0 and march.reporters == []


def test_a_tls_reports_page_shows_its_policies_and_failures(alice, company_y):
    domain, report = company_y
    page = page_of(client_for(alice).get(f"/reports/tls/{report.pk}/"))
    assert "5065427c-23d3-47ca-b6e0-946ea0e8c4be" in page
    assert f'<a href="/reports/domain/{domain.pk}/tls/">company-y.example</a>' in page
    assert "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED" in page
    assert "<td>2001:db8:abcd:13::1</td>" in page  # as stored: normalised
    assert "mode: testing" in page


def test_a_failure_reports_page_shows_its_headers(alice, acme):
    Domain.objects.create(organization=acme, name="example.net")
    name = "forensic/mailauth__arf-003-auth-failure-bodyhash.eml"
    [outcome] = ingest_input(str(FIXTURES / name), name, via="upload", organization=acme)
    page = page_of(client_for(alice).get(f"/reports/failure/{outcome.report_pk}/"))
    assert '<code class="ip">192.0.2.1</code>' in page and "bodyhash" in page
    assert '<th scope="row">DKIM-Signature</th>' in page
    assert "making sure DKIM is working" not in page  # the body is never shown (nor kept)


# --- the index: filters, sort, search, export --------------------------------------------------


@pytest.fixture
def indexed(acme_domain):
    """Three aggregate reports: google (2 days ago, all passing), yahoo (5 days ago, failing
    from 203.0.113.9), google (40 days ago)."""

    def made(org, days_ago, messages, passed, ip):
        return make_aggregate(
            "acme.example",
            org=org,
            days_ago=days_ago,
            messages=messages,
            passed=passed,
            records=[(ip, messages)],
        )

    return {
        "recent": made("google.com", 2, 10, 10, "192.0.2.1"),
        "failing": made("yahoo.com", 5, 8, 2, "203.0.113.9"),
        "old": made("google.com", 40, 3, 3, "192.0.2.1"),
    }


def listed(alice, query: str) -> list[int]:
    response = client_for(alice).get(f"/reports/?{query}")
    assert response.status_code == 200
    return [row.report.pk for row in response.context["listing"].rows]


def test_the_index_filters_by_range_reporter_result_and_address(alice, indexed):
    recent, failing, old = indexed["recent"].pk, indexed["failing"].pk, indexed["old"].pk
    assert listed(alice, "") == [recent, failing, old]
    assert listed(alice, "range=30") == [recent, failing]
    assert listed(alice, "reporter=yahoo.com") == [failing]
    assert listed(alice, "result=fail") == [failing]
    assert listed(alice, "q=192.0.2.1") == [recent, old]
    assert listed(alice, "q=192.0.2.1&range=7") == [recent]
    assert listed(alice, "q=not-an-address") == []  # no PTR name or service matches
    assert listed(alice, "sort=oldest") == [old, failing, recent]
    assert listed(alice, "sort=failing")[0] == failing
    assert listed(alice, "sort=messages") == [recent, failing, old]
    page = page_of(client_for(alice).get("/reports/?reporter=yahoo.com&result=fail"))
    assert '<option value="yahoo.com" selected>yahoo.com</option>' in page
    assert 'href="/reports/export.csv?reporter=yahoo.com&amp;result=fail"' in page


def test_the_index_finds_senders_by_ptr_name_and_service(alice, indexed):
    """What the enrichment stored (reports/senders): a name's text, or a service's name when
    the name is forward-confirmed; an unconfirmed name is no service."""
    recent, failing, old = indexed["recent"].pk, indexed["failing"].pk, indexed["old"].pk
    expires = timezone.now() + timedelta(days=1)
    SourceAddress.objects.create(
        ip="192.0.2.1", ptr="a1-2.smtp-out.amazonses.com", fcrdns=True,
        base_domain="amazonses.com", expires_at=expires,
    )  # fmt: skip
    SourceAddress.objects.create(
        ip="203.0.113.9", ptr="mail-yw1.google.com", fcrdns=False,
        base_domain="google.com", expires_at=expires,
    )  # fmt: skip
    assert listed(alice, "q=Amazon+SES") == [recent, old]
    assert listed(alice, "q=smtp-out.amazonses") == [recent, old]
    assert listed(alice, "q=mail-yw1.google") == [failing]  # the name, as text
    assert listed(alice, "q=Gmail") == []  # not Google's service: the name is not confirmed
    assert listed(alice, "q=Amazon+SES&range=7") == [recent]


def test_the_index_pages_keep_the_filters(alice, acme_domain):
    for n in range(55):
        make_aggregate("acme.example", org="yahoo.com", days_ago=n % 5 + 1)
    listing = client_for(alice).get("/reports/?reporter=yahoo.com&sort=oldest").context["listing"]
    assert listing.next_url == "?reporter=yahoo.com&sort=oldest&page=2"


def test_the_export_streams_the_records_of_the_filter(alice, indexed):
    response = client_for(alice).get("/reports/export.csv?q=192.0.2.1&range=30")
    assert response.streaming and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download(response))))
    assert [(r["source_ip"], r["count"], r["report_id"]) for r in rows] == [
        ("192.0.2.1", "10", indexed["recent"].report_id)
    ]
    assert json.loads(rows[0]["dkim_results"])[0]["selector"] == "sel1"
    everything = list(
        csv.DictReader(io.StringIO(download(client_for(alice).get("/reports/export.csv"))))
    )
    assert sorted(int(r["count"]) for r in everything) == [3, 8, 10]


def test_the_export_is_written_row_by_row_from_an_iterator(alice, acme_domain, monkeypatch):
    from django.db.models.query import QuerySet

    from reports import filters

    make_aggregate("acme.example", records=[(f"10.0.{i // 250}.{i % 250}", 1) for i in range(25)])
    chunks = []
    iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunks.append(chunk_size)
        return iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    monkeypatch.setattr(filters, "EXPORT_CHUNK", 10)
    response = client_for(alice).get("/reports/export.csv")
    assert chunks == []  # nothing read before the response is consumed
    lines = iter(response.streaming_content)
    assert next(lines).decode().startswith("report_org,report_id,domain,")
    assert next(lines).decode().count("\n") == 1  # one record, not the whole file
    assert chunks == [10]
    assert len(list(lines)) == 24


# --- who sees what ----------------------------------------------------------------------------


def test_another_team_gets_404_for_every_analytics_page_of_acme(
    olga, alice, acme_domain, company_y
):
    failure = make_failure("acme.example")
    _, tls = company_y
    client = client_for(olga)
    pk = acme_domain.pk
    for url in [
        f"/reports/domain/{pk}/volume.csv",
        f"/reports/domain/{pk}/volume.json",
        f"/reports/domain/{pk}/tls/",
        f"/reports/domain/{pk}/tls/sessions.csv",
        f"/reports/domain/{pk}/tls/sessions.json",
        f"/reports/tls/{tls.pk}/",
        f"/reports/failure/{failure.pk}/",
    ]:
        assert client.get(url).status_code == 404, url
    make_aggregate("acme.example", records=[("192.0.2.1", 4)])
    assert download(client.get("/reports/export.csv")).count("\n") == 1  # the header only
    assert "acme.example" not in page_of(client.get("/reports/overview/"))


# --- bounded queries --------------------------------------------------------------------------


def add_volume(total: int):
    for i in range(total):
        make_aggregate("acme.example", days_ago=i % 40 + 1, records=[("192.0.2.1", 2)])
        make_tls("acme.example", days_ago=i % 40 + 1)
        make_failure("acme.example")
        n = next(_serial)
        make_rollup("acme.example", i % 40, f"10.{n // 250 % 250}.{n % 250}.1", 10 + i, i)


# session, user, sign-in gate, memberships, then the page's own:
DOMAIN_QUERIES = 12  # domain, totals, sources, series, count, page, tls, ruf
OVERVIEW_QUERIES = 7  # series, domains, totals
TLS_QUERIES = 8  # domain, policies, count, page
INDEX_QUERIES = 8  # the team's domains, reporters, count, page


@pytest.mark.parametrize(
    ("path", "most"),
    [
        *[(f"/reports/domain/{{pk}}/?range={days}", DOMAIN_QUERIES) for days in (7, 30, 90, 365)],
        ("/reports/domain/{pk}/?range=custom&since=2026-01-01&until=2026-12-31", DOMAIN_QUERIES),
        ("/reports/overview/?range=365", OVERVIEW_QUERIES),
        ("/reports/domain/{pk}/tls/?range=90", TLS_QUERIES),
        ("/reports/?range=90&result=fail&sort=failing&reporter=google.com", INDEX_QUERIES),
        ("/reports/?q=192.0.2.1", INDEX_QUERIES),
        ("/reports/domain/{pk}/volume.csv?range=365", 5),
    ],
)
def test_analytics_queries_do_not_grow_with_the_reports(
    alice, acme_domain, django_assert_max_num_queries, path, most
):
    client = client_for(alice)
    counts = []
    for total in (5, 25):
        add_volume(total)
        with django_assert_max_num_queries(most), CaptureQueriesContext(connection) as captured:
            response = client.get(path.format(pk=acme_domain.pk))
        assert response.status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_parse_range_is_the_one_used(alice, acme_domain):
    """The page's range is reports.ranges' for the same parameters (no parser of its own)."""
    today = timezone.now().date()
    response = client_for(alice).get(f"/reports/domain/{acme_domain.pk}/?range=90")
    assert response.context["page"].range == parse_range({"range": "90"}, today)[0]
    assert datetime.now(UTC).date() == today


def test_the_tls_index_searches_the_addresses_of_failure_details(alice, company_y):
    _, report = company_y
    assert listed(alice, "kind=tls&q=203.0.113.56") == [report.pk]
    assert listed(alice, "kind=tls&q=203.0.113.57") == []
    assert listed(alice, "kind=tls&result=fail&sort=failing") == [report.pk]
