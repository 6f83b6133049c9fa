"""The report pages: the index, one aggregate report, a domain's reports (totals from rollups
only), uploading, the staff pages; who may see what, and the query counts with many reports."""

import gzip
import hashlib
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains.models import Domain
from reports.models import (
    AggregateRecord,
    AggregateReport,
    DailyRollup,
    DailyTotal,
    FailureReport,
    MonthlyRollup,
    RawInput,
    TlsPolicy,
    TlsReport,
)
from tests.conftest import client_for, make_user

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
NICE_INPUT = FIXTURES / "aggregate" / "parsedmarc__nice-input.xml.gz"  # example.com, 20 / 3047

# --- building reports -----------------------------------------------------------------------

_serial = itertools.count(1)
RECEIVER = object()  # a report's team, unless told: the first team monitoring its domain


def receiver(domain: str, team=RECEIVER):
    """The team a made report belongs to: `team` if given (None: unclaimed), else the first
    team monitoring `domain` (none: unclaimed)."""
    if team is not RECEIVER:
        return team
    monitoring = Domain.objects.filter(name=domain).order_by("pk").first()
    return monitoring.organization if monitoring else None


def make_raw(content=b"<feedback/>", *, name="report.xml", status="imported", user=None, team=None):
    n = next(_serial)
    return RawInput.objects.create(
        organization=team,
        sha256=hashlib.sha256(content + str(n).encode()).hexdigest(),
        name=name,
        size=len(content),
        encoding="gzip",
        content=gzip.compress(content),
        source="upload",
        status=status,
        reason="" if status == "imported" else "not a report: no <feedback> element",
        uploaded_by=user,
    )


def make_aggregate(
    domain, *, org="google.com", days_ago=1, messages=10, passed=8, records=(), team=RECEIVER
):
    """An aggregate report on `domain` whose period began `days_ago` days ago; `records` are
    (source_ip, count) pairs stored as its records."""
    begin = timezone.now().replace(microsecond=0) - timedelta(days=days_ago)
    team = receiver(domain, team)
    report = AggregateReport.objects.create(
        organization=team,
        raw=make_raw(team=team),
        org_name=org,
        report_id=f"r{next(_serial)}",
        domain=domain,
        begin=begin,
        end=begin + timedelta(days=1),
        p="quarantine",
        sp="reject",
        np="reject",
        pct=50,
        adkim="s",
        aspf="r",
        testing="n",
        discovery_method="treewalk",
        record_count=len(records),
        message_count=messages,
        dmarc_pass=passed,
    )
    AggregateRecord.objects.bulk_create(
        AggregateRecord(
            report=report,
            source_ip=ip,
            count=count,
            disposition="none",
            dkim="pass",
            spf="fail",
            header_from=domain,
            envelope_from=f"bounce.{domain}",
            dkim_results=[{"domain": domain, "selector": "sel1", "result": "pass"}],
            spf_results=[{"domain": f"bounce.{domain}", "scope": "mfrom", "result": "softfail"}],
        )
        for ip, count in records
    )
    return report


def make_tls(domain, *, org="Google Inc.", days_ago=1, successful=40, failed=2, team=RECEIVER):
    begin = timezone.now() - timedelta(days=days_ago)
    team = receiver(domain, team)
    return TlsReport.objects.create(
        organization=team,
        raw=make_raw(b"{}", name="tls.json", team=team),
        org_name=org,
        report_id=f"tls-{next(_serial)}",
        domain=domain,
        begin=begin,
        end=begin + timedelta(days=1),
        successful=successful,
        failed=failed,
    )


def make_failure(domain, *, source_ip="192.0.2.9", auth_failure="dmarc", team=RECEIVER):
    team = receiver(domain, team)
    return FailureReport.objects.create(
        organization=team,
        raw=make_raw(b"From: x", name="ruf.eml", team=team),
        domain=domain,
        org_name="linkedin.com",
        feedback_type="auth-failure",
        arrival_date=timezone.now() - timedelta(hours=3),
        source_ip=source_ip,
        auth_failure=auth_failure,
        original_mail_from=f"news@{domain}",
    )


