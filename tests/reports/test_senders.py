"""Senders of a domain from real fixture reports, their addresses looked up in the tests' knot
(reverse DNS as tests/reports/senders_world.py serves it): grouping on realistic names, honest
failures, the pages (tenancy, marks, CSV, query counts) and `manage.py senders`."""

import csv
import io
import ipaddress
import json
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from domains.models import Domain, DomainEvent, EventKind
from reports import ingest
from reports.models import InputSource, PtrStatus, SeenSender, SenderMark, SourceAddress
from reports.senders import enrich, news
from reports.senders.report import _per_address, candidates_of, one_sender, senders_view
from tests.conftest import client_for
from tests.reports import senders_world as world
from tests.reports.test_spread import report_xml


def one_record(count: int) -> tuple:
    return ("192.0.2.7", count, "none", "pass", "fail")


FIXTURES = Path(__file__).parent.parent / "fixtures" / "reports" / "aggregate"
NICE = FIXTURES / "parsedmarc__nice-input.xml"  # 2024-06-13: Google, Amazon SES
ZOHO = FIXTURES / "parsedmarc__zoho.com!example.com!1581753600!1581840000.xml"  # 2020-02-15
OUTLOOK = FIXTURES / "parsedmarc__protection.outlook.com!example.com!1711756800!1711843200.xml"
ALL_TIME = {"range": "custom", "since": "2020-01-01", "until": "2024-12-31"}


def imported(team, *paths):
    reports = []
    for path in paths:
        outcomes = ingest.ingest_input(
            str(path), path.name, via=InputSource.COMMAND, organization=team
        )
        reports += [o.report_pk for o in outcomes if o.status == "imported"]
    return reports


@pytest.fixture
def nameservers(knot):
    return [(knot.host, knot.port)]


@pytest.fixture
def example(acme, nameservers):
    """acme monitors example.com and received the three fixture reports, addresses looked up."""
    domain = Domain.objects.create(organization=acme, name="example.com")
    for report in imported(acme, NICE, ZOHO, OUTLOOK):
        enrich.enrich_report(report, nameservers=nameservers)
    return domain


def test_addresses_get_their_names_confirmed_or_not(example):
    found = {a.ip: a for a in SourceAddress.objects.all()}
    google = found["209.85.220.41"]
    assert (google.ptr, google.fcrdns, google.base_domain) == (
        "mail-sor-f41.google.com",
        True,
        "google.com",
    )
    assert google.country == "US"  # RIR data in the iptocc wheel
    v6 = found[world.GOOGLE_V6[0]]
    assert (v6.ptr, v6.fcrdns) == (world.GOOGLE_V6[1], True)
    ses = found["54.240.8.31"]
    assert (ses.ptr, ses.fcrdns, ses.base_domain) == (
        world.SES["54.240.8.31"],
        True,
        "amazonses.com",
    )
    unconfirmed = found[world.UNCONFIRMED[0]]
    assert (unconfirmed.ptr, unconfirmed.fcrdns) == (world.UNCONFIRMED[1], False)
    none = found[world.NO_PTR]
    assert (none.ptr_status, none.ptr, none.fcrdns) == (PtrStatus.NONE, "", None)
    assert len(found) == 3 + 1 + 11 + 8 + 1


def test_senders_are_grouped_by_service_then_block(example):
    view = senders_view(example, date(2020, 1, 1), date(2024, 12, 31))
    by_label = {s.label: s for s in view.senders}
    assert list(by_label) == [
        "Google (Including Gmail and Google Workspace)",
        "Amazon SES",
        "Cisco Cloud Email Security (CES)",
        "216.71.148.0/24",
        "100.24.188.0/24",
    ]
    google = by_label["Google (Including Gmail and Google Workspace)"]
    assert (len(google.ips), google.messages, google.dmarc_pass) == (4, 2675, 2675)
    assert google.classification == "authorised" and google.fcrdns is True
    ses = by_label["Amazon SES"]
    assert (len(ses.ips), ses.messages, ses.spf_aligned, ses.dkim_aligned) == (11, 372, 0, 372)
    assert ses.classification == "authorised"  # a known service signing with the domain
    cisco = by_label["Cisco Cloud Email Security (CES)"]
    assert (len(cisco.ips), cisco.messages, cisco.dmarc_pass) == (7, 7, 0)
    assert cisco.classification == "suspicious"
    block = by_label["216.71.148.0/24"]
    assert (block.ptr, block.fcrdns, block.messages) == (world.UNCONFIRMED[1], False, 2)
    assert by_label["100.24.188.0/24"].fcrdns is None
    assert view.unknown == 0
    r = view.readiness
    assert (str(r.policy), r.step.change, r.affected, r.legitimate) == (
        "p=none",
        "p=quarantine",
        10,
        0,
    )


