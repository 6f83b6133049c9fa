"""The domain pages: the list with its portfolio summary (in a bounded number of queries), one
domain's page, "check now" and its progress. The chart itself: test_charts.py."""

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from domains import pages
from domains.models import CheckRun, Domain, DomainEvent, EventKind, Finding, ManualCheck
from tests.conftest import client_for

SVG = "{http://www.w3.org/2000/svg}"

# --- building history -----------------------------------------------------------------------


def add_run(domain, *, days_ago=0.0, score=90, grade="A", findings=(), categories=None, now=None):
    """A run of `domain` that finished `days_ago` days ago; the newest one becomes its latest.
    `findings` are (kind, severity, title) or (kind, severity, title, detail, remediation)."""
    at = (now or timezone.now()) - timedelta(days=days_ago)
    run = CheckRun.objects.create(
        domain=domain,
        name=domain.name,
        started_at=at - timedelta(seconds=2),
        finished_at=at,
        status="complete" if score is not None else "error",
        score=score,
        grade=grade,
        categories=categories or {},
    )
    for kind, severity, title, *text in findings:
        detail, remediation = text or (f"evidence of {kind}", "fix it")
        Finding.objects.create(
            run=run,
            kind=kind,
            category=kind.split(".")[0],
            severity=severity,
            title=title,
            detail=detail,
            remediation=remediation,
        )
    latest = domain.runs.order_by("-finished_at").first()
    Domain.objects.filter(pk=domain.pk).update(
        last_run=latest,
        last_checked_at=latest.finished_at,
        score=latest.score,
        grade=latest.grade,
    )
    domain.refresh_from_db()
    return run


NO_SPF = ("spf.missing", "critical", "No SPF record")
NO_DMARC = ("dmarc.missing", "high", "No DMARC record")
NO_STS = ("mta_sts.missing", "low", "No MTA-STS policy")
NULL_MX = ("mx.null", "info", "Null MX: the domain accepts no mail")


def rows_of(response) -> list[str]:
    return [row.domain.name for row in response.context["listing"].rows]


# --- the list -------------------------------------------------------------------------------


def test_list_shows_grade_score_trend_and_worst_finding(alice, acme):
    rising = Domain.objects.create(organization=acme, name="rising.example")
    add_run(rising, days_ago=30, score=10, grade="F")
    add_run(rising, days_ago=8, score=70, grade="C")  # the latest at or before now - 7 days
    add_run(rising, days_ago=6, score=20, grade="F")  # after the cutoff: not the reference
    add_run(rising, days_ago=0.1, score=85, grade="B", findings=[NO_STS, NO_DMARC, NULL_MX])
    falling = Domain.objects.create(organization=acme, name="falling.example")
    add_run(falling, days_ago=7.5, score=95, grade="A+")
    add_run(falling, days_ago=0.2, score=85, grade="B", findings=[NO_STS])
    steady = Domain.objects.create(organization=acme, name="steady.example")
    add_run(steady, days_ago=10, score=91, grade="A")
    add_run(steady, days_ago=1, score=91, grade="A", findings=[NULL_MX])
    young = Domain.objects.create(organization=acme, name="young.example")
    add_run(young, days_ago=2, score=60, grade="D", findings=[NO_SPF])
    Domain.objects.create(organization=acme, name="fresh.example")

    response = client_for(alice).get("/domains/")
    rows = {row.domain.name: row for row in response.context["listing"].rows}
    assert {name: row.trend for name, row in rows.items()} == {
        "rising.example": 15,
        "falling.example": -10,
        "steady.example": 0,
        "young.example": None,
        "fresh.example": None,
    }
    assert rows["rising.example"].worst.kind == "dmarc.missing"  # high beats low and info
    assert rows["steady.example"].worst is None  # info is no open problem
    assert rows["young.example"].checked_ago == "2\xa0days ago"
    page = response.content.decode()
    assert "▲ +15" in page
    assert "▼ \u221210" in page  # a minus sign, not a hyphen
    assert '<span class="same">=</span>' in page
    assert '<span class="grade grade-b">B</span>' in page
    assert "No DMARC record" in page