def make_rollup(
    domain, days_ago, ip, messages, passed, *, dkim=0, spf=0, quarantine=0, reject=0, team=None
):
    """A rollup row, and its share of the day's total and of the month's row of the source,
    as reports.ingest keeps them."""
    counts = {
        "messages": messages,
        "dmarc_pass": passed,
        "dkim_pass": dkim,
        "spf_pass": spf,
        "disposition_none": messages - quarantine - reject,
        "disposition_quarantine": quarantine,
        "disposition_reject": reject,
    }
    team = team or receiver(domain)
    day = timezone.now().date() - timedelta(days=days_ago)
    total, _ = DailyTotal.objects.get_or_create(organization=team, domain=domain, day=day)
    DailyTotal.objects.filter(pk=total.pk).update(**{k: F(k) + v for k, v in counts.items()})
    month, _ = MonthlyRollup.objects.get_or_create(
        organization=team, domain=domain, month=day.replace(day=1), source_ip=ip
    )
    MonthlyRollup.objects.filter(pk=month.pk).update(**{k: F(k) + v for k, v in counts.items()})
    return DailyRollup.objects.create(
        organization=team, domain=domain, day=day, source_ip=ip, **counts
    )


@pytest.fixture
def staff(db):
    return make_user("sam", is_staff=True)