def test_a_lookup_that_fails_is_unknown_not_missing(acme, db):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    [report] = imported(acme, OUTLOOK)
    counts = enrich.enrich_report(report, nameservers=[("127.0.0.1", port)])
    assert counts[PtrStatus.FAILED] == 1 and counts[PtrStatus.NONE] == 0
    address = SourceAddress.objects.get()
    assert (address.ptr_status, address.fcrdns) == (PtrStatus.FAILED, None)
    assert (address.expires_at - address.looked_up_at) == enrich.FAILED_FOR  # retried soon
    assert enrich.due([address.ip]) == []  # not asked again before then


def test_marking_a_sender_ours_changes_the_advice(example, bob):
    client = client_for(bob)
    url = f"/reports/domain/{example.pk}/senders/"
    page = client.get(url, ALL_TIME).content.decode()
    assert "Move to p=quarantine: 99.7% of your mail passes DMARC" in page
    response = client.post(
        f"{url}mark/",
        {"mark": "ours service:Cisco Cloud Email Security (CES)"} | ALL_TIME,
    )
    assert response.status_code == 302
    assert response["Location"].startswith(url + "?range=custom&since=2020-01-01")
    mark = SenderMark.objects.get()
    assert (mark.organization_id, mark.marked_by, mark.verdict) == (
        example.organization_id,
        bob,
        "ours",
    )
    page = client.get(url, ALL_TIME).content.decode()
    assert "the only failing authorised sender is Cisco Cloud Email Security (CES)" in page
    client.post(f"{url}mark/", {"mark": f"clear {mark.sender}"})
    assert not SenderMark.objects.exists()


def test_the_senders_table_is_one_form_whose_buttons_name_the_sender(example, bob):
    client = client_for(bob)
    url = f"/reports/domain/{example.pk}/senders/"
    page = client.get(url, ALL_TIME).content.decode()
    # One form, one CSRF token and one copy of the range for the whole table (the page's
    # other forms, sign out and language, are in its header and footer).
    table = page.split('id="senders-title"')[1].split("</section>")[0]
    assert table.count("<form") == 1 and table.count("csrfmiddlewaretoken") == 1
    assert table.count('name="since"') == 1 and table.count('name="mark"') > 5
    cisco = "service:Cisco Cloud Email Security (CES)"
    assert f'name="mark" value="ours {cisco}"' in page
    response = client.post(f"{url}mark/", {"mark": f"ours {cisco}"} | ALL_TIME)
    assert response.status_code == 302 and "since=2020-01-01" in response["Location"]
    assert SenderMark.objects.values_list("sender", "verdict").get() == (cisco, "ours")
    page = client.get(url, ALL_TIME).content.decode()
    assert f'name="mark" value="clear {cisco}"' in page
    assert f'name="mark" value="ours {cisco}"' not in page
    for wrong in ("", "ours", "maybe " + cisco, " " + cisco):
        assert client.post(f"{url}mark/", {"mark": wrong}).status_code == 400, wrong
    client.post(f"{url}mark/", {"mark": f"clear {cisco}"})
    assert not SenderMark.objects.exists()


def test_viewers_cannot_mark_and_other_teams_see_nothing(example, victor, olga):
    url = f"/reports/domain/{example.pk}/senders/"
    mark = {"mark": "not_ours net:100.24.188.0/24"}
    assert client_for(victor).get(url).status_code == 200
    assert client_for(victor).post(f"{url}mark/", mark).status_code == 403
    outsider = client_for(olga)
    for path in ("", "csv/", "one/?sender=net:100.24.188.0/24"):
        assert outsider.get(url + path).status_code == 404
    assert outsider.post(f"{url}mark/", mark).status_code == 404
    assert not SenderMark.objects.exists()


def test_the_csv_holds_the_table_of_the_range(example, alice):
    response = client_for(alice).get(f"/reports/domain/{example.pk}/senders/csv/", ALL_TIME)
    assert response["Content-Type"].startswith("text/csv")
    assert "senders-example.com-2020-01-01-2024-12-31.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["sender"] for r in rows][:2] == [
        "Google (Including Gmail and Google Workspace)",
        "Amazon SES",
    ]
    assert rows[1]["ips"] == "11" and rows[1]["base_domain"] == "amazonses.com"
    only_2024 = {"range": "custom", "since": "2024-01-01", "until": "2024-12-31"}
    response = client_for(alice).get(f"/reports/domain/{example.pk}/senders/csv/", only_2024)
    senders = [r["sender"] for r in csv.DictReader(io.StringIO(response.content.decode()))]
    assert "Cisco Cloud Email Security (CES)" not in senders and "100.24.188.0/24" in senders


