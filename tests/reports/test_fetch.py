"""A pass over a real dovecot mailbox: every report stored once, every message filed away,
and faults (a dropped connection, a pass killed mid-way, two passes at once) losing nothing
and duplicating nothing."""

import gzip
import threading
import time
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from reports import fetch, secrets
from reports.models import (
    AggregateReport,
    FailureReport,
    Mailbox,
    MailboxPass,
    ProcessedMessage,
    RawInput,
    TlsReport,
)
from tests.reports.conftest import new_account

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
AGGREGATES = [
    "cryinc__acme.xml",
    "cryinc__gmxnet.xml",
    "dmarcrua__comcast_18c84b4985664046a75ec256a6fce850.xml",
    "parsedmarc__usssa.com!example.com!1538784000!1538870399.xml",
    "tierpod__test.xml",
    "dmarcrua__zoho_865643e5c2d74a44808cda4c36216925.xml",
]
REAL_MAILS = [
    "aggregate/mox__google.eml",
    "aggregate/modoboa__yahoo_x-zip-compressed.eml",
    "smtp_tls/tlsrptdigest__google_failure.eml",
    "forensic/parsedmarc__dmarc_ruf_report_linkedin.eml",
]
INVALID_MAILS = ["aggregate/modoboa__amazonses_png-not-report.eml"]
GOOD = len(AGGREGATES) + len(REAL_MAILS)
BAD = len(INVALID_MAILS) + 1  # and one prose message without any report


def report_mail(name: str, attachment: bytes, filename: str) -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc-support@reporter.example"
    message["To"] = "rua@acme.example"
    message["Subject"] = f"Report domain: acme.example Submitter: reporter.example {name}"
    message.set_content("This is a DMARC aggregate report.")
    message.add_attachment(attachment, maintype="application", subtype="gzip", filename=filename)
    return message.as_bytes()


def mails() -> list[bytes]:
    built = [
        report_mail(name, gzip.compress((FIXTURES / "aggregate" / name).read_bytes()), "r.xml.gz")
        for name in AGGREGATES
    ]
    real = [(FIXTURES / path).read_bytes() for path in REAL_MAILS + INVALID_MAILS]
    prose = EmailMessage()
    prose["From"], prose["To"], prose["Subject"] = "a@b.example", "rua@acme.example", "hello"
    prose.set_content("Please add me to your mailing list.")
    return built + real + [prose.as_bytes()]


def fill(account) -> None:
    for message in mails():
        account.deliver(message)


def make_mailbox(acme, account, **options) -> Mailbox:
    server = account.server
    fields = {
        "organization": acme,
        "name": "rua",
        "host": "127.0.0.1",
        "port": server.imaps_port,
        "tls_mode": "implicit",
        "username": account.user,
        "password_encrypted": secrets.encrypt(account.password),
        "folder": "INBOX",
        "processed_folder": "dmarc/processed",
        "invalid_folder": "dmarc/invalid",
    } | options
    return Mailbox.objects.create(**fields)


def stored() -> tuple[int, int, int]:
    return (AggregateReport.objects.count(), TlsReport.objects.count(),
            FailureReport.objects.count())  # fmt: skip


EXPECTED_REPORTS = (len(AGGREGATES) + 2, 1, 1)  # two aggregate e-mails, a TLS and a failure


def assert_final_state(account, mailbox, processed="dmarc/processed", invalid="dmarc/invalid"):
    assert account.messages("INBOX") == []
    assert len(account.messages(processed)) == GOOD
    assert len(account.messages(invalid)) == BAD
    assert stored() == EXPECTED_REPORTS
    rows = ProcessedMessage.objects.filter(mailbox=mailbox)
    assert rows.count() == GOOD + BAD and not rows.filter(moved=False).exists()
    assert not any(m.flags & {"\\Seen"} for m in account.messages(processed))