def page_of(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- the index ------------------------------------------------------------------------------


def test_index_lists_the_teams_aggregate_reports_newest_first(alice, acme_domain, globex_domain):
    older = make_aggregate("acme.example", org="yahoo.com", days_ago=3, messages=4, passed=1)
    newer = make_aggregate("acme.example", org="google.com", days_ago=1, messages=200, passed=150)
    make_aggregate("globex.example", org="globex-only.example")
    make_aggregate("nobody.example", org="unclaimed-reporter.example")

    response = client_for(alice).get("/reports/")
    assert [row.report for row in response.context["listing"].rows] == [newer, older]
    page = page_of(response)
    assert "75.0%" in page and "25.0%" in page  # DMARC pass = dmarc_pass / message_count
    assert f'href="/reports/aggregate/{newer.pk}/"' in page
    assert f'href="/reports/domain/{acme_domain.pk}/"' in page
    assert "globex-only.example" not in page
    assert "unclaimed-reporter.example" not in page


def test_index_filters_by_one_of_the_teams_domains(alice, acme, acme_domain, globex_domain):
    Domain.objects.create(organization=acme, name="other.example")
    make_aggregate("acme.example", org="first.example")
    make_aggregate("other.example", org="second.example")
    make_aggregate("globex.example", org="globex-only.example")
    client = client_for(alice)

    page = page_of(client.get("/reports/?domain=other.example"))
    assert "second.example" in page and "first.example" not in page
    assert '<option value="other.example" selected>' in page
    # A name the team does not monitor is no filter: it shows the team's own reports only.
    page = page_of(client.get("/reports/?domain=globex.example"))
    assert "first.example" in page and "second.example" in page
    assert "globex-only.example" not in page


def test_index_tabs_list_tls_and_failure_reports(alice, acme_domain, globex_domain):
    make_tls("acme.example", org="Acme TLS reporter", failed=7)
    make_tls("globex.example", org="Globex TLS reporter")
    make_failure("acme.example", source_ip="198.51.100.77", auth_failure="spf")
    make_failure("globex.example", source_ip="203.0.113.200")
    client = client_for(alice)

    page = page_of(client.get("/reports/?kind=tls"))
    assert "Acme TLS reporter" in page and "Globex TLS reporter" not in page
    assert '<span class="status status-fail">7</span>' in page
    page = page_of(client.get("/reports/?kind=failure"))
    assert "198.51.100.77" in page and "203.0.113.200" not in page
    assert "news@acme.example" in page


def test_a_tls_report_shows_under_each_of_its_policy_domains_for_its_team_only(
    alice, olga, acme, acme_domain, globex_domain
):
    # Acme received it; its second policy names globex.example, which Globex monitors: that
    # reveals nothing to Globex.
    report = make_tls("acme.example", org="Two-policy reporter", team=acme)
    for name in ("acme.example", "globex.example"):
        TlsPolicy.objects.create(report=report, policy_type="sts", policy_domain=name)
    Domain.objects.create(organization=acme, name="globex.example")
    make_tls("other.example", org="Unrelated reporter")
    page = page_of(client_for(alice).get("/reports/?kind=tls&domain=globex.example"))
    assert "Two-policy reporter" in page and "Unrelated reporter" not in page
    page = page_of(client_for(alice).get(f"/reports/domain/{acme_domain.pk}/"))
    assert "Two-policy reporter" in page
    for url in ("/reports/?kind=tls", f"/reports/domain/{globex_domain.pk}/"):
        assert "Two-policy reporter" not in page_of(client_for(olga).get(url))


def test_index_explains_how_reports_arrive_when_there_are_none(alice, victor, acme_domain):
    page = page_of(client_for(alice).get("/reports/"))
    assert "rua=" in page
    assert 'href="/reports/upload/"' in page
    viewer_page = page_of(client_for(victor).get("/reports/"))
    assert "rua=" in viewer_page
    assert 'href="/reports/upload/"' not in viewer_page  # viewers cannot upload


def test_index_without_domains_says_to_add_them_first(alice):
    page = page_of(client_for(alice).get("/reports/"))
    assert "monitors no domain yet" in page


def test_index_pages_by_fifty(alice, acme_domain):
    for days in range(55):
        make_aggregate("acme.example", org=f"reporter{days:02d}.example", days_ago=days + 1)
    client = client_for(alice)
    first = client.get("/reports/")
    assert len(first.context["listing"].rows) == 50
    assert first.context["listing"].rows[0].report.org_name == "reporter00.example"
    page = page_of(first)
    assert "55 reports, page 1 of 2" in page and 'href="?page=2"' in page
    second = client.get("/reports/?page=2")
    assert [r.report.org_name for r in second.context["listing"].rows] == [
        f"reporter{n}.example" for n in range(50, 55)
    ]


def test_a_team_of_many_domains_types_the_domain_to_filter_by(alice, acme, acme_domain):
    """Past 200 domains the filter is a search box, not a list of every name; a name typed in
    its Unicode form finds its reports, and the page's queries do not grow with the domains."""
    Domain.objects.bulk_create(
        [Domain(organization=acme, name=f"d{n:03d}.example") for n in range(200)]
        + [Domain(organization=acme, name="xn--bcher-kva.example")]
    )
    make_aggregate("xn--bcher-kva.example", org="books-reporter.example")
    make_aggregate("acme.example", org="acme-reporter.example")
    client = client_for(alice)
    with CaptureQueriesContext(connection) as queries:
        page = page_of(client.get("/reports/"))
    assert '<input type="search" id="filter-domain" name="domain"' in page
    assert "d199.example" not in page  # no list of every name
    assert "books-reporter.example" in page and "acme-reporter.example" in page
    filtered = client.get("/reports/", {"domain": "Bücher.example"})
    assert filtered.context["listing"].query.domain == "xn--bcher-kva.example"
    assert [r.report.org_name for r in filtered.context["listing"].rows] == [
        "books-reporter.example"
    ]
    assert 'value="bücher.example"' in page_of(filtered)
    unknown = client.get("/reports/", {"domain": "not-ours.example"})
    assert len(unknown.context["listing"].rows) == 2  # an unknown name is no filter
    Domain.objects.bulk_create(
        [Domain(organization=acme, name=f"e{n:04d}.example") for n in range(1000)]
    )
    with CaptureQueriesContext(connection) as more:
        client.get("/reports/")
    assert len(more) == len(queries)


def test_a_team_of_few_domains_picks_from_a_list(alice, acme_domain):
    page = page_of(client_for(alice).get("/reports/"))
    assert '<select id="filter-domain" name="domain">' in page
    assert '<option value="acme.example"' in page


# --- who sees what --------------------------------------------------------------------------


def test_another_team_gets_404_and_sees_nothing_of_acmes(olga, alice, acme_domain, globex_domain):
    report = make_aggregate("acme.example", org="acme-reporter.example", records=[("192.0.2.1", 3)])
    client = client_for(olga)
    assert client.get(f"/reports/aggregate/{report.pk}/").status_code == 404
    assert client.get(f"/reports/domain/{acme_domain.pk}/").status_code == 404
    assert "acme-reporter.example" not in page_of(client.get("/reports/"))
    assert client_for(alice).get(f"/reports/aggregate/{report.pk}/").status_code == 200


def test_a_domain_monitored_by_two_teams_shows_each_the_reports_it_received(
    olga, alice, acme, globex, acme_domain
):
    theirs = Domain.objects.create(organization=globex, name="acme.example")
    ours = make_aggregate("acme.example", org="acme-received.example", team=acme)
    their = make_aggregate("acme.example", org="globex-received.example", team=globex)
    for user, domain, mine, other in [
        (alice, acme_domain, ours, their),
        (olga, theirs, their, ours),
    ]:
        client = client_for(user)
        for url in ("/reports/", f"/reports/domain/{domain.pk}/"):
            page = page_of(client.get(url))
            assert mine.org_name in page and other.org_name not in page
        assert client.get(f"/reports/aggregate/{mine.pk}/").status_code == 200
        assert client.get(f"/reports/aggregate/{other.pk}/").status_code == 404
    # Each team's own domain row: not the other's.
    assert client_for(olga).get(f"/reports/domain/{acme_domain.pk}/").status_code == 404


def test_a_viewer_reads_but_may_not_upload(victor, acme_domain):
    report = make_aggregate("acme.example", records=[("192.0.2.1", 3)])
    client = client_for(victor)
    assert client.get("/reports/").status_code == 200
    assert client.get(f"/reports/aggregate/{report.pk}/").status_code == 200
    assert client.get(f"/reports/domain/{acme_domain.pk}/").status_code == 200
    assert client.get("/reports/upload/").status_code == 403
    upload = SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes())
    assert client.post("/reports/upload/", {"files": [upload]}).status_code == 403
    assert RawInput.objects.count() == 1  # only the factory's


