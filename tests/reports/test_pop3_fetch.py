"""A pass over a real dovecot POP3 mailbox: every report stored once, every message deleted
only after it was stored, and a connection killed before QUIT deleting nothing and
duplicating nothing."""

import time

import pytest

from reports import fetch, secrets
from reports.models import Mailbox, MailboxPass, Pop3Message, RawInput
from tests.pop3_peer import Pop3Peer, crlf
from tests.reports.conftest import new_account
from tests.reports.test_fetch import BAD, EXPECTED_REPORTS, GOOD, fill, mails, report_mail, stored
from tests.reports.test_pop3 import pop3_logins

ALL = GOOD + BAD


def make_mailbox(acme, account, tls_mode="implicit", **options) -> Mailbox:
    server = account.server
    fields = {
        "organization": acme,
        "name": "rua",
        "protocol": "pop3",
        "host": "127.0.0.1",
        "port": server.pop3s_port if tls_mode == "implicit" else server.pop3_port,
        "tls_mode": tls_mode,
        "username": account.user,
        "password_encrypted": secrets.encrypt(account.password),
    } | options
    return Mailbox.objects.create(**fields)


def on_server(account) -> int:
    return len(account.messages("INBOX"))


def assert_emptied(account, mailbox) -> None:
    assert on_server(account) == 0
    assert stored() == EXPECTED_REPORTS
    assert RawInput.objects.filter(source="mailbox").count() == ALL


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_a_pass_stores_every_report_once_then_empties_the_mailbox(acme, imap_account, mode):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account, mode)
    run = fetch.run_pass(mailbox.pk)
    assert (run.state, run.error) == ("done", "")
    assert (run.total, run.fetched) == (ALL, ALL)
    assert (run.imported, run.duplicates, run.invalid) == (sum(EXPECTED_REPORTS), 0, BAD)
    assert_emptied(imap_account, mailbox)
    assert RawInput.objects.filter(source="mailbox", status="refused").count() == BAD
    assert Pop3Message.objects.filter(mailbox=mailbox).count() == ALL
    mailbox.refresh_from_db()
    assert mailbox.last_pass == run and mailbox.locked_until is None

    again = fetch.run_pass(mailbox.pk)
    assert (again.state, again.total, again.fetched, again.error) == ("done", 0, 0, "")
    assert_emptied(imap_account, mailbox)
    # The server no longer lists them: nothing left to remember.
    assert not Pop3Message.objects.filter(mailbox=mailbox).exists()


def test_new_mail_after_a_pass_is_all_the_next_pass_fetches(acme, imap_account):
    mailbox = make_mailbox(acme, imap_account)
    imap_account.deliver(mails()[0])
    assert fetch.run_pass(mailbox.pk).imported == 1
    imap_account.deliver(mails()[1])
    imap_account.deliver(mails()[0])  # the same report again, in a new message
    run = fetch.run_pass(mailbox.pk)
    assert (run.total, run.imported, run.duplicates) == (2, 1, 1)
    assert on_server(imap_account) == 0


def wait_until_gone(account) -> None:
    """doveadm kick only signals the POP3 process: wait until it is gone."""
    deadline = time.monotonic() + 5
    while account.server.imap_pids(account.user) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not account.server.imap_pids(account.user)


def test_a_connection_killed_mid_pass_deletes_nothing_and_stores_nothing_twice(
    acme, imap_account, monkeypatch
):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)
    monkeypatch.setattr(fetch, "BATCH", 3)
    calls = []

    def kill_after_the_first_batch(run):
        calls.append(run.fetched)
        if len(calls) == 2:  # the first call is before any batch
            assert imap_account.server.kick(imap_account.user)
            wait_until_gone(imap_account)

    broken = fetch.run_pass(mailbox.pk, progress=kill_after_the_first_batch)
    # dovecot says "-ERR [SYS/TEMP] Server shutting down." as it goes, or is simply gone.
    assert broken.state == "failed"
    assert broken.error.startswith(("127.0.0.1 refused RETR: ", "connection to 127.0.0.1 lost"))
    assert "3 messages were stored; nothing was deleted from the server" in broken.error
    assert broken.fetched == 3
    assert on_server(imap_account) == ALL  # the three DELEs never reached QUIT
    assert Pop3Message.objects.filter(mailbox=mailbox).count() == 3
    reports_after_the_first = sum(stored())

    resumed = fetch.run_pass(mailbox.pk)
    assert (resumed.state, resumed.error) == ("done", "")
    assert (resumed.total, resumed.fetched) == (ALL - 3, ALL - 3)
    assert sum(stored()) == reports_after_the_first + resumed.imported
    assert_emptied(imap_account, mailbox)


def test_a_connection_killed_just_before_quit(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account)

    def kill_after_the_last_batch(run):
        if run.fetched == ALL:
            assert imap_account.server.kick(imap_account.user)
            wait_until_gone(imap_account)

    broken = fetch.run_pass(mailbox.pk, progress=kill_after_the_last_batch)
    assert broken.state == "failed" and "QUIT" in broken.error
    assert f"{ALL} messages were stored; the server may not have deleted them" in broken.error
    assert broken.fetched == ALL and stored() == EXPECTED_REPORTS
    assert on_server(imap_account) == ALL  # every DELE lost with the connection

    resumed = fetch.run_pass(mailbox.pk)
    assert (resumed.state, resumed.total, resumed.fetched) == ("done", 0, 0)
    assert_emptied(imap_account, mailbox)  # deleted now, stored once


