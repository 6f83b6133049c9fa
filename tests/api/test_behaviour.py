"""What the API does beyond who may: validation in the forms' words, cursor pages, the rate
limit with Retry-After, uploads with the outcomes of `import_reports --json`, reports and
their summaries."""

import io
import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from domains.bulk import add_domains, names_from_text
from domains.forms import DomainAddForm, DomainEditForm
from domains.models import CheckRun, Domain, RunStatus
from reports import uploads
from reports.models import AggregateReport, TlsReport, UploadFile
from tests.api.conftest import api_client, token_for
from tests.api.world import AGGREGATE, FAILURE, TLS, receive


@pytest.fixture
def client(alice, acme):
    return api_client(token_for(alice, acme, "write"))


def post(client, path, data):
    return client.post(path, data, content_type="application/json")


# --- validation in the forms' words ----------------------------------------------------------


NAMES = ["ok.example", "bad name", "-x.example", "ok.example", "acme.example", "a" * 300]


def test_adding_refuses_each_name_as_the_page_does(client, acme, globex, acme_domain):
    # The page's answer for the same lines, in another team with the same domains.
    Domain.objects.create(organization=globex, name="acme.example")
    page = add_domains(globex, names_from_text("\n".join(NAMES)))
    response = post(client, "/api/v1/domains/", {"names": NAMES})
    assert response.status_code == 201
    body = response.json()
    assert [d["name"] for d in body["added"]] == ["ok.example"]
    assert body["rejected"] == [
        {"line": r.line, "text": r.text, "reason": r.reason} for r in page.rejected
    ]
    assert len(body["rejected"]) == 5


def test_nothing_to_add_says_what_the_form_says(client):
    form = DomainAddForm(data={"names": ""})
    assert not form.is_valid()
    response = post(client, "/api/v1/domains/", {"names": []})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": form.non_field_errors()}
    assert post(client, "/api/v1/domains/", {}).json() == response.json()


def test_all_refused_is_a_400_with_every_reason(client, acme_domain):
    response = post(client, "/api/v1/domains/", {"names": ["acme.example", "bad name"]})
    assert response.status_code == 400
    assert [r["line"] for r in response.json()["rejected"]] == [1, 2]
    assert response.json()["added"] == []


def test_a_csv_file_as_on_the_page(client):
    csv = SimpleUploadedFile("d.csv", b"domain\ncsv.example\nbad name\n")
    response = client.post("/api/v1/domains/", {"csv_file": csv})
    assert response.status_code == 201
    body = response.json()
    assert [d["name"] for d in body["added"]] == ["csv.example"]
    assert body["rejected"] == [
        {"line": 3, "text": "bad name", "reason": "A domain name cannot contain spaces."}
    ]