@pytest.mark.parametrize(
    "path",
    [
        "/reports/",
        "/reports/upload/",
        "/reports/aggregate/1/",
        "/reports/domain/1/",
        "/reports/refused/",
        "/reports/unclaimed/",
        "/reports/raw/1/",
    ],
)
def test_anonymous_is_sent_to_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == f"/login/?next={path}"


def test_staff_pages_are_404_for_everybody_else(alice):
    raw = make_raw(b"junk", status="refused")
    client = client_for(alice)  # an owner of a team, not staff
    for path in ["/reports/refused/", "/reports/unclaimed/", f"/reports/raw/{raw.pk}/"]:
        assert client.get(path).status_code == 404, path
    assert "Refused inputs" not in page_of(client.get("/reports/"))


# --- one aggregate report -------------------------------------------------------------------


def test_aggregate_report_shows_policy_records_and_auth_results(alice, acme_domain):
    report = make_aggregate(
        "acme.example", messages=12, passed=9, records=[("192.0.2.10", 2), ("2001:db8::25", 10)]
    )
    AggregateReport.objects.filter(pk=report.pk).update(
        errors=["<version> is missing"], warnings=["pct=50 is no longer in DMARCbis"]
    )
    response = client_for(alice).get(f"/reports/aggregate/{report.pk}/")
    page = page_of(response)
    assert [r.source_ip for r in response.context["page"].records.page] == [
        "2001:db8::25",  # most messages first
        "192.0.2.10",
    ]
    for text in [
        "<dt>p</dt><dd>quarantine</dd>",
        "<dt>sp</dt><dd>reject</dd>",
        "<dt>np</dt><dd>reject</dd>",
        "<dt>pct</dt><dd>50</dd>",
        "<dt>adkim</dt><dd>s</dd>",
        "<dt>aspf</dt><dd>r</dd>",
        "<dt><code>testing</code></dt><dd>n</dd>",
        "<dt><code>discovery_method</code></dt><dd>treewalk</dd>",
        "&lt;version&gt; is missing",
        "pct=50 is no longer in DMARCbis",
        "DMARC pass 75.0%",
        "s=sel1",
        'bounce.acme.example <small class="muted">mfrom</small>: softfail',
    ]:
        assert text in page, text
    assert f'href="/reports/domain/{acme_domain.pk}/"' in page