def test_a_pass_stores_every_report_once_and_files_every_message(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    run = fetch.run_pass(mailbox.pk)
    assert (run.state, run.error) == ("done", "")
    assert (run.total, run.fetched) == (GOOD + BAD, GOOD + BAD)
    assert (run.imported, run.duplicates, run.invalid) == (sum(EXPECTED_REPORTS), 0, BAD)
    assert_final_state(imap_account, mailbox)
    refused = RawInput.objects.filter(source="mailbox", status="refused")
    assert refused.count() == BAD and all(r.reason for r in refused)
    mailbox.refresh_from_db()
    assert mailbox.last_pass == run and mailbox.locked_until is None

    again = fetch.run_pass(mailbox.pk)
    assert (again.state, again.total, again.fetched) == ("done", 0, 0)
    assert_final_state(imap_account, mailbox)


def test_new_mail_after_a_pass_is_all_the_next_pass_fetches(acme, imap_account):
    mailbox = make_mailbox(acme, imap_account)
    imap_account.deliver(mails()[0])
    assert fetch.run_pass(mailbox.pk).imported == 1
    imap_account.deliver(mails()[1])
    imap_account.deliver(mails()[0])  # the same report again, in a new message
    run = fetch.run_pass(mailbox.pk)
    assert (run.total, run.imported, run.duplicates) == (2, 1, 1)
    assert len(imap_account.messages("dmarc/processed")) == 3


def test_a_dropped_connection_mid_pass_then_a_new_pass(acme, imap_account, monkeypatch):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    monkeypatch.setattr(fetch, "BATCH", 3)
    batches = []

    def drop_after_the_first_batch(run):
        batches.append(run.fetched)
        if len(batches) == 2:  # the first call is before any batch
            assert imap_account.server.kick(imap_account.user)

    broken = fetch.run_pass(mailbox.pk, progress=drop_after_the_first_batch)
    assert broken.state == "failed" and broken.error
    assert 0 < broken.fetched < GOOD + BAD
    mailbox.refresh_from_db()
    assert mailbox.last_error == broken.error and mailbox.locked_until is None

    resumed = fetch.run_pass(mailbox.pk)
    assert resumed.state == "done"
    assert broken.fetched + resumed.fetched == GOOD + BAD
    assert_final_state(imap_account, mailbox)


def test_a_database_error_mid_pass_fails_the_pass_and_frees_the_mailbox(
    acme, imap_account, monkeypatch
):
    """The database dropping its connections (a restart) fails the pass for the task's retry
    to run at once: not left "running", its lease not held for five minutes."""
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    monkeypatch.setattr(fetch, "BATCH", 3)
    batches = []

    def drop_after_the_first_batch(run):
        batches.append(run.fetched)
        if len(batches) == 2:
            raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError):  # the task's autoretry_for takes it from here
        fetch.run_pass(mailbox.pk, progress=drop_after_the_first_batch)
    broken = MailboxPass.objects.get(mailbox=mailbox)
    assert broken.state == "failed" and "server closed the connection" in broken.error
    mailbox.refresh_from_db()
    assert mailbox.locked_until is None

    retried = fetch.run_pass(mailbox.pk)
    assert retried.state == "done"
    assert broken.fetched + retried.fetched == GOOD + BAD
    assert_final_state(imap_account, mailbox)


def test_a_pass_that_died_between_storing_and_moving(acme, imap_account, monkeypatch):
    """As if the worker were killed after the commit: the lease stays held until it runs out,
    and then the next pass moves what was stored without storing it again."""
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    monkeypatch.setattr(fetch, "release", lambda mailbox_id: None)  # killed: nothing released

    def killed(self, uidvalidity, uids):
        if uids:  # after storing the first batch, before moving it
            raise SystemExit("killed")

    with monkeypatch.context() as patch:
        patch.setattr(fetch.Pass, "_file_away", killed)
        with pytest.raises(SystemExit):
            fetch.run_pass(mailbox.pk)
    assert ProcessedMessage.objects.filter(moved=False).count() > 0
    assert len(imap_account.messages("INBOX")) == GOOD + BAD
    reports_before = stored()

    held = fetch.run_pass(mailbox.pk)
    assert held.state == "skipped"  # the lease of the dead pass still holds the mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    resumed = fetch.run_pass(mailbox.pk)
    # All messages fit in the dead pass's one batch: all stored, none to fetch again.
    assert (resumed.state, resumed.total, resumed.fetched) == ("done", 0, 0)
    assert stored() == reports_before
    assert_final_state(imap_account, mailbox)