@pytest.mark.parametrize(
    ("given", "as_form"),
    [
        ({"check_interval": 5}, {"check_interval": "5"}),
        ({"probe_interval": 60}, {"probe_interval": "60"}),
        ({"dkim_selectors": ["ok", "bad selector!"]}, {"dkim_selectors": "ok bad selector!"}),
        ({"mail_access_hosts": ["mail.example:25"]}, {"mail_access_hosts": "mail.example:25"}),
        ({"mail_access_hosts": ["-bad-"]}, {"mail_access_hosts": "-bad-"}),
    ],
)
def test_editing_refuses_as_the_edit_form_does(client, acme_domain, given, as_form):
    base = {"check_interval": "21600", "probe_interval": "86400", "notes": ""}
    form = DomainEditForm(data=base | as_form, instance=acme_domain)
    assert not form.is_valid()
    response = client.patch(
        f"/api/v1/domains/{acme_domain.pk}/", given, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {name: list(errors) for name, errors in form.errors.items()}


def test_editing_changes_only_what_is_given(client, acme_domain):
    acme_domain.dkim_selectors = ["keep"]
    acme_domain.save()
    response = client.patch(
        f"/api/v1/domains/{acme_domain.pk}/",
        {"check_interval": 3600, "mail_access_hosts": ["imap.acme.example:993"]},
        content_type="application/json",
    )
    assert response.status_code == 200
    acme_domain.refresh_from_db()
    assert acme_domain.check_interval == timedelta(hours=1)
    assert acme_domain.mail_access_hosts == ["imap.acme.example:993"]
    assert acme_domain.dkim_selectors == ["keep"]
    assert response.json()["check_interval"] == 3600


# --- lists: filters, ordering, cursor pages ----------------------------------------------------


def collect(client, url) -> list[dict]:
    rows, pages = [], 0
    while url:
        body = client.get(url).json()
        rows += body["results"]
        url, pages = body["next"], pages + 1
        assert pages < 100
    return rows


def test_cursor_pages_walk_every_domain_once(client, acme):
    Domain.objects.bulk_create(
        Domain(organization=acme, name=f"d{i:03}.example", grade="AB"[i % 2]) for i in range(120)
    )
    rows = collect(client, "/api/v1/domains/?page_size=50")
    assert [r["name"] for r in rows] == sorted(f"d{i:03}.example" for i in range(120))
    first = client.get("/api/v1/domains/?page_size=50").json()
    assert len(first["results"]) == 50 and first["previous"] is None
    assert "cursor=" in first["next"]
    grade_a = collect(client, "/api/v1/domains/?grade=A&page_size=7&ordering=-name")
    assert [r["name"] for r in grade_a] == sorted(
        (f"d{i:03}.example" for i in range(0, 120, 2)), reverse=True
    )
    assert [r["name"] for r in collect(client, "/api/v1/domains/?search=d11")] == [
        f"d11{i}.example" for i in range(10)
    ]


def test_runs_page_newest_first(client, acme_domain):
    now = timezone.now()
    CheckRun.objects.bulk_create(
        CheckRun(
            domain=acme_domain,
            name=acme_domain.name,
            started_at=now - timedelta(hours=i),
            finished_at=now - timedelta(hours=i),
            status=RunStatus.COMPLETE,
        )
        for i in range(75)
    )
    rows = collect(client, f"/api/v1/domains/{acme_domain.pk}/runs/?page_size=20")
    times = [r["finished_at"] for r in rows]
    assert len(times) == 75 and times == sorted(times, reverse=True)


def test_an_aggregate_report_s_records_in_pages(client, acme):
    report = receive(AGGREGATE, acme, AggregateReport)
    url = f"/api/v1/reports/aggregate/{report.pk}/records/?page_size=1"
    rows = collect(client, url)
    assert len(rows) == report.records.count() == report.record_count
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)


# --- the rate limit ------------------------------------------------------------------------