def test_aggregate_records_come_200_a_page(alice, acme_domain):
    records = [(f"10.0.{i // 250}.{i % 250}", 1000 - i) for i in range(201)]
    report = make_aggregate("acme.example", records=records)
    client = client_for(alice)
    first = client.get(f"/reports/aggregate/{report.pk}/")
    assert len(first.context["page"].records.page) == 200
    assert 'href="?page=2"' in page_of(first)
    second = client.get(f"/reports/aggregate/{report.pk}/?page=2")
    assert [r.source_ip for r in second.context["page"].records.page] == ["10.0.0.200"]


# --- a domain's reports ---------------------------------------------------------------------


def test_domain_page_totals_come_from_the_last_30_days_of_rollups(alice, acme, acme_domain):
    make_rollup("acme.example", 0, "192.0.2.1", 100, 90, dkim=80, spf=70)
    make_rollup("acme.example", 29, "192.0.2.1", 100, 50, dkim=40, spf=30, quarantine=20)
    make_rollup("acme.example", 3, "198.51.100.2", 300, 60, dkim=60, spf=0, reject=10)
    make_rollup("acme.example", 30, "203.0.113.3", 5000, 0)  # 31 days ago: not counted
    make_rollup("other.example", 1, "203.0.113.4", 7000, 0, team=acme)  # another domain
    response = client_for(alice).get(f"/reports/domain/{acme_domain.pk}/")
    summary = response.context["page"].summary
    assert (summary.messages, summary.dmarc_pass, summary.dkim_pass, summary.spf_pass) == (
        500,
        200,
        180,
        100,
    )
    assert (summary.quarantined, summary.rejected, summary.sources) == (20, 10, 2)
    assert [(s.source_ip, s.messages) for s in response.context["page"].top_sources] == [
        ("198.51.100.2", 300),
        ("192.0.2.1", 200),
    ]
    page = page_of(response)
    assert "<dt>DMARC pass</dt><dd>40.0%" in page
    assert "<dt>DKIM aligned pass</dt><dd>36.0%" in page
    assert "<dt>SPF aligned pass</dt><dd>20.0%" in page
    assert "70.0%" in page  # 192.0.2.1: 140 of 200
    assert "203.0.113.3" not in page and "203.0.113.4" not in page


def test_domain_page_shows_at_most_ten_sources(alice, acme_domain):
    for i in range(12):
        make_rollup("acme.example", 1, f"192.0.2.{i + 1}", 100 + i, 0)
    response = client_for(alice).get(f"/reports/domain/{acme_domain.pk}/")
    sources = [s.source_ip for s in response.context["page"].top_sources]
    assert sources == [f"192.0.2.{i}" for i in range(12, 2, -1)]


def test_domain_page_lists_its_aggregate_tls_and_failure_reports(alice, acme, acme_domain):
    Domain.objects.create(organization=acme, name="other.example")
    make_aggregate("acme.example", org="agg-reporter.example", messages=40, passed=10)
    make_aggregate("other.example", org="other-domain-reporter.example")
    make_tls("acme.example", org="TLS reporter", successful=1234, failed=56)
    make_failure("acme.example", source_ip="198.51.100.99", auth_failure="bodyhash")
    page = page_of(client_for(alice).get(f"/reports/domain/{acme_domain.pk}/"))
    assert "agg-reporter.example" in page and "25.0%" in page
    assert "other-domain-reporter.example" not in page
    assert "TLS reporter" in page and "1,234" in page and "56" in page  # grouped: the locale
    assert "198.51.100.99" in page and "bodyhash" in page
    assert "No messages reported in the last 30 days" in page  # no rollups made here