@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    second: list[MailboxPass] = []
    first_started = threading.Event()
    second_done = threading.Event()

    def wait_for_the_second(run):
        first_started.set()
        second_done.wait(10)

    def start_second():
        first_started.wait(10)
        second.append(fetch.run_pass(mailbox.pk))
        second_done.set()

    thread = threading.Thread(target=start_second)
    thread.start()
    first = fetch.run_pass(mailbox.pk, progress=wait_for_the_second)
    thread.join(10)
    assert first.state == "done" and second[0].state == "skipped"
    assert_final_state(imap_account, mailbox)


def test_a_server_without_move(acme, dovecot_with, settings):
    server = dovecot_with(disable_move=True)
    settings.MAILSEC_TLS_CA_FILE = str(server.ca_file)
    account = new_account(server)
    assert "MOVE" not in server.capabilities
    fill(account)
    mailbox = make_mailbox(acme, account)
    assert fetch.run_pass(mailbox.pk).state == "done"
    assert_final_state(account, mailbox)


def test_copy_forced_and_starttls(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(
        acme, imap_account, port=imap_account.server.imap_port, tls_mode="starttls"
    )
    assert fetch.run_pass(mailbox.pk, force_copy=True).state == "done"
    assert_final_state(imap_account, mailbox)


def test_a_server_with_dots_as_separator(acme, dots_account):
    fill(dots_account)
    mailbox = make_mailbox(acme, dots_account)
    assert fetch.run_pass(mailbox.pk).state == "done"
    assert {"dmarc.processed", "dmarc.invalid"} <= dots_account.folders()
    assert_final_state(dots_account, mailbox, "dmarc.processed", "dmarc.invalid")


def test_read_only_mode_leaves_the_mail_and_remembers_it(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account, read_only=True)
    first = fetch.run_pass(mailbox.pk)
    assert (first.state, first.fetched) == ("done", GOOD + BAD)
    assert len(imap_account.messages("INBOX")) == GOOD + BAD
    assert not any(m.flags & {"\\Seen"} for m in imap_account.messages("INBOX"))
    assert "dmarc/processed" not in imap_account.folders()
    assert stored() == EXPECTED_REPORTS
    second = fetch.run_pass(mailbox.pk)
    assert (second.state, second.total) == ("done", 0)


def assert_failed_and_untouched(mailbox, account, expected: str) -> None:
    run = fetch.run_pass(mailbox.pk)
    assert run.state == "failed" and expected in run.error, run.error
    mailbox.refresh_from_db()
    assert mailbox.last_error == run.error and mailbox.last_error_at
    assert len(account.messages("INBOX")) == GOOD + BAD
    assert stored() == (0, 0, 0)


def test_a_wrong_password_fails_clearly_and_moves_nothing(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account, password_encrypted=secrets.encrypt("wrong"))
    assert_failed_and_untouched(mailbox, imap_account, f"login refused for {imap_account.user}")


def test_an_untrusted_certificate_fails_clearly_and_moves_nothing(acme, dovecot_with, settings):
    untrusted = dovecot_with(wrong_cert=True)
    settings.MAILSEC_TLS_CA_FILE = str(untrusted.ca_file)  # not the CA of its certificate
    account = new_account(untrusted)
    fill(account)
    mailbox = make_mailbox(acme, account)
    assert_failed_and_untouched(mailbox, account, "certificate for 127.0.0.1 not valid")


def test_due_mailboxes_are_claimed_once(acme, imap_account):
    mailbox = make_mailbox(acme, imap_account, interval_minutes=5)
    make_mailbox(acme, imap_account, name="off", enabled=False)
    now = timezone.now()
    assert fetch.due_mailboxes(now) == [mailbox.pk]
    assert fetch.due_mailboxes(now) == []  # claimed: next poll in 5 minutes
    assert fetch.due_mailboxes(now + timedelta(minutes=5)) == [mailbox.pk]


def test_fetch_reports_command(acme, imap_account, capsys):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    call_command("fetch_reports", "--mailbox", str(mailbox.pk))
    out = capsys.readouterr().out
    assert f"rua: done, {GOOD + BAD} of {GOOD + BAD} new messages" in out
    assert f"{sum(EXPECTED_REPORTS)} reports imported, 0 duplicates, {BAD} invalid" in out
    assert_final_state(imap_account, mailbox)
    assert MailboxPass.objects.get().trigger == "command"


def test_fetch_reports_command_fails_when_a_pass_fails(acme, imap_account, capsys):
    mailbox = make_mailbox(acme, imap_account, password_encrypted=secrets.encrypt("wrong"))
    with pytest.raises(SystemExit) as exit:
        call_command("fetch_reports")
    assert exit.value.code == 1
    assert "rua: failed" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No mailbox with id"):
        call_command("fetch_reports", "--mailbox", str(mailbox.pk + 1))


@pytest.mark.django_db(transaction=True)
def test_fetch_now_runs_on_a_real_worker(celery_worker, acme, imap_account):
    fill(imap_account)
    # Plain IMAP on loopback: the worker process trusts no test CA.
    mailbox = make_mailbox(
        acme,
        imap_account,
        port=imap_account.server.imap_port,
        tls_mode="plain",
        allow_plaintext=True,
    )
    queued = fetch.request_pass(mailbox)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queued.refresh_from_db()
        if queued.state in ("done", "failed"):
            break
        time.sleep(0.2)
    assert queued.state == "done", f"{queued.error}\nworker log:\n{celery_worker.output()}"
    assert queued.trigger == "manual"
    assert_final_state(imap_account, mailbox)


def test_a_mailbox_deleted_during_its_pass(acme, imap_account, monkeypatch):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    monkeypatch.setattr(fetch, "BATCH", 4)
    calls = []

    def delete_after_the_first_batch(run):
        calls.append(run.fetched)
        if len(calls) == 2:
            Mailbox.objects.filter(pk=mailbox.pk).delete()

    run = fetch.run_pass(mailbox.pk, progress=delete_after_the_first_batch)
    assert not MailboxPass.objects.filter(pk=run.pk).exists()
    assert fetch.run_pass(mailbox.pk) is None
    # What was stored before the deletion stays: reports belong to domains, not mailboxes.
    assert sum(stored()) >= 1


def test_a_message_that_fails_is_left_for_the_next_pass(acme, imap_account, monkeypatch):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    real_ingest = fetch.ingest_input
    broken = {"on": True}

    def flaky(message, name, **kwargs):
        if broken["on"] and name.endswith("UID 2"):
            raise RuntimeError("the database went away")
        return real_ingest(message, name, **kwargs)

    monkeypatch.setattr(fetch, "ingest_input", flaky)
    first = fetch.run_pass(mailbox.pk)
    assert first.state == "done" and "UID 2 could not be stored" in first.error
    assert first.fetched == GOOD + BAD - 1
    assert [m.uid for m in imap_account.messages("INBOX")] == [2]
    broken["on"] = False
    second = fetch.run_pass(mailbox.pk)
    assert (second.total, second.fetched, second.error) == (1, 1, "")
    assert_final_state(imap_account, mailbox)


def test_a_server_that_stops_answering_times_out_then_the_next_pass_resumes(
    acme, imap_account, monkeypatch
):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    monkeypatch.setattr(fetch, "BATCH", 3)
    real_of = fetch.ServerSettings.of
    monkeypatch.setattr(
        fetch.ServerSettings,
        "of",
        classmethod(lambda cls, mailbox, password: replace(real_of(mailbox, password), timeout=1)),
    )
    frozen = []

    def hang_after_the_first_batch(run):
        if run.fetched and not frozen:
            frozen.append(imap_account.server.paused(imap_account.user))
            frozen[0].__enter__()

    started = time.monotonic()
    try:
        hung = fetch.run_pass(mailbox.pk, progress=hang_after_the_first_batch)
    finally:
        frozen[0].__exit__(None, None, None)
    assert time.monotonic() - started < 10
    assert hung.state == "failed"
    assert hung.error.startswith("127.0.0.1 did not answer") and "within 1 s" in hung.error
    resumed = fetch.run_pass(mailbox.pk)
    assert resumed.state == "done"
    assert_final_state(imap_account, mailbox)
