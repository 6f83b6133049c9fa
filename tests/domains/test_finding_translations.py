"""The findings in the reader's language: the catalogue's titles and fixes, the evidence stored
as an English template with its arguments (rendered again in French for a French reader), the
old findings stored before that (their English evidence), check_domain --lang and the alert
e-mails' finding lines. English stays what it was: the JSON outputs and the API use it."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from domains.changes import describe
from domains.dns import DnsSession
from domains.engine import check_domain
from domains.findings import KINDS, localized
from domains.models import CheckRun, Domain, Finding
from mailsec.models import Profile
from tests.conftest import client_for

# Words of an English sentence that no French one here contains (outside code and records).
ENGLISH = re.compile(r"\b(the|and|your|with|is|are|not|when|only|which|does)\b")
PLACEHOLDER = re.compile(r"(?<!%)\{[a-z_]+\}")  # "%{p}" is an SPF macro, not a placeholder


def prose(text: str) -> str:
    """The text without its code spans and URLs (those stay as they are in every language)."""
    return re.sub(r"https://\S+", "", re.sub(r"`[^`]*`", "", text))


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.id)
def test_every_kind_reads_in_french_and_english_stays(kind):
    with translation.override("en"):
        title, fix = str(kind.title), kind.fix("acme.example")
    with translation.override("fr"):
        title_fr, fix_fr = str(kind.title), kind.fix("acme.example")
    assert title_fr != title and fix_fr != fix
    for text in (title_fr, fix_fr):
        assert not PLACEHOLDER.search(text), text
        assert not ENGLISH.search(prose(text)), text
    # Records and configuration lines in the fix are the same in both languages.
    assert re.findall(r"`[^`]*`", fix_fr) == re.findall(r"`[^`]*`", fix)
    assert "acme.example" in fix or "{domain}" not in str(kind.remediation)


def test_the_services_keep_their_names_in_french():
    titles = {kind.id: kind.title for kind in KINDS}
    with translation.override("fr"):
        assert str(titles["imap.tls_missing"]) == "Service IMAP sans TLS fonctionnel"
        assert str(titles["smtp.unreachable"]) == "Un serveur MX ne répond pas"
    with translation.override("en"):
        assert str(titles["smtp.tls_missing"]) == "SMTP (port 25) without working TLS"
        assert str(titles["pop3.unreachable"]) == "A POP3 server does not answer"


@pytest.fixture
def nospf(acme, knot):
    """A stored run of nospf.test: no SPF record, DMARC p=reject (so a note is added)."""
    domain = Domain.objects.create(organization=acme, name="nospf.test")
    session = DnsSession([(knot.host, knot.port)])
    result = check_domain("nospf.test", categories=["spf", "dmarc"], session=session)
    CheckRun.objects.record(result, domain=domain)
    return domain


def test_a_run_stores_the_english_and_the_template(nospf):
    stored = Finding.objects.get(run__domain=nospf)
    assert stored.detail == (
        "No v=spf1 TXT record at nospf.test. DMARC at _dmarc.nospf.test enforces p=reject on "
        "all mail, so receivers still refuse mail forged in the domain's name: weighs medium."
    )
    assert stored.message["text"] == "No v=spf1 TXT record at %(name)s."
    assert stored.message["args"] == {"name": "nospf.test"}
    assert stored.message["domain"] == "nospf.test"
    assert [note["args"] for note in stored.message["notes"]] == [
        {"where": "nospf.test", "policy": "reject"}
    ]
    # The run's category results (the API, the JSON output) keep the English only.
    nospf.refresh_from_db()
    assert set(nospf.last_run.categories["spf"]["findings"][0]) == {
        "id", "category", "severity", "title", "detail", "remediation"
    }  # fmt: skip
    with translation.override("en"):
        assert localized(stored) == (stored.title, stored.detail, stored.remediation)


def test_the_page_shows_the_finding_in_the_readers_language(nospf, alice, bob):
    Profile.objects.update_or_create(user=alice, defaults={"language": "fr"})
    french = client_for(alice).get(f"/domains/{nospf.pk}/").content.decode()
    assert "Aucun enregistrement SPF" in french
    assert (
        "Aucun enregistrement TXT v=spf1 à nospf.test. DMARC à _dmarc.nospf.test applique "
        "p=reject à tous les messages" in french
    )
    assert "Publiez les serveurs autorisés à envoyer pour le domaine" in french
    assert "nospf.test. TXT &quot;v=spf1 -all&quot;" in french  # the record, as it is
    assert "No v=spf1 TXT record" not in french
    english = client_for(bob).get(f"/domains/{nospf.pk}/").content.decode()
    assert "No v=spf1 TXT record at nospf.test. DMARC at _dmarc.nospf.test" in english
    assert "Aucun enregistrement" not in english
    # The list names the worst finding in the reader's language too.
    assert "Aucun enregistrement SPF" in client_for(alice).get("/domains/").content.decode()


def test_a_finding_stored_before_templates_keeps_its_english_evidence(acme, alice):
    domain = Domain.objects.create(organization=acme, name="old.example")
    now = timezone.now()
    run = CheckRun.objects.create(
        domain=domain, name="old.example", started_at=now, finished_at=now, status="complete"
    )
    domain.last_run = run
    domain.save()
    old = Finding.objects.create(
        run=run,
        kind="dmarc.policy_none",
        category="dmarc",
        severity="high",
        title="DMARC policy is p=none (monitoring only)",
        detail="_dmarc.old.example: v=DMARC1; p=none",
        remediation="(the English fix stored then)",
    )
    with translation.override("fr"):
        title, detail, fix = localized(old, "old.example")
    assert title == "La politique DMARC est p=none (surveillance seule)"
    assert detail == "_dmarc.old.example: v=DMARC1; p=none"
    assert fix.startswith("`p=none` demande aux destinataires")
    # A kind that left the catalogue keeps all its stored texts.
    gone = Finding(kind="spf.retired", title="Old", detail="Old evidence.", remediation="Old fix.")
    with translation.override("fr"):
        assert localized(gone) == ("Old", "Old evidence.", "Old fix.")
    Profile.objects.update_or_create(user=alice, defaults={"language": "fr"})
    page = client_for(alice).get(f"/domains/{domain.pk}/").content.decode()
    assert "_dmarc.old.example: v=DMARC1; p=none" in page
    assert "La politique DMARC est p=none (surveillance seule)" in page


def test_a_template_whose_arguments_changed_falls_back_to_the_english():
    stored = Finding(
        kind="spf.missing",
        title="No SPF record",
        detail="No v=spf1 TXT record at x.example.",
        remediation="",
        message={"text": "No v=spf1 TXT record at %(name)s.", "args": {}, "domain": "x.example"},
    )
    with translation.override("fr"):
        assert localized(stored).detail == "No v=spf1 TXT record at x.example."


def run_command(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_domain", *args, stdout=out, stderr=StringIO())
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


def test_check_domain_speaks_french_when_asked(db, knot):
    ns = f"{knot.host}:{knot.port}"
    args = ["--no-save", "--nameserver", ns, "--checks", "spf,dmarc", "nospf.test"]
    code, french = run_command("--lang", "fr", *args)
    assert code == 0
    assert "nospf.test\u00a0: note B, score 89/100 (complete\u00a0; 5 requêtes DNS" in french
    assert "[MOYENNE] spf.missing: Aucun enregistrement SPF" in french
    assert "Correction\u00a0: Publiez les serveurs autorisés" in french
    _, english = run_command(*args)
    assert "nospf.test: grade B, score 89/100" in english
    assert "[MEDIUM] spf.missing: No SPF record" in english
    assert "Fix: Publish the servers allowed" in english
    _, as_json = run_command("--json", *args)
    assert json.loads(as_json)["findings"][0]["title"] == "No SPF record"
    with pytest.raises(CommandError, match="always English"):
        call_command("check_domain", "--json", "--lang", "fr", *args, stdout=StringIO())


def test_the_alert_lines_of_a_finding_in_the_language_of_the_email():
    appeared = {
        "kind": "finding_appeared",
        "severity": "critical",
        "summary": "New critical finding: No SPF record (spf.missing)",
        "data": {"finding": "spf.missing", "category": "spf", "detail": "..."},
    }
    resolved = {
        **appeared,
        "kind": "finding_resolved",
        "summary": "Resolved: No SPF record (spf.missing)",
    }
    other = {"kind": "grade_dropped", "summary": "Grade B → D (score 85 → 60)", "data": {}}

    def event_summary(event):
        return describe(event["kind"], event["data"], event["summary"])

    with translation.override("en"):
        assert event_summary(appeared) == appeared["summary"]
        assert event_summary(resolved) == resolved["summary"]  # as stored, as webhooks send it
    with translation.override("fr"):
        assert event_summary(appeared) == (
            "Nouveau constat (gravité critique)\u00a0: Aucun enregistrement SPF (spf.missing)"
        )
        assert event_summary(resolved) == "Résolu\u00a0: Aucun enregistrement SPF (spf.missing)"
        assert event_summary(other) == other["summary"]


def test_the_api_keeps_the_catalogue_in_english(alice, acme):
    from tests.api.conftest import api_client, token_for

    client = api_client(token_for(alice, acme, "read"))
    kinds = client.get("/api/v1/finding-kinds/", HTTP_ACCEPT_LANGUAGE="fr").json()
    spf = next(kind for kind in kinds if kind["id"] == "spf.missing")
    assert spf["title"] == "No SPF record"
    assert spf["remediation"].startswith("Publish the servers allowed to send")


def test_numbers_in_the_evidence_follow_the_readers_locale():
    from domains.checks.mta_sts import duration

    assert duration(129600).english() == "1.5 days"
    assert duration(3600).english() == "1 hour"
    assert duration(1).english() == "1 second"
    with translation.override("fr"):
        assert duration(129600).render() == "1,5 jours"
        assert duration(7200).render() == "2 heures"


def test_an_spf_syntax_error_reads_in_french_with_the_term_as_it_is():
    from domains.checks.spf_syntax import parse

    errors = parse("v=spf1 ip4:999.1.1.1 foo -all").errors
    assert [str(e) for e in errors] == [
        '"ip4:999.1.1.1": needs a dotted-quad IPv4 address, e.g. ip4:192.0.2.0/24',
        '"foo": unknown mechanism "foo" (RFC 7208 5)',
    ]
    with translation.override("fr"):
        assert [e.translatable().render() for e in errors] == [
            "«\u00a0ip4:999.1.1.1\u00a0»\u00a0: demande une adresse IPv4 en notation pointée, "
            "par exemple ip4:192.0.2.0/24",
            "«\u00a0foo\u00a0»\u00a0: mécanisme inconnu «\u00a0foo\u00a0» (RFC 7208 5)",
        ]