def test_domain_page_links_to_all_tls_reports_past_twenty(alice, acme_domain):
    for i in range(21):
        make_tls("acme.example", days_ago=i + 1)
    response = client_for(alice).get(f"/reports/domain/{acme_domain.pk}/")
    assert len(response.context["page"].tls) == 20
    assert "?kind=tls&amp;domain=acme.example" in page_of(response)


def test_domain_detail_links_to_its_reports(alice, acme_domain):
    page = page_of(client_for(alice).get(f"/domains/{acme_domain.pk}/"))
    assert f'href="/reports/domain/{acme_domain.pk}/">DMARC reports</a>' in page


# --- bounded queries ------------------------------------------------------------------------


def add_volume(total: int):
    for i in range(total):
        make_aggregate("acme.example", days_ago=i % 40 + 1, records=[("192.0.2.1", 2)])
        make_tls("acme.example", days_ago=i % 40 + 1)
        make_failure("acme.example")
        n = next(_serial)
        make_rollup("acme.example", i % 40, f"10.{n // 250 % 250}.{n % 250}.1", 10 + i, i)


# Every page of a signed-in user: session, user, the sign-in gate (second factor, team policy).
INDEX_QUERIES = 8  # + memberships, the team's domains, reporters (the filter's), count, page
DOMAIN_QUERIES = 12  # + memberships, domain, totals, sources, chart series, count, page, tls, ruf


@pytest.mark.parametrize(
    ("path", "most"),
    [
        ("/reports/", INDEX_QUERIES),
        ("/reports/?kind=tls", INDEX_QUERIES),
        ("/reports/?kind=failure&domain=acme.example", INDEX_QUERIES),
        ("/reports/domain/{pk}/", DOMAIN_QUERIES),
    ],
)
def test_queries_do_not_grow_with_the_reports(
    alice, acme_domain, django_assert_max_num_queries, path, most
):
    client = client_for(alice)
    counts = []
    for total in (5, 25):  # 5, then 30 of each
        add_volume(total)
        with (
            django_assert_max_num_queries(most),
            CaptureQueriesContext(connection) as captured,
        ):
            response = client.get(path.format(pk=acme_domain.pk))
        assert response.status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_aggregate_page_queries_do_not_grow_with_the_records(
    alice, acme_domain, django_assert_max_num_queries
):
    report = make_aggregate("acme.example", records=[(f"10.0.0.{i}", i) for i in range(1, 150)])
    client = client_for(alice)
    # session, user, sign-in gate, memberships, report, own domain, count, page of records
    with django_assert_max_num_queries(8):
        response = client.get(f"/reports/aggregate/{report.pk}/")
    assert len(response.context["page"].records.page) == 149


# --- staff pages ----------------------------------------------------------------------------


def test_refused_inputs_list_refused_and_partial_ones(staff, alice):
    refused = make_raw(b"junk", name="junk.bin", status="refused", user=alice)
    partial = make_raw(b"mbox", name="inbox.mbox", status="partial")
    make_raw(b"<feedback/>", name="fine.xml", status="imported")
    response = client_for(staff).get("/reports/refused/")
    assert list(response.context["pager"].page) == [partial, refused]  # newest first
    page = page_of(response)
    assert "junk.bin" in page and "inbox.mbox" in page and "fine.xml" not in page
    assert "not a report: no &lt;feedback&gt; element" in page
    assert f'href="/reports/raw/{refused.pk}/"' in page
    assert "alice" in page


def test_raw_download_returns_the_original_bytes(staff):
    original = b"\x1f\x8b not really gzip \x00\xff" * 10
    raw = make_raw(original, name='../../etc/pass wd";.xml', status="refused")
    response = client_for(staff).get(f"/reports/raw/{raw.pk}/")
    assert response.status_code == 200
    assert response.content == original
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'attachment; filename="pass_wd_.xml"'