def test_portfolio_counts_grades_and_common_findings_of_latest_runs(alice, acme, globex):
    for i, (score, grade, findings) in enumerate(
        [
            (97, "A+", []),
            (85, "B", [NO_STS]),
            (86, "B", [NO_STS, NO_DMARC]),
            (35, "F", [NO_SPF, NO_DMARC, NO_STS]),
            (None, "", []),
        ]
    ):
        domain = Domain.objects.create(organization=acme, name=f"d{i}.example")
        add_run(domain, days_ago=3, score=50, grade="D", findings=[NO_SPF])  # old: not counted
        add_run(domain, days_ago=0.5, score=score, grade=grade, findings=findings)
    Domain.objects.create(organization=acme, name="unchecked.example")
    other = Domain.objects.create(organization=globex, name="other.example")
    add_run(other, score=10, grade="F", findings=[NO_SPF])

    listing = client_for(alice).get("/domains/").context["listing"]
    counts = {g.label: g.count for g in listing.grades}
    assert counts == {
        "A+": 1,
        "A": 0,
        "B": 2,
        "C": 0,
        "D": 0,
        "F": 1,
        "Could not test": 1,
        "Not checked yet": 1,
    }
    assert listing.total == 6
    common = [(f["kind"], f["domains"], f["severity"]) for f in listing.common_findings]
    assert common == [
        ("mta_sts.missing", 3, "low"),
        ("dmarc.missing", 2, "high"),
        ("spf.missing", 1, "critical"),
    ]


@pytest.fixture
def portfolio(acme):
    """Five domains: grades, scores, checks and trends all in different orders."""
    specs = [
        ("alpha.example", 88, "B", 2, 80),
        ("bravo.example", 97, "A+", 5, 99),
        ("charlie.example", 40, "F", 1, 70),
        ("delta.example", 72, "C", 3, None),
    ]
    for name, score, grade, hours_ago, before in specs:
        domain = Domain.objects.create(organization=acme, name=name)
        if before is not None:
            add_run(domain, days_ago=8, score=before, grade="B")
        add_run(domain, days_ago=hours_ago / 24, score=score, grade=grade)
    Domain.objects.create(organization=acme, name="echo.example", notes="new shop")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["alpha", "bravo", "charlie", "delta", "echo"]),
        ("?sort=-name", ["echo", "delta", "charlie", "bravo", "alpha"]),
        ("?sort=score", ["charlie", "delta", "alpha", "bravo", "echo"]),
        ("?sort=-score", ["bravo", "alpha", "delta", "charlie", "echo"]),
        ("?sort=-checked", ["charlie", "alpha", "delta", "bravo", "echo"]),
        ("?sort=checked", ["echo", "bravo", "delta", "alpha", "charlie"]),
        ("?sort=trend", ["charlie", "bravo", "alpha", "delta", "echo"]),
        ("?sort=-trend", ["alpha", "bravo", "charlie", "delta", "echo"]),
        ("?grade=A%2B", ["bravo"]),
        ("?grade=none", ["echo"]),
        ("?grade=F&sort=-name", ["charlie"]),
        ("?q=HA", ["alpha", "charlie"]),
        ("?q=ha&sort=-score", ["alpha", "charlie"]),
        ("?q=nothing", []),
        ("?sort=bogus&grade=Z", ["alpha", "bravo", "charlie", "delta", "echo"]),
    ],
)
def test_sort_and_filter(alice, portfolio, query, expected):
    response = client_for(alice).get(f"/domains/{query}")
    assert response.status_code == 200
    assert rows_of(response) == [f"{name}.example" for name in expected]


def test_column_links_toggle_the_sort(alice, portfolio):
    listing = client_for(alice).get("/domains/?sort=score&grade=B").context["listing"]
    columns = listing.columns
    assert columns["score"].aria_sort == "ascending"
    assert columns["score"].url == "?grade=B&sort=-score"
    assert columns["name"].url == "?grade=B"  # name ascending is the default
    assert columns["checked"].url == "?grade=B&sort=-checked"  # newest first to begin with
    assert columns["name"].aria_sort == ""


