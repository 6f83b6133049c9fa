"""The reports side's stored English texts shown in the reader's language (issue 18): refusal
reasons, the mailbox connection test's steps, new-sender events. What is stored (and what the
command line and the API give) stays English."""

import ast
import html
import re
from pathlib import Path

from django.utils import timezone, translation

from domains.models import DomainEvent, EventKind
from mailsec.models import Profile
from reports import ingest, reasons
from reports.models import InputSource, RawInput
from tests.conftest import client_for, make_user
from tests.reports.test_mailbox_pages import dovecot_mailbox

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
STORED = "scan.pdf: PDF document, not a report"


def visible(text: str) -> str:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    return html.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", text)))


def client_in(user, language: str):
    Profile.objects.update_or_create(user=user, defaults={"language": language})
    return client_for(user)


def test_a_refused_inputs_reason_is_shown_in_the_readers_language(db):
    [outcome] = ingest.ingest_input(PDF, "scan.pdf", via=InputSource.UPLOAD)
    assert outcome.as_json()["error"] == "PDF document, not a report"  # the CLI's JSON
    raw = RawInput.objects.get(name="scan.pdf")
    assert raw.reason == STORED

    staff = make_user("sam", is_staff=True)
    french = visible(client_in(staff, "fr").get("/reports/refused/").content.decode())
    assert "scan.pdf: document PDF, pas un rapport" in french
    assert "not a report" not in french
    english = visible(client_in(staff, "en").get("/reports/refused/").content.decode())
    assert STORED in english
    raw.refresh_from_db()
    assert raw.reason == STORED  # showing it changed nothing stored


def test_reasons_with_variable_parts_and_nested_ones():
    with translation.override("fr"):
        assert reasons.shown("policies[0] has no summary") == "policies[0] n\u2019a pas de summary"
        assert reasons.shown(
            "refused before, not parsed again: a.xml: the report has no report_id\n"
            "b.xml: truncated XML: Premature end of data"
        ) == (
            "déjà refusé, pas analysé de nouveau\xa0: a.xml: le rapport n\u2019a pas de report_id\n"
            "b.xml: XML tronqué\xa0: Premature end of data"
        )
        assert reasons.shown("something new") == "something new"  # unknown: as it is
    with translation.override("en"):
        assert reasons.shown("policies[0] has no summary") == "policies[0] has no summary"


def test_the_mailbox_connection_test_in_french(alice, acme, imap_account):
    mailbox = dovecot_mailbox(acme, imap_account)
    text = client_in(alice, "fr").post(f"/reports/mailboxes/{mailbox.pk}/test/").content.decode()
    for name in ("DNS", "TCP", "TLS", "Connexion", "Dossier INBOX", "Dossier dmarc/processed"):
        assert f'<span aria-hidden="true">✓</span> {name}<' in text, name
    shown = visible(text)
    assert f"connecté en tant que {imap_account.user}" in shown
    assert "certificat valide pour 127.0.0.1" in shown
    assert "logged in as" not in shown and "Folder " not in shown


def test_a_new_sender_event_in_french(acme_domain):
    event = DomainEvent.objects.create(
        domain=acme_domain,
        created_at=timezone.now(),
        kind=EventKind.NEW_SENDER,
        summary="New sender 100.24.189.0/24: 1250 messages, 96% DMARC pass (forwarded)",
        data={
            "sender": "100.24.189.0/24",
            "label": "100.24.189.0/24",
            "messages": 1250,
            "dmarc_pass": 1200,
            "classification": "forwarded",
            "ptr": "",
        },
    )
    with translation.override("fr"):
        assert event.summary_text == (
            "Nouvel expéditeur 100.24.189.0/24\xa0: 1\xa0250 messages, 96\xa0% conformes DMARC"
            " (transféré)"
        )
    with translation.override("en"):  # the same sentence, its number grouped for the page
        assert event.summary_text == (
            "New sender 100.24.189.0/24: 1,250 messages, 96% DMARC pass (forwarded)"
        )
    event.refresh_from_db()
    assert event.summary.startswith("New sender 100.24.189.0/24: 1250 messages")  # stored


SOURCES = ["ingest.py", "mailbox.py", "pop3.py", "mailserver.py", "parsing"]


def written_texts():
    """Every text the reports side raises as a refusal or a mailbox failure (Refused(...),
    MailboxError(stage, ...)), its variable parts as "X"."""
    root = Path(reasons.__file__).parent
    files = [
        p for s in SOURCES for p in ([root / s] if s.endswith(".py") else (root / s).glob("*.py"))
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id == "Refused" and node.args:
                text = node.args[0]
            elif node.func.id == "MailboxError" and len(node.args) == 2:
                text = node.args[1]
            else:
                continue
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                yield path.name, text.value
            elif isinstance(text, ast.JoinedStr):
                yield (
                    path.name,
                    "".join(
                        part.value if isinstance(part, ast.Constant) else "X"
                        for part in text.values
                    ),
                )


def test_every_written_reason_has_its_translation():
    texts = list(written_texts())
    assert len(texts) > 80
    with translation.override("fr"):
        unknown = [(name, text) for name, text in texts if reasons.shown(text) == text]
    # Texts that are only a variable part (a library's own message) cannot be translated.
    assert [t for t in unknown if t[1] not in ("X", "X: X")] == []