def test_raw_download_of_an_identity_encoded_input(staff):
    raw = make_raw(status="refused")
    RawInput.objects.filter(pk=raw.pk).update(encoding="identity", content=b"PK\x03\x04zip")
    response = client_for(staff).get(f"/reports/raw/{raw.pk}/")
    assert response.content == b"PK\x03\x04zip"
    assert client_for(staff).get("/reports/raw/999999/").status_code == 404


def test_unclaimed_groups_reports_no_team_received(staff, acme_domain):
    make_aggregate("acme.example", org="claimed.example")
    for messages in (5, 7):
        make_aggregate("lost.example", messages=messages)
    make_aggregate("acme.example", messages=3, team=None)  # monitored, yet nobody's
    newest = make_aggregate("orphan.example", messages=1)
    make_tls("orphan.example")
    make_tls("orphan.example")
    make_tls("tls-only.example")
    make_failure("failure-only.example")
    response = client_for(staff).get("/reports/unclaimed/")
    rows = [
        (r.domain, r.aggregate_reports, r.messages, r.tls_reports, r.failure_reports)
        for r in response.context["pager"].page
    ]
    assert rows == [
        ("orphan.example", 1, 1, 2, 0),
        ("lost.example", 2, 12, 0, 0),
        ("acme.example", 1, 3, 0, 0),
        ("failure-only.example", 0, 0, 0, 1),
        ("tls-only.example", 0, 0, 1, 0),
    ]
    page = page_of(response)
    assert f'href="/reports/aggregate/{newest.pk}/"' in page  # staff may open any report
    assert client_for(staff).get(f"/reports/aggregate/{newest.pk}/").status_code == 200


def test_the_index_links_the_staff_pages_for_staff(staff):
    page = page_of(client_for(staff).get("/reports/"))
    assert 'href="/reports/refused/"' in page and 'href="/reports/unclaimed/"' in page


def test_admin_lists_and_shows_inputs_without_their_content(db):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    raw = make_raw(b"SECRET-BYTES", name="shown.xml", status="refused")
    report = make_aggregate("acme.example", org="admin-reporter.example")
    make_tls("acme.example")
    make_failure("acme.example")
    client = client_for(admin_user)
    assert "shown.xml" in page_of(client.get("/admin/reports/rawinput/?status=refused"))
    detail = page_of(client.get(f"/admin/reports/rawinput/{raw.pk}/change/"))
    assert "SECRET-BYTES" not in detail and gzip.compress(b"SECRET-BYTES").hex() not in detail
    assert f'href="/reports/raw/{raw.pk}/"' in detail
    assert "admin-reporter.example" in page_of(client.get("/admin/reports/aggregatereport/"))
    assert page_of(client.get(f"/admin/reports/aggregatereport/{report.pk}/change/"))
    assert page_of(client.get("/admin/reports/tlsreport/"))
    assert page_of(client.get("/admin/reports/failurereport/"))
    assert client.get("/admin/reports/rawinput/add/").status_code == 403


# --- uploading ------------------------------------------------------------------------------


def upload(client, *files):
    """Upload, then parse the files as the worker does (the request only stores them), and
    return the upload's page."""
    from reports import uploads
    from reports.models import UploadFile

    response = client.post("/reports/upload/", {"files": list(files)})
    assert response.status_code == 302, response.content[:500]
    for pk in UploadFile.objects.filter(state="queued").values_list("pk", flat=True):
        uploads.parse(pk)
    return client.get(response["Location"])


def statuses(response) -> list[tuple[str, str]]:
    return [(row.outcome.file, row.outcome.status) for row in response.context["rows"]]


def test_upload_form_takes_several_files(bob):
    page = page_of(client_for(bob).get("/reports/upload/"))
    assert 'type="file" name="files" multiple' in page
    assert 'enctype="multipart/form-data"' in page


def test_upload_without_files_asks_for_one(bob):
    response = client_for(bob).post("/reports/upload/", {})
    assert "Choose at least one report file." in page_of(response)