def test_too_many_requests_answer_429_with_retry_after(alice, bob, acme, settings):
    settings.MAILSEC_API_RATE = 3
    client = api_client(token_for(alice, acme, "read"))
    assert [client.get("/api/v1/finding-kinds/").status_code for _ in range(3)] == [200] * 3
    refused = client.get("/api/v1/finding-kinds/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Per token: another token (of the same team) has its own count.
    assert api_client(token_for(bob, acme, "read")).get("/api/v1/domains/").status_code == 200


def test_the_count_is_kept_where_every_process_sees_it():
    """The throttle counts in the default cache: Redis, or files, never one process's memory
    (the web server runs several)."""
    backend = django_settings.CACHES["default"]["BACKEND"]
    assert backend in (
        "django.core.cache.backends.redis.RedisCache",
        "django.core.cache.backends.filebased.FileBasedCache",
    )


# --- uploads and reports -------------------------------------------------------------------


def import_json(path, team) -> list[dict]:
    out = io.StringIO()
    call_command("import_reports", str(path), "--json", "--team", str(team.pk), stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_an_upload_ends_with_the_outcomes_of_import_reports(client, acme, globex):
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in (AGGREGATE, TLS, FAILURE)]
    files.append(SimpleUploadedFile("junk.txt", b"not a report"))
    response = client.post("/api/v1/uploads/", {"files": files})
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["url"] == f"/api/v1/uploads/{body['id']}/"
    assert body["pending"] == 4
    for file in UploadFile.objects.all():  # what the worker does (tests/reports: a real one)
        uploads.parse(file.pk)
    done = client.get(body["url"]).json()
    assert done["pending"] == 0
    outcomes = [o for f in done["files"] for o in f["outcomes"]]
    # The same files imported by the command, for another team (so nothing is a duplicate).
    expected = []
    for path in (AGGREGATE, TLS, FAILURE):
        # The command names a file by the path it was given, an upload by the file's name.
        lines = [line for line in import_json(path, globex) if "summary" not in line]
        expected += [line | {"file": path.name} for line in lines]
    assert outcomes[:3] == expected
    assert outcomes[3]["status"] == "invalid" and outcomes[3]["file"] == "junk.txt"


def test_an_upload_needs_a_file(client):
    response = client.post("/api/v1/uploads/", {})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Choose at least one report file."]}


def test_reports_and_the_domain_summary(client, acme, acme_domain):
    report = receive(AGGREGATE, acme, AggregateReport)
    tls = receive(TLS, acme, TlsReport)
    domain = Domain.objects.create(organization=acme, name=report.domain)
    listed = client.get(f"/api/v1/reports/aggregate/?domain={report.domain}").json()
    assert [r["id"] for r in listed["results"]] == [report.pk]
    assert client.get("/api/v1/reports/aggregate/?domain=other.example").json()["results"] == []
    detail = client.get(f"/api/v1/reports/tls/{tls.pk}/").json()
    assert detail["policies"][0]["policy_domain"]
    by_policy = client.get(f"/api/v1/reports/tls/?domain={detail['policies'][0]['policy_domain']}")
    assert tls.pk in [r["id"] for r in by_policy.json()["results"]]
    days = (timezone.now().date() - report.begin.date()).days + 2
    summary = client.get(f"/api/v1/domains/{domain.pk}/report-summary/?days={days}").json()
    assert summary["messages"] == report.message_count > 0
    assert summary["dmarc_pass"] == report.dmarc_pass
    assert summary["top_sources"]
    assert client.get(f"/api/v1/domains/{domain.pk}/report-summary/?days=0").status_code == 400


def test_the_domain_series_and_senders_are_the_pages_data(client, acme):
    report = receive(AGGREGATE, acme, AggregateReport)
    domain = Domain.objects.create(organization=acme, name=report.domain)
    day = report.begin.date().isoformat()
    custom = f"range=custom&since={day}&until={report.end.date().isoformat()}"
    series = client.get(f"/api/v1/domains/{domain.pk}/report-series/?{custom}").json()
    assert series["domain"] == report.domain and series["since"] == day
    assert sum(d["messages"] for d in series["days"]) == report.message_count > 0
    assert sum(d["dmarc_pass"] for d in series["days"]) == report.dmarc_pass
    for d in series["days"]:
        stack = d["pass_delivered"] + d["fail_none"] + d["quarantined"] + d["rejected"]
        assert stack == d["messages"]
    senders = client.get(f"/api/v1/domains/{domain.pk}/senders/?{custom}").json()
    assert sum(s["messages"] for s in senders["senders"]) == report.message_count
    assert {s["classification"] for s in senders["senders"]} <= {
        "authorised", "forwarded", "failing_authorised", "suspicious",
    }  # fmt: skip
    assert senders["readiness"]["messages"] == report.message_count
    bad = client.get(f"/api/v1/domains/{domain.pk}/senders/?range=custom&since=2026-13-01")
    assert bad.status_code == 400 and "not YYYY-MM-DD" in bad.json()["range"][0]


def test_a_bad_item_of_a_list_is_named_in_a_list_of_messages(client):
    """The schema's shape (a list of messages per field), also for an item DRF itself refuses."""
    response = client.post(
        "/api/v1/domains/", {"names": ["ok.example", "a\u0000b"]}, "application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"names": ["item 2: Null characters are not allowed."]}