def test_read_only_mode_leaves_the_mail_and_remembers_it(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account, read_only=True)
    first = fetch.run_pass(mailbox.pk)
    assert (first.state, first.fetched) == ("done", ALL)
    assert on_server(imap_account) == ALL
    assert stored() == EXPECTED_REPORTS
    second = fetch.run_pass(mailbox.pk)
    assert (second.state, second.total) == ("done", 0)
    assert Pop3Message.objects.filter(mailbox=mailbox).count() == ALL
    assert on_server(imap_account) == ALL

    # Read-only off: what was stored is deleted, not stored again.
    Mailbox.objects.filter(pk=mailbox.pk).update(read_only=False)
    third = fetch.run_pass(mailbox.pk)
    assert (third.state, third.total) == ("done", 0)
    assert_emptied(imap_account, mailbox)


def assert_failed_and_untouched(mailbox, account, expected: str) -> None:
    run = fetch.run_pass(mailbox.pk)
    assert run.state == "failed" and expected in run.error, run.error
    mailbox.refresh_from_db()
    assert mailbox.last_error == run.error and mailbox.last_error_at
    assert on_server(account) == ALL
    assert stored() == (0, 0, 0)


def test_a_wrong_password_fails_clearly_and_deletes_nothing(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account, password_encrypted=secrets.encrypt("wrong"))
    assert_failed_and_untouched(mailbox, imap_account, f"login refused for {imap_account.user}")


def test_an_untrusted_certificate_fails_clearly_and_deletes_nothing(acme, dovecot_with, settings):
    untrusted = dovecot_with(wrong_cert=True, pop3=True)
    settings.MAILSEC_TLS_CA_FILE = str(untrusted.ca_file)  # not the CA of its certificate
    account = new_account(untrusted)
    fill(account)
    mailbox = make_mailbox(acme, account, "starttls")
    assert_failed_and_untouched(mailbox, account, "certificate for 127.0.0.1 not valid")
    assert not pop3_logins(account)


def test_plaintext_is_refused_without_the_tick(acme, imap_account):
    fill(imap_account)
    mailbox = make_mailbox(acme, imap_account, "plain", port=imap_account.server.pop3_port)
    assert_failed_and_untouched(mailbox, imap_account, "without encryption")
    assert not pop3_logins(imap_account)


def test_a_server_without_uidl_is_refused_with_a_clear_message(acme):
    with Pop3Peer(mails()[:2], uidl=False) as peer:
        mailbox = Mailbox.objects.create(
            organization=acme, name="old", protocol="pop3", host="127.0.0.1", port=peer.port,
            tls_mode="plain", allow_plaintext=True, username=peer.user,
            password_encrypted=secrets.encrypt(peer.password),
        )  # fmt: skip
        run = fetch.run_pass(mailbox.pk)
        assert run.state == "failed"
        assert "does not give unique message ids (UIDL)" in run.error
        assert not any(c.startswith(("RETR", "DELE")) for c in peer.commands)
        assert len(peer.messages) == 2 and stored() == (0, 0, 0)


BIG_MAIL = crlf(report_mail("big", b"z" * 200_000, "big.xml.gz"))


def test_a_message_over_the_limit_is_refused_without_being_fetched(acme, settings):
    settings.MAILSEC_REPORT_MAX_BYTES = 100_000
    with Pop3Peer([BIG_MAIL, mails()[0]]) as peer:
        mailbox = Mailbox.objects.create(
            organization=acme, name="small", protocol="pop3", host="127.0.0.1", port=peer.port,
            tls_mode="plain", allow_plaintext=True, username=peer.user,
            password_encrypted=secrets.encrypt(peer.password),
        )  # fmt: skip
        run = fetch.run_pass(mailbox.pk)
        assert (run.state, run.total, run.fetched, run.imported, run.invalid) == (
            "done", 2, 1, 1, 1,
        )  # fmt: skip
        assert "over the 100,000 bytes limit: left on the server" in run.error
        assert "RETR 1" not in peer.commands and "TOP 1 0" in peer.commands
        assert peer.messages == [BIG_MAIL]  # left for a person; the report deleted
        refused = RawInput.objects.get(status="refused")
        assert "over the 100,000 bytes limit" in refused.reason
        assert refused.original() == BIG_MAIL.split(b"\r\n\r\n")[0] + b"\r\n\r\n"  # TOP 1 0

        again = fetch.run_pass(mailbox.pk)  # remembered: not fetched, not deleted
        assert (again.state, again.total, again.error) == ("done", 0, "")
        assert peer.messages == [BIG_MAIL]
        assert peer.commands.count("TOP 1 0") == 1


@pytest.mark.django_db(transaction=True)
def test_fetch_now_runs_on_a_real_worker(celery_worker, acme, imap_account):
    fill(imap_account)
    # Plaintext POP3 on loopback: the worker process trusts no test CA.
    mailbox = make_mailbox(
        acme, imap_account, "plain", port=imap_account.server.pop3_port, allow_plaintext=True
    )
    queued = fetch.request_pass(mailbox)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queued.refresh_from_db()
        if queued.state in ("done", "failed"):
            break
        time.sleep(0.2)
    assert queued.state == "done", f"{queued.error}\nworker log:\n{celery_worker.output()}"
    assert MailboxPass.objects.get().fetched == ALL
    assert_emptied(imap_account, mailbox)