def test_upload_checks_the_csrf_token(bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post("/reports/upload/", {"files": [SimpleUploadedFile("a.xml", b"<x/>")]})
    assert response.status_code == 403
    assert not RawInput.objects.exists()


def test_upload_imports_then_finds_the_duplicate_and_the_garbage(bob, acme):
    domain = Domain.objects.create(organization=acme, name="example.com")
    data = NICE_INPUT.read_bytes()
    response = upload(
        client_for(bob),
        SimpleUploadedFile("nice-input.xml.gz", data),
        SimpleUploadedFile("again.xml.gz", data),
        SimpleUploadedFile("garbage.bin", b"\x00\x01 this is no report \xfe"),
    )
    assert statuses(response) == [
        ("nice-input.xml.gz", "imported"),
        ("again.xml.gz", "duplicate"),
        ("garbage.bin", "invalid"),
    ]
    imported = response.context["rows"][0].outcome
    assert (imported.kind, imported.domain, imported.records, imported.messages) == (
        "aggregate",
        "example.com",
        20,
        3047,
    )
    page = page_of(response)
    assert "1 imported, 1 duplicate, 1 invalid" in page
    assert f'href="/reports/aggregate/{imported.report_pk}/"' in page
    assert f'href="/reports/domain/{domain.pk}/"' in page
    assert "to see it" not in page
    report = AggregateReport.objects.get()
    assert (report.domain, report.message_count) == ("example.com", 3047)
    assert RawInput.objects.get(name="nice-input.xml.gz").uploaded_by == bob


def test_upload_of_an_unmonitored_domain_says_to_add_it(alice, acme_domain):
    response = upload(client_for(alice), SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes()))
    assert statuses(response) == [("nice.xml.gz", "imported")]
    page = page_of(response)
    assert "Stored;" in page and "add example.com</a> to see it" in page
    assert AggregateReport.objects.filter(domain="example.com").exists()


def test_an_oversized_file_is_dropped_unread_and_the_others_stored(bob, acme, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 50_000
    # The request is larger than this, so both files go to temporary files, not memory.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10_000
    Domain.objects.create(organization=acme, name="example.com")
    small = NICE_INPUT.read_bytes()
    response = upload(
        client_for(bob),
        SimpleUploadedFile("huge.xml", b"<feedback>" + b" " * 200_000),
        SimpleUploadedFile("nice.xml.gz", small),
    )
    assert statuses(response) == [("nice.xml.gz", "imported"), ("huge.xml", "invalid")]
    assert "Larger than 48.8\xa0KB" in response.context["rows"][1].outcome.error
    assert not RawInput.objects.filter(name="huge.xml").exists()


def test_an_upload_holds_at_most_the_cap_in_all(bob, acme, settings):
    # Each file is under the cap; the files kept from one upload may not pass it together (a
    # file dropped as too large does not count), so an upload never fills memory or disk.
    plain = gzip.decompress(NICE_INPUT.read_bytes())
    settings.MAILSEC_REPORT_MAX_BYTES = len(plain) * 2 + 10
    Domain.objects.create(organization=acme, name="example.com")
    response = upload(
        client_for(bob),
        SimpleUploadedFile("huge.xml", b"x" * (len(plain) * 3)),
        SimpleUploadedFile("one.xml", plain),
        SimpleUploadedFile("two.xml", plain),
        SimpleUploadedFile("three.xml", plain),
    )
    assert statuses(response) == [
        ("one.xml", "imported"),
        ("two.xml", "duplicate"),
        ("huge.xml", "invalid"),
        ("three.xml", "invalid"),
    ]
    errors = [row.outcome.error for row in response.context["rows"][2:]]
    assert errors[0].startswith("Larger than ")
    assert errors[1].startswith("The files of one upload may hold ")
    assert not RawInput.objects.filter(name__in=["huge.xml", "three.xml"]).exists()


def test_only_oversized_files_still_get_their_rows(bob, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 1000
    response = upload(client_for(bob), SimpleUploadedFile("big.xml", b"x" * 5000))
    assert statuses(response) == [("big.xml", "invalid")]
    assert not RawInput.objects.exists()