def test_the_sender_page_has_its_days(example, alice):
    response = client_for(alice).get(
        f"/reports/domain/{example.pk}/senders/one/", ALL_TIME | {"sender": "service:Amazon SES"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "2024-06-13" in page and "372" in page and "amazonses.com" in page
    # The chart of its days, as the domain's (reports/charts.py), titled by the sender.
    assert '<figure class="chart-wrap" id="sender-volume-chart"><svg' in page
    assert "Messages from Amazon SES per day" in page
    # Its mark is a form of its own, with the same buttons as the table's rows.
    assert page.count('class="inline mark-form"') == 1
    assert 'name="mark" value="ours service:Amazon SES"' in page
    # The chart's numbers, as the domain's chart has them.
    query = "range=custom&amp;since=2020-01-01&amp;until=2024-12-31&amp;sender=service%3AAmazon+SES"
    assert f'href="/reports/domain/{example.pk}/senders/one/volume.csv?{query}"' in page
    download = client_for(alice).get(
        f"/reports/domain/{example.pk}/senders/one/volume.csv",
        ALL_TIME | {"sender": "service:Amazon SES"},
    )
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert len(rows) == (date(2024, 12, 31) - date(2020, 1, 1)).days + 1
    [busy] = [r for r in rows if r["messages"] != "0"]
    assert (busy["day"], busy["messages"]) == ("2024-06-13", "372")
    assert "Amazon SES" in download["Content-Disposition"]
    as_json = client_for(alice).get(
        f"/reports/domain/{example.pk}/senders/one/volume.json",
        ALL_TIME | {"sender": "service:Amazon SES"},
    )
    assert json.loads(as_json.content)["sender"] == "service:Amazon SES"


def test_a_senders_table_of_days_lists_the_latest_and_its_numbers_have_all(alice, acme_domain):
    # One address, a report a day for 40 days: the table shows the latest 31, the chart's
    # CSV all the range's days.
    first = datetime(2024, 3, 1, tzinfo=UTC)
    for n in range(40):
        begin = first + timedelta(days=n)
        xml = report_xml(begin, begin + timedelta(seconds=86399), [one_record(n + 1)], f"d-{n}")
        [outcome] = ingest.ingest_input(
            xml, f"d-{n}.xml", via="upload", organization=acme_domain.organization
        )
        assert outcome.status == "imported", outcome.error
    client = client_for(alice)
    query = {"range": "custom", "since": "2024-03-01", "until": "2024-04-30"}
    query["sender"] = "net:192.0.2.0/24"
    url = f"/reports/domain/{acme_domain.pk}/senders/one/"
    page = client.get(url, query).content.decode()
    table = page[page.index('class="list sender-days"') :]
    assert table.count("<tr><td>") == 31
    assert "The latest 31 days with mail" in page
    assert ">40<" in table and ">10<" in table and ">9<" not in table  # days 10 to 40
    rows = list(csv.DictReader(io.StringIO(client.get(url + "volume.csv", query).content.decode())))
    assert len(rows) == 61 and sum(int(r["messages"]) for r in rows) == sum(range(1, 41))


def test_a_senders_page_finds_it_from_its_candidate_addresses_alone(example, alice, acme):
    SenderMark.objects.create(
        organization=acme, domain=example, sender="service:Amazon SES", verdict="ours"
    )
    since, until = date(2020, 1, 1), date(2024, 12, 31)
    view = senders_view(example, since, until)
    assert len(view.senders) == 5
    for sender in view.senders:
        alone = one_sender(example, since, until, sender.key)
        assert (alone.key, alone.ips, alone.mark, alone.classification) == (
            sender.key,
            sender.ips,
            sender.mark,
            sender.classification,
        )
        assert alone.as_json() == sender.as_json()
        # ... having read its own addresses, and for a block, the others in the block (here a
        # Cisco address of 216.71.148.0/24, with a confirmed name: Cisco's).
        only = candidates_of(sender.key)
        read = {ip for ip, *_ in _per_address(acme.pk, "example.com", since, until, only)}
        if sender.block:
            block = ipaddress.ip_network(sender.block)
            assert read >= sender.ips
            assert all(ipaddress.ip_address(ip) in block for ip in read)
        else:
            assert read == sender.ips
    for key in ["net:192.0.2.0/24", "net:not-a-block", "domain:nowhere.example", "x:y", ""]:
        assert one_sender(example, since, until, key) is None
    client = client_for(alice)
    url = f"/reports/domain/{example.pk}/senders/one/"
    assert client.get(url, ALL_TIME | {"sender": "net:not-a-block"}).status_code == 404


def test_the_pages_take_the_same_number_of_queries_however_many_senders(example, alice, acme):
    client = client_for(alice)
    url = f"/reports/domain/{example.pk}/senders/"
    client.get(url, ALL_TIME)  # warm the session and the service data

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, ALL_TIME).status_code == 200
        return len(captured)

    few = queries()
    rows = [
        f"<record><row><source_ip>198.51.{n // 250}.{n % 250}</source_ip><count>1</count>"
        "<policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>"
        "</policy_evaluated></row><identifiers><header_from>example.com</header_from>"
        "</identifiers><auth_results><spf><domain>example.com</domain><result>fail</result>"
        "</spf></auth_results></record>"
        for n in range(600)
    ]
    xml = (
        "<?xml version='1.0'?><feedback><report_metadata><org_name>many</org_name>"
        "<email>r@many.example</email><report_id>many-1</report_id><date_range>"
        "<begin>1718236800</begin><end>1718323199</end></date_range></report_metadata>"
        "<policy_published><domain>example.com</domain><p>none</p></policy_published>"
        + "".join(rows)
        + "</feedback>"
    ).encode()
    ingest.ingest_input(xml, "many.xml", via=InputSource.COMMAND, organization=acme)
    assert queries() == few
    assert few <= 16


def test_the_command_prints_json_lines_then_the_readiness(example, capsys):
    call_command(
        "senders", "example.com", "--since", "2020-01-01", "--until", "2024-12-31", "--json"
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    *senders, last = lines
    assert list(senders[0]) == [
        "service",
        "service_type",
        "base_domain",
        "ptr",
        "fcrdns",
        "ips",
        "country",
        "messages",
        "dmarc_pass",
        "spf_aligned",
        "dkim_aligned",
        "classification",
    ]
    assert senders[1] == {
        "service": "Amazon SES",
        "service_type": "SaaS",
        "base_domain": "amazonses.com",
        "ptr": senders[1]["ptr"],
        "fcrdns": True,
        "ips": 11,
        "country": "US",
        "messages": 372,
        "dmarc_pass": 372,
        "spf_aligned": 0,
        "dkim_aligned": 372,
        "classification": "authorised",
    }
    assert senders[1]["ptr"] in world.SES.values()
    assert senders[-1]["service"] is None and senders[-1]["ips"] == 1
    assert senders[-1]["fcrdns"] is None and senders[-1]["classification"] == "suspicious"
    readiness = last["readiness"]
    assert readiness["policy"] == "p=none" and readiness["next_step"] == "p=quarantine"
    assert (readiness["messages"], readiness["affected"]) == (3057, 10)
    assert readiness["failing_authorised"] == []


def test_the_command_table_and_its_exit_codes(example, acme, capsys):
    call_command(
        "senders", "example.com", "--team", "Acme", "--since", "2024-01-01", "--until", "2024-12-31"
    )
    out = capsys.readouterr().out
    assert "Amazon SES" in out and "Policy: p=none; next step: p=quarantine" in out
    with pytest.raises(Exception, match="no team monitors"):
        call_command("senders", "nobody.example")
    with pytest.raises(Exception, match="is after the end"):
        call_command("senders", "example.com", "--since", "2024-02-01", "--until", "2024-01-01")
    SourceAddress.objects.filter(ip="54.240.8.31").update(ptr_status=PtrStatus.FAILED)
    with pytest.raises(SystemExit) as exit_:
        call_command("senders", "example.com", "--since", "2024-01-01", "--until", "2024-12-31")
    assert exit_.value.code == 2  # an address could not be looked up: not a full answer


def test_a_new_sender_above_the_threshold_is_an_event(example, acme, nameservers, settings):
    settings.MAILSEC_NEW_SENDER_MESSAGES = 5
    from reports.models import AggregateReport

    first, *others = AggregateReport.objects.filter(organization=acme).order_by("pk")
    # The domain's first report is its baseline; the others tell of senders new then, but
    # they are years old: no news now.
    assert news.note_senders(first, now=first.end) == []
    for report in others:
        assert news.note_senders(report) == []
    assert SeenSender.objects.filter(domain="example.com").count() == 5
    xml = (
        NICE.read_bytes()
        .replace(b"54.240.48.90", b"100.24.189.9")
        .replace(b"<report_id>", b"<report_id>again-")
        .replace(b"1718323199", b"1718409599")
        .replace(b"1718236800", b"1718323200")
    )
    [report_pk] = imported_bytes(acme, xml)
    enrich.enrich_report(report_pk, nameservers=nameservers)
    report = AggregateReport.objects.get(pk=report_pk)
    events = news.note_senders(report, now=report.end)
    [event] = events
    assert event.kind == EventKind.NEW_SENDER and event.domain == example
    assert event.summary == "New sender 100.24.189.0/24: 40 messages, 100% DMARC pass (forwarded)"
    assert DomainEvent.objects.filter(kind=EventKind.NEW_SENDER).count() == 1
    assert news.note_senders(report, now=report.end) == []  # seen now


def imported_bytes(team, data: bytes):
    outcomes = ingest.ingest_input(data, "again.xml", via=InputSource.COMMAND, organization=team)
    return [o.report_pk for o in outcomes if o.status == "imported"]


# --- the drain: ingestion notes reports, the worker looks their addresses up ----------------


def test_ingestion_notes_its_reports_and_the_drain_looks_up_and_notes_senders(
    acme, nameservers, monkeypatch
):
    from reports.models import AggregateRecord, PendingSenders

    Domain.objects.create(organization=acme, name="example.com")
    reports = imported(acme, NICE, ZOHO, OUTLOOK)
    pending = PendingSenders.objects.all()
    assert sorted(pending.values_list("report_id", flat=True)) == sorted(reports)
    assert not SourceAddress.objects.exists()  # nothing looked up on ingestion's path
    monkeypatch.setattr(enrich, "DRAIN_REPORTS", 2)  # two batches
    assert enrich.drain(nameservers=nameservers, duty=1.0) == {"done": 3, "pending": 0}
    ips = set(AggregateRecord.objects.values_list("source_ip", flat=True))
    assert set(SourceAddress.objects.exclude(looked_up_at=None).values_list("ip", flat=True)) == ips
    assert SeenSender.objects.filter(domain="example.com").count() == 5  # senders noted
    assert SourceAddress.objects.get(ip="54.240.48.110").fcrdns is True
    assert enrich.drain(nameservers=nameservers) == {"done": 0, "pending": 0}


def test_a_drain_gives_way_while_ingestion_stores_reports(acme, monkeypatch):
    """It rests as long as each batch took (DUTY 0.5); nine times as long (BUSY_DUTY 0.1)
    after a batch during which reports were stored."""
    imported(acme, NICE, ZOHO)
    clock = {"now": 0.0}
    monkeypatch.setattr(enrich, "monotonic", lambda: clock["now"])  # the drain's clock only
    rests = []
    monkeypatch.setattr(enrich, "sleep", rests.append)
    batches = []

    def one_second_batch(ips, **kwargs):  # a batch's lookups, one second on the clock
        clock["now"] += 1.0
        batches.append(len(ips))
        if len(batches) == 1:
            imported(acme, OUTLOOK)  # ingestion stores a report meanwhile

    monkeypatch.setattr(enrich, "enrich", one_second_batch)
    monkeypatch.setattr(enrich, "DRAIN_REPORTS", 1)
    assert enrich.drain(budget=1000) == {"done": 3, "pending": 0}
    assert len(batches) == 3
    assert rests == [pytest.approx(9.0), pytest.approx(1.0), pytest.approx(1.0)]


def test_a_drain_leaves_the_reports_another_holds_until_its_lease_ends(acme):
    from django.utils import timezone

    from reports.models import PendingSenders

    imported(acme, NICE, ZOHO, OUTLOOK)
    now = timezone.now()
    first = enrich._claim(1, now)
    others = enrich._claim(10, now)
    assert len(first) == 1 and len(others) == 2 and not set(first) & set(others)
    assert enrich._claim(10, now) == []
    # A drain that died lets its reports go when the lease ends.
    later = now + enrich.LEASE + timezone.timedelta(seconds=1)
    assert sorted(enrich._claim(10, later)) == sorted(
        PendingSenders.objects.values_list("pk", flat=True)
    )


def test_a_report_noted_twice_is_drained_once(acme):
    from reports.models import PendingSenders

    [report] = imported(acme, OUTLOOK)
    enrich.enrich_later(report)  # as staff assigning it would
    assert PendingSenders.objects.filter(report_id=report).count() == 1
