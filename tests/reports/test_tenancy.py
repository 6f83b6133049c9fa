"""Reports belong to the team that received them: adding a domain name reveals nothing another
team received, an upload of one team never shows to another, and each team keeps its own copy
of a report both received (through real dovecot mailboxes too)."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from domains import scheduling
from domains.models import Domain, Organization
from reports import fetch
from reports.ingest import ingest_input
from reports.models import (
    AggregateReport,
    DailyRollup,
    FailureReport,
    RawInput,
    ReportedSelector,
    TlsReport,
)
from tests.conftest import client_for, make_user
from tests.reports.conftest import new_account
from tests.reports.test_fetch import make_mailbox

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
AGGREGATE = FIXTURES / "aggregate" / "mox__google.eml"  # signed with DKIM selectors
TLS = FIXTURES / "smtp_tls" / "parsedmarc__rfc8460.json"
FAILURE = FIXTURES / "forensic" / "parsedmarc__dmarc_ruf_report_linkedin.eml"


def receive(path: Path, team, via="mailbox") -> list:
    return ingest_input(str(path), path.name, via=via, organization=team)


def receive_all(team) -> dict[str, object]:
    """The three kinds of report, received by `team`: {kind: stored report}."""
    stored = {}
    for path in (AGGREGATE, TLS, FAILURE):
        [outcome] = receive(path, team)
        assert outcome.status == "imported", outcome
        model = {"aggregate": AggregateReport, "tls": TlsReport, "failure": FailureReport}
        stored[outcome.kind] = model[outcome.kind].objects.get(pk=outcome.report_pk)
    return stored


def team_pages(user, domains) -> list[str]:
    """Every report page `user` can see, for the domains given (their team's rows)."""
    client = client_for(user)
    pages = [client.get(f"/reports/?kind={kind}") for kind in ("aggregate", "tls", "failure")]
    pages += [client.get(f"/reports/domain/{d.pk}/") for d in domains]
    assert all(p.status_code == 200 for p in pages)
    return [p.content.decode() for p in pages]


def page_of(user, url: str) -> str:
    response = client_for(user).get(url)
    assert response.status_code == 200
    return response.content.decode()


def adds_the_domains(team, reports) -> list[Domain]:
    names = {report.domain for report in reports.values()}
    return [Domain.objects.create(organization=team, name=name) for name in sorted(names)]


def test_another_team_adding_the_domain_sees_none_of_the_reports(acme, globex, alice, olga):
    reports = receive_all(acme)
    acme_domains = adds_the_domains(acme, reports)
    globex_domains = adds_the_domains(globex, reports)  # the attacker adds the same names

    for page in team_pages(olga, globex_domains):
        for report in reports.values():
            assert report.org_name not in page
    response = client_for(olga).get(f"/reports/domain/{globex_domains[0].pk}/")
    assert response.context["page"].summary.messages == 0
    assert response.context["page"].top_sources == []
    aggregate = reports["aggregate"]
    assert client_for(olga).get(f"/reports/aggregate/{aggregate.pk}/").status_code == 404
    assert not DailyRollup.objects.filter(organization=globex).exists()
    assert ReportedSelector.for_domains(globex, [d.name for d in globex_domains]) == {}

    # The team that received them sees them all.
    seen = "\n".join(team_pages(alice, acme_domains))
    assert all(report.org_name in seen for report in reports.values())
    assert client_for(alice).get(f"/reports/aggregate/{aggregate.pk}/").status_code == 200
    assert DailyRollup.objects.filter(organization=acme).exists()
    assert ReportedSelector.objects.filter(organization=acme).exists()


def test_selectors_seen_by_one_team_are_not_probed_for_another(acme, globex, knot, settings):
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    for team in (acme, globex):
        Domain.objects.create(organization=team, name="customsel.test")
    ReportedSelector.objects.create(
        organization=globex, domain="customsel.test", selector="myselector", last_seen="2026-01-01"
    )
    ours = Domain.objects.get(organization=acme)
    theirs = Domain.objects.get(organization=globex)
    assert scheduling.run_check(ours.pk).categories["dkim"]["status"] != "pass"
    assert scheduling.run_check(theirs.pk).categories["dkim"]["status"] == "pass"


def test_an_upload_of_another_team_never_appears(acme, globex, alice):
    acme_domains = [Domain.objects.create(organization=acme, name="example.com")]
    # Globex uploads a forged report for the domain Acme monitors.
    [outcome] = receive(FIXTURES / "aggregate" / "parsedmarc__nice-input.xml", globex, "upload")
    assert (outcome.status, outcome.domain) == ("imported", "example.com")
    for page in team_pages(alice, acme_domains):
        assert "google.com" not in page
    client = client_for(alice)
    assert client.get(f"/reports/aggregate/{outcome.report_pk}/").status_code == 404
    summary = client.get(f"/reports/domain/{acme_domains[0].pk}/").context["page"].summary
    assert summary.messages == 0
    assert not DailyRollup.objects.filter(organization=acme).exists()


def test_deduplication_is_per_team(acme, globex):
    for team, expected in [(acme, "imported"), (acme, "duplicate"), (globex, "imported")]:
        for path in (AGGREGATE, TLS, FAILURE):
            [outcome] = receive(path, team)
            assert outcome.status == expected, (team, path.name)
    for model in (AggregateReport, TlsReport, FailureReport):
        owners = sorted(model.objects.values_list("organization__name", flat=True))
        assert owners == ["Acme", "Globex"], model
    assert RawInput.objects.filter(organization=acme).count() == 3
    assert RawInput.objects.filter(organization=globex).count() == 3
    acme_rollup = DailyRollup.objects.filter(organization=acme)
    globex_rollup = DailyRollup.objects.filter(organization=globex)
    assert sum(r.messages for r in acme_rollup) == sum(r.messages for r in globex_rollup) > 0


def test_two_teams_mailboxes_receiving_the_same_report_each_store_it_once(
    acme, globex, imap_account, dovecot
):
    message = AGGREGATE.read_bytes()
    other_account = new_account(dovecot)
    imap_account.deliver(message)
    imap_account.deliver(message)  # the reporter sent it twice to Acme
    other_account.deliver(message)
    ours = make_mailbox(acme, imap_account)
    theirs = make_mailbox(globex, other_account)

    first = fetch.run_pass(ours.pk)
    assert (first.state, first.imported, first.duplicates) == ("done", 1, 1)
    second = fetch.run_pass(theirs.pk)
    assert (second.state, second.imported, second.duplicates) == ("done", 1, 0)
    for team in (acme, globex):
        assert AggregateReport.objects.filter(organization=team).count() == 1
        assert RawInput.objects.filter(organization=team).count() == 1
    assert AggregateReport.objects.count() == 2


def test_import_reports_takes_the_team(acme, globex, capsys):
    call_command("import_reports", "--team", "Acme", str(TLS))
    call_command("import_reports", "--team", str(globex.pk), str(TLS))
    call_command("import_reports", str(TLS))
    owners = list(TlsReport.objects.order_by("pk").values_list("organization", flat=True))
    assert owners == [acme.pk, globex.pk, None]
    Organization.objects.create(name="Acme")
    for given, problem in [("Acme", "several teams"), ("Nobody", "no team"), ("999", "no team")]:
        with pytest.raises(CommandError, match=problem):
            call_command("import_reports", "--team", given, str(TLS))


def test_unclaimed_reports_show_to_no_team_until_staff_assign_them(acme, alice, globex):
    staff = make_user("sam", is_staff=True)
    domain = Domain.objects.create(organization=acme, name="example.com")
    Domain.objects.create(organization=globex, name="example.com")
    nice = FIXTURES / "aggregate" / "parsedmarc__nice-input.xml"
    [outcome] = receive(nice, None, "command")
    assert client_for(alice).get(f"/reports/aggregate/{outcome.report_pk}/").status_code == 404
    assert "google.com" not in page_of(alice, "/reports/")

    staff_client = client_for(staff)
    page = staff_client.get("/reports/unclaimed/").content.decode()
    assert 'action="/reports/unclaimed/assign/"' in page and "example.com" in page
    answer = staff_client.post(
        "/reports/unclaimed/assign/", {"domain": "example.com", "organization": acme.pk}
    )
    assert answer.status_code == 302
    report = AggregateReport.objects.get()
    assert report.organization == acme and report.raw.organization == acme
    assert not RawInput.objects.filter(organization__isnull=True).exists()
    assert f"/reports/aggregate/{report.pk}/" in page_of(alice, f"/reports/domain/{domain.pk}/")
    rollups = DailyRollup.objects.filter(organization=acme, domain="example.com")
    assert sum(rollups.values_list("messages", flat=True)) == 3047  # made on assignment
    assert "google.com" in page_of(alice, "/reports/")
    assert not DailyRollup.objects.filter(organization=globex).exists()

    # The same report imported unclaimed again and given to Acme: Acme already has it.
    receive(nice, None, "command")
    staff_client.post(
        "/reports/unclaimed/assign/", {"domain": "example.com", "organization": acme.pk}
    )
    assert AggregateReport.objects.count() == 1
    assert sum(DailyRollup.objects.values_list("messages", flat=True)) == 3047


def test_assigning_is_for_staff_only(alice, acme):
    [outcome] = receive(TLS, None, "command")
    answer = client_for(alice).post(
        "/reports/unclaimed/assign/", {"domain": outcome.domain, "organization": acme.pk}
    )
    assert answer.status_code == 404
    assert TlsReport.objects.get().organization is None


def test_a_team_sees_the_reports_it_received_before_adding_the_domain(acme, alice):
    [outcome] = receive(TLS, acme)
    page = page_of(alice, "/reports/?kind=tls")
    assert outcome.org_name in page and "monitors no domain yet" not in page


def test_an_upload_through_the_page_stays_with_the_uploaders_team(acme, globex, alice, olga):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.reports.test_pages import NICE_INPUT, statuses, upload

    ours = Domain.objects.create(organization=acme, name="example.com")
    Domain.objects.create(organization=globex, name="example.com")
    data = NICE_INPUT.read_bytes()
    theirs = upload(client_for(olga), SimpleUploadedFile("forged.xml.gz", data))
    assert statuses(theirs) == [("forged.xml.gz", "imported")]
    assert "google.com" not in page_of(alice, "/reports/")
    assert "google.com" not in page_of(alice, f"/reports/domain/{ours.pk}/")
    assert client_for(alice).get(theirs.request["PATH_INFO"]).status_code == 404
    # The same file uploaded by Acme is Acme's own import, not a duplicate of Globex's.
    mine = upload(client_for(alice), SimpleUploadedFile("nice.xml.gz", data))
    assert statuses(mine) == [("nice.xml.gz", "imported")]
    assert AggregateReport.objects.filter(organization=acme).count() == 1
    assert AggregateReport.objects.filter(organization=globex).count() == 1


def test_assigning_to_an_id_past_the_range_is_refused_not_an_error(acme):
    staff = make_user("sam", is_staff=True)
    receive(TLS, None, "command")
    for value in ("9223372036854775808", "-1", "x", ""):
        answer = client_for(staff).post(
            "/reports/unclaimed/assign/", {"domain": "company-y.example", "organization": value}
        )
        assert answer.status_code == 302, value
    assert TlsReport.objects.get().organization is None


def test_staff_assign_failure_reports_too(acme):
    staff = make_user("sam", is_staff=True)
    [outcome] = receive(FAILURE, None, "command")
    page = page_of(staff, "/reports/unclaimed/")
    assert outcome.domain in page
    client_for(staff).post(
        "/reports/unclaimed/assign/", {"domain": outcome.domain, "organization": acme.pk}
    )
    report = FailureReport.objects.get()
    assert report.organization == acme and report.raw.organization == acme