def test_common_findings_are_kept_until_a_domain_or_a_grade_changes_them(alice, acme, monkeypatch):
    """The summary is kept in the cache a minute (it reads every domain's latest findings); a
    new domain, a removed one or a changed grade shows at once."""
    monkeypatch.setattr(pages, "COMMON_FINDINGS_KEPT", 10**9)  # no minute ends in the test
    one = Domain.objects.create(organization=acme, name="one.example")
    add_run(one, days_ago=0.5, findings=[NO_STS])
    client = client_for(alice)

    def common():
        listing = client.get("/domains/").context["listing"]
        return [(f["kind"], f["domains"]) for f in listing.common_findings]

    assert common() == [("mta_sts.missing", 1)]
    with CaptureQueriesContext(connection) as queries:
        assert common() == [("mta_sts.missing", 1)]
    assert not [q for q in queries.captured_queries if "COUNT(DISTINCT" in q["sql"]]
    add_run(one, score=70, grade="C", findings=[NO_DMARC])
    assert common() == [("dmarc.missing", 1)]
    two = Domain.objects.create(organization=acme, name="two.example")
    add_run(two, findings=[NO_DMARC])
    assert common() == [("dmarc.missing", 2)]
    two.delete()
    assert common() == [("dmarc.missing", 1)]


def test_filter_by_finding_from_the_summary(alice, acme):
    for name, findings in [("one.example", [NO_STS]), ("two.example", [NO_DMARC])]:
        add_run(Domain.objects.create(organization=acme, name=name), findings=findings)
    client = client_for(alice)
    common = client.get("/domains/").context["listing"].common_findings
    url = next(f["url"] for f in common if f["kind"] == "mta_sts.missing")
    assert url == "?finding=mta_sts.missing"
    assert rows_of(client.get(f"/domains/{url}")) == ["one.example"]


def test_search_finds_idns_by_their_unicode_name(alice, acme):
    Domain.objects.create(organization=acme, name="xn--bcher-kva.de")
    Domain.objects.create(organization=acme, name="buecher.de")
    client = client_for(alice)
    assert rows_of(client.get("/domains/?q=Bü")) == ["xn--bcher-kva.de"]
    assert rows_of(client.get("/domains/?q=xn--b")) == ["xn--bcher-kva.de"]


def test_pages_of_the_list(alice, acme, monkeypatch):
    monkeypatch.setattr(pages, "PER_PAGE", 4)
    Domain.objects.bulk_create(
        [Domain(organization=acme, name=f"d{i:02}.example") for i in range(10)]
    )
    client = client_for(alice)
    first = client.get("/domains/?q=d0")
    assert rows_of(first) == [f"d0{i}.example" for i in range(4)]
    assert first.context["listing"].next_url == "?q=d0&page=2"
    last = client.get("/domains/?q=d0&page=3")
    assert rows_of(last) == ["d08.example", "d09.example"]
    assert last.context["listing"].previous_url == "?q=d0&page=2"
    assert "page 3 of 3" in last.content.decode()
    assert rows_of(client.get("/domains/?q=d0&page=99")) == ["d08.example", "d09.example"]


def test_other_teams_domains_stay_out_of_list_and_summary(alice, acme, globex):
    add_run(Domain.objects.create(organization=globex, name="secret.example"), findings=[NO_SPF])
    response = client_for(alice).get("/domains/")
    assert "secret.example" not in response.content.decode()
    assert "No SPF record" not in response.content.decode()


def make_portfolio(organization, count: int, now) -> None:
    """`count` more domains with a month of daily runs, two findings on each latest run."""
    first = organization.domains.count()
    domains = Domain.objects.bulk_create(
        [Domain(organization=organization, name=f"p{i:03}.example") for i in range(first, count)]
    )
    runs = CheckRun.objects.bulk_create(
        CheckRun(
            domain=d,
            name=d.name,
            started_at=now - timedelta(days=day),
            finished_at=now - timedelta(days=day),
            status="complete",
            score=50 + (i + day) % 50,
            grade="C",
        )
        for i, d in enumerate(domains)
        for day in range(30, -1, -1)
    )
    latest = {run.domain_id: run for run in runs}  # the last one of each domain is the newest
    Finding.objects.bulk_create(
        Finding(run=run, kind=kind, category=kind.split(".")[0], severity=sev, title=title)
        for run in latest.values()
        for kind, sev, title in [NO_STS, NO_DMARC]
    )
    for d in domains:
        run = latest[d.pk]
        d.last_run, d.last_checked_at, d.score, d.grade = run, run.finished_at, run.score, "C"
    Domain.objects.bulk_update(domains, ["last_run", "last_checked_at", "score", "grade"])


# session, user, sign-in gate (second factor, team policy), memberships, grades, findings,
# count, page, trends, worst
LIST_QUERIES = 10


