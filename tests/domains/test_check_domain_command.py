"""`manage.py check_domain`: runs directly against the DNS, prints or stores the verdict."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from domains.models import CheckRun, Domain, Organization


def run(*args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("check_domain", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def ns(knot):
    return f"{knot.host}:{knot.port}"


def test_json_lines_in_input_order(db, ns):
    code, out, _ = run("--json", "--no-save", "--nameserver", ns, "PlusAll.TEST.", "good.test")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["input"] for line in lines] == ["PlusAll.TEST.", "good.test"]
    plus, good = lines
    assert plus["domain"] == "plusall.test"
    assert plus["grade"] == "F"
    assert plus["categories"]["spf"] == {"status": "fail", "score": 0}
    finding = next(f for f in plus["findings"] if f["id"] == "spf.all_pass")
    assert set(finding) == {"id", "category", "severity", "title", "detail", "remediation"}
    assert finding["severity"] == "critical"
    assert finding["detail"] == 'every host passes: plusall.test -> +all ("v=spf1 mx +all").'
    assert isinstance(good["score"], int)
    assert set(good["categories"]) == {
        "mx", "spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "dnssec", "dane", "bimi",
        "smtp", "submission", "imap", "pop3",
    }  # fmt: skip
    assert CheckRun.objects.count() == 0  # --no-save


def test_unicode_names_are_normalised(db, ns):
    _, out, _ = run("--json", "--no-save", "--nameserver", ns, "--checks", "spf", "Bücher.test")
    line = json.loads(out)
    assert (line["input"], line["domain"]) == ("Bücher.test", "xn--bcher-kva.test")
    assert line["categories"] == {"spf": {"status": "pass", "score": 100}}


def test_invalid_input_gives_an_error_object_and_exit_1(db, ns):
    code, out, _ = run(
        "--json",
        "--no-save",
        "--nameserver",
        ns,
        "--checks",
        "spf",
        "good.test",
        "192.0.2.1",
        "nospf.test",
    )
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line.get("error") is not None for line in lines] == [False, True, False]
    assert "IP address" in lines[1]["error"]
    assert lines[2]["findings"][0]["id"] == "spf.missing"


def test_readable_report(db, ns):
    code, out, _ = run("--no-save", "--nameserver", ns, "--checks", "spf,dmarc", "plusall.test")
    assert code == 0
    # (0 x 20 + 100 x 25) / 45 = 56, capped at 39 by the critical finding
    assert out.startswith("plusall.test: grade F, score 39/100")
    assert "[CRITICAL] spf.all_pass" in out
    assert "Fix: `+all` lets every server send" in out


def test_saves_runs_for_monitored_domains(db, ns, acme, globex):
    Domain.objects.create(organization=acme, name="nospf.test")
    Domain.objects.create(organization=globex, name="nospf.test")
    run("--nameserver", ns, "--checks", "spf,dmarc", "nospf.test", "good.test")
    assert CheckRun.objects.filter(name="nospf.test", domain__isnull=False).count() == 2
    assert CheckRun.objects.filter(name="good.test", domain__isnull=True).count() == 1
    domain = Domain.objects.get(organization=acme)
    # DMARC p=reject still refuses forged mail, so the missing SPF record weighs medium
    # (issue 11): (75 x 20 + 100 x 25) / 45 = 89, a B.
    assert (domain.grade, domain.last_run.status) == ("B", "complete")
    assert list(domain.last_run.findings.values_list("kind", flat=True)) == ["spf.missing"]
    assert domain.last_run.categories["spf"]["status"] == "warn"


def test_configured_selectors_are_probed(db, ns, acme):
    Domain.objects.create(organization=acme, name="customsel.test", dkim_selectors=["myselector"])
    _, out, _ = run("--json", "--no-save", "--nameserver", ns, "--checks", "dkim", "customsel.test")
    assert json.loads(out)["findings"] == []


def test_selectors_seen_in_reports_are_probed(db, ns):
    from reports.models import ReportedSelector

    args = ["--json", "--no-save", "--nameserver", ns, "--checks", "dkim", "customsel.test"]
    _, out, _ = run(*args)
    assert json.loads(out)["findings"] != []  # myselector is not a common selector
    team = Organization.objects.create(name="Monitors it")
    ReportedSelector.objects.create(
        organization=team, domain="customsel.test", selector="myselector", last_seen="2026-01-01"
    )
    _, out, _ = run(*args)
    assert json.loads(out)["findings"] != []  # the team that received it does not monitor it
    Domain.objects.create(organization=team, name="customsel.test")
    _, out, _ = run(*args)
    assert json.loads(out)["findings"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checks", "spf,nonsense", "good.test"], "unknown nonsense"),
        (["--nameserver", "dns.example", "good.test"], "not an IP address"),
    ],
)
def test_bad_options(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("check_domain", *args, stdout=StringIO())


def test_worker_processes_give_the_same_verdicts(db, ns, knot):
    args = ["--json", "--no-save", "--nameserver", ns, "--checks", "spf,dmarc"]
    names = ["plusall.test", "good.test", "nodmarc.test", "bad..name", "neutral.test"]
    _, alone, _ = run(*args, "--processes", "1", *names)
    _, spread, _ = run(*args, "--processes", "2", *names)
    assert [json.loads(line)["input"] for line in spread.splitlines()] == names
    assert alone == spread


def test_a_stored_run_uses_only_its_teams_own_settings(db, ns, acme, globex):
    """Two teams monitor one name: each stored run is checked with that team's selectors only
    (Acme's configured selector must not show in Globex's run, nor the other way round)."""
    ours = Domain.objects.create(
        organization=acme, name="customsel.test", dkim_selectors=["myselector"]
    )
    theirs = Domain.objects.create(organization=globex, name="customsel.test")
    code, out, _ = run("--json", "--nameserver", ns, "--checks", "dkim", "customsel.test")
    assert code == 0
    assert json.loads(out)["findings"] == []  # the first team's run is printed
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.last_run.findings.count() == 0
    assert list(theirs.last_run.findings.values_list("kind", flat=True)) != []
    assert "myselector" not in json.dumps(theirs.last_run.categories["dkim"])