@pytest.mark.parametrize("query", ["", "?sort=-trend", "?grade=C&q=p0&sort=-checked"])
def test_list_queries_do_not_grow_with_the_domains(
    alice, acme, django_assert_max_num_queries, query
):
    now = timezone.now()
    client = client_for(alice)
    counts = []
    for total in (5, 50):
        make_portfolio(acme, total, now)
        with (
            django_assert_max_num_queries(LIST_QUERIES),
            CaptureQueriesContext(connection) as captured,
        ):
            response = client.get(f"/domains/{query}")
        assert response.status_code == 200
        assert all(row.worst.kind == "dmarc.missing" for row in response.context["listing"].rows)
        counts.append(len(captured))
    assert counts[0] == counts[1]


# --- one domain -----------------------------------------------------------------------------

CATEGORIES = {
    "spf": {"status": "fail", "score": 0, "applicable": True, "records": {"TXT": []}},
    "mx": {
        "status": "pass",
        "score": 100,
        "applicable": True,
        "records": {"MX": ["10 mx.acme.example."], "PTR": {"127.0.0.9": ["mx.acme.example."]}},
    },
    "bimi": {"status": "info", "score": None, "applicable": False, "records": {}},
    "dkim": {"status": "error", "score": None, "applicable": True, "records": {}},
    "dmarc": {
        "status": "warn",
        "score": 80,
        "applicable": True,
        "records": {"TXT": ["v=DMARC1; p=none"], "location": "_dmarc.acme.example"},
    },
}
SPF_FIX = 'Publish the servers: `acme.example. TXT "v=spf1 mx -all"` End it with `-all` <now>.'


def test_domain_page_shows_categories_findings_records_and_chart(alice, acme_domain):
    add_run(acme_domain, days_ago=120, score=10, grade="F")  # older than the chart
    add_run(acme_domain, days_ago=40, score=None, grade="")
    add_run(
        acme_domain,
        days_ago=1,
        score=38,
        grade="F",
        categories=CATEGORIES,
        findings=[
            NO_STS,
            ("spf.missing", "critical", "No SPF record", "acme.example: no TXT", SPF_FIX),
            NO_DMARC,
        ],
    )
    response = client_for(alice).get(f"/domains/{acme_domain.pk}/")
    page = response.context["page"]
    assert [(c.label, c.status_label, c.score) for c in page.categories] == [
        ("MX", "Pass", 100),
        ("SPF", "Fail", 0),
        ("DMARC", "Warning", 80),
        ("DKIM", "Could not test", None),
        ("BIMI", "Not applicable", None),
    ]
    assert [(s, [v.finding.kind for v in group]) for s, group in page.findings] == [
        ("critical", ["spf.missing"]),
        ("high", ["dmarc.missing"]),
        ("low", ["mta_sts.missing"]),
    ]
    assert [(r.category, r.name, r.values) for r in page.records] == [
        ("MX", "MX", ["10 mx.acme.example."]),
        ("MX", "PTR 127.0.0.9", ["mx.acme.example."]),
        ("DMARC", "TXT", ["v=DMARC1; p=none"]),
        ("DMARC", "location", ["_dmarc.acme.example"]),
    ]
    html = response.content.decode()
    assert '<span class="grade big grade-f" data-grade="F">F</span>' in html
    assert "acme.example: no TXT" in html
    # The example record is a block with a copy button (shown by the script); tokens stay inline.
    assert re.search(
        r'<code id="(fix-\d+-2)">acme.example. TXT &quot;v=spf1 mx -all&quot;</code>'
        r'<button type="button" class="small copy" data-copy="\1" hidden>Copy</button>',
        html,
    )
    assert "End it with <code>-all</code> &lt;now&gt;." in html
    assert "static/js/mailsec.js" in html
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", html, re.S).group(0))  # noqa: S314
    assert len(svg.findall(f".//{SVG}circle")) == 1  # the run of 40 days ago had no score
    assert len(svg.findall(f".//{SVG}path[@class='chart-gap']")) == 1


def test_timeline_newest_first_and_at_most_50(alice, acme_domain):
    now = timezone.now()
    DomainEvent.objects.bulk_create(
        DomainEvent(
            domain=acme_domain,
            created_at=now - timedelta(hours=i),
            kind=EventKind.RECORD_CHANGED,
            summary=f"event {i}",
        )
        for i in range(60)
    )
    response = client_for(alice).get(f"/domains/{acme_domain.pk}/")
    events = response.context["page"].events
    assert [e.summary for e in events] == [f"event {i}" for i in range(50)]
    assert "DNS record changed" in response.content.decode()


def test_an_unchecked_domain_has_a_page(victor, acme_domain):
    response = client_for(victor).get(f"/domains/{acme_domain.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "has not been checked yet" in html
    assert "No runs in this period" in html
    assert "Check now" not in html  # a viewer


# --- check now ------------------------------------------------------------------------------


def test_check_now_without_javascript_redirects_with_a_message(bob, acme_domain):
    client = client_for(bob)
    page = client.get(f"/domains/{acme_domain.pk}/").content.decode()
    assert f'action="/domains/{acme_domain.pk}/check/"' in page
    response = client.post(f"/domains/{acme_domain.pk}/check/", follow=True)
    manual = ManualCheck.objects.get()
    assert (manual.domain, manual.user, manual.state) == (acme_domain, bob, "queued")
    assert response.redirect_chain == [(f"/domains/{acme_domain.pk}/", 302)]
    html = response.content.decode()
    assert "A check of acme.example is queued" in html
    assert f'data-poll="/domains/{acme_domain.pk}/check/{manual.pk}/"' in html  # the pending one


def test_check_now_with_javascript_answers_the_progress_partial(bob, acme_domain):
    client = client_for(bob)
    url = f"/domains/{acme_domain.pk}/check/"
    response = client.post(url, headers={"X-Mailsec-Fragment": "1"})
    assert response.status_code == 202
    manual = ManualCheck.objects.get()
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="check-status"')
    assert f'data-poll="{url}{manual.pk}/"' in html
    assert "Check queued" in html
    again = client.post(url, headers={"X-Mailsec-Fragment": "1"})
    assert again.status_code == 429
    assert "checked less than a minute ago" in again.content.decode()
    assert ManualCheck.objects.count() == 1


def test_check_now_rate_limited_without_javascript(bob, acme_domain):
    client = client_for(bob)
    client.post(f"/domains/{acme_domain.pk}/check/")
    response = client.post(f"/domains/{acme_domain.pk}/check/", follow=True)
    assert "checked less than a minute ago" in response.content.decode()
    assert ManualCheck.objects.count() == 1


def test_progress_partial_follows_the_check(alice, acme_domain):
    manual = ManualCheck.objects.create(domain=acme_domain, user=alice, requested_at=timezone.now())
    url = f"/domains/{acme_domain.pk}/check/{manual.pk}/"
    client = client_for(alice)
    assert "data-poll" in client.get(url).content.decode()
    ManualCheck.objects.filter(pk=manual.pk).update(state="running")
    running = client.get(url).content.decode()
    assert "Checking acme.example" in running
    assert "data-poll" in running
    run = add_run(acme_domain, score=97, grade="A+")
    ManualCheck.objects.filter(pk=manual.pk).update(state="done", run=run)
    done = client.get(url).content.decode()
    assert "data-poll" not in done
    assert '<span class="grade grade-aplus" data-grade="A+">A+</span>, score 97' in done
    # No "reload the page": the script fetches the changed parts of the page and swaps them in.
    assert f'data-refresh="/domains/{acme_domain.pk}/live/"' in done
    assert "Reload" not in done
    ManualCheck.objects.filter(pk=manual.pk).update(state="failed", error="TimeoutError: slow")
    failed = client.get(url).content.decode()
    assert "The check failed: TimeoutError: slow" in failed
    assert "data-poll" not in failed
    assert "data-refresh" in failed


def test_viewers_cannot_check_and_other_teams_see_nothing(
    victor, olga, acme_domain, globex_domain, alice
):
    assert client_for(victor).post(f"/domains/{acme_domain.pk}/check/").status_code == 403
    assert client_for(olga).post(f"/domains/{acme_domain.pk}/check/").status_code == 404
    assert not ManualCheck.objects.exists()
    manual = ManualCheck.objects.create(domain=acme_domain, user=alice, requested_at=timezone.now())
    assert (
        client_for(victor).get(f"/domains/{acme_domain.pk}/check/{manual.pk}/").status_code == 200
    )
    assert client_for(olga).get(f"/domains/{acme_domain.pk}/check/{manual.pk}/").status_code == 404
    # A check of another domain is not found under this one.
    assert (
        client_for(olga).get(f"/domains/{globex_domain.pk}/check/{manual.pk}/").status_code == 404
    )
    assert client_for(alice).get(f"/domains/{acme_domain.pk}/check/").status_code == 405
