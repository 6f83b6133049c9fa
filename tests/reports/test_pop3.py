"""reports/pop3.py against dovecot's POP3 (tests/dovecot.py) on loopback, and against a tiny
POP3 peer (tests/pop3_peer.py) for what dovecot always does (UIDL, USER, CAPA)."""

import poplib
import socket
import time

import pytest

from reports import pop3
from reports.mailserver import MailboxError, ServerSettings
from reports.pop3 import Pop3Session
from tests.pop3_peer import Pop3Peer, crlf
from tests.reports.conftest import new_account
from tests.reports.test_mailbox import logins, mail


def pop3_logins(account) -> list[str]:
    """dovecot's log lines of the account's successful POP3 logins (the tests read the mail
    over IMAP)."""
    return [line for line in logins(account) if "pop3-login:" in line]


def server_for(account, tls_mode="implicit", **options) -> ServerSettings:
    server = account.server
    port = server.pop3s_port if tls_mode == "implicit" else server.pop3_port
    return ServerSettings("127.0.0.1", port, tls_mode, account.user, account.password, **options)


def peer_server(peer: Pop3Peer, password: str | None = None) -> ServerSettings:
    return ServerSettings(
        "127.0.0.1", peer.port, "plain", peer.user, password or peer.password,
        allow_plaintext=True,
    )  # fmt: skip


def failure(server: ServerSettings) -> MailboxError:
    with pytest.raises(MailboxError) as caught:
        Pop3Session.open(server)
    return caught.value


# --- connecting and logging in ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_login_over_tls_lists_and_retrieves(imap_account, mode):
    imap_account.deliver(mail("one"))
    imap_account.deliver(mail("two"))
    with Pop3Session.open(server_for(imap_account, mode)) as session:
        listed = session.listing()
        assert [m.number for m in listed] == [1, 2]
        assert len({m.uidl for m in listed}) == 2
        data, size = session.retrieve(2, 1 << 20)
    assert data == crlf(mail("two")) and size == len(data) == listed[1].size
    assert pop3_logins(imap_account) and all("TLS" in line for line in pop3_logins(imap_account))


def test_the_connection_test_shows_every_step(imap_account):
    imap_account.deliver(mail("one"))
    steps = pop3.test_connection(server_for(imap_account, "starttls"))
    assert [(s.name, s.ok) for s in steps] == [
        ("DNS", True), ("TCP", True), ("TLS", True), ("Login", True), ("Messages", True),
    ]  # fmt: skip
    assert steps[2].detail.startswith("TLSv1.3, certificate valid for 127.0.0.1")
    assert steps[3].detail == f"logged in as {imap_account.user} (USER/PASS)"
    assert steps[4].detail.startswith("1 message (")
    assert len(imap_account.messages()) == 1  # nothing retrieved, nothing deleted


def test_plaintext_refused_unless_allowed(imap_account):
    error = failure(server_for(imap_account, "plain"))
    assert error.stage == "refused" and "without encryption" in str(error)
    assert not pop3_logins(imap_account)  # refused before any connection
    with Pop3Session.open(server_for(imap_account, "plain", allow_plaintext=True)) as session:
        assert session.listing() == []
    assert len(pop3_logins(imap_account)) == 1


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_wrong_password(imap_account, mode):
    server = server_for(imap_account, mode)
    server.password = "wrong-" + server.password
    error = failure(server)
    assert error.stage == "login"
    assert str(error).startswith(f"login refused for {imap_account.user}: ")
    assert "Authentication failed" in str(error) and server.password not in str(error)


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_untrusted_certificate(dovecot_with, settings, mode):
    untrusted = dovecot_with(wrong_cert=True, pop3=True)
    settings.MAILSEC_TLS_CA_FILE = str(untrusted.ca_file)  # not the CA of its certificate
    account = new_account(untrusted)
    error = failure(server_for(account, mode))
    assert error.stage == "certificate"
    assert str(error).startswith("certificate for 127.0.0.1 not valid: ")
    assert not pop3_logins(account)


def test_stls_not_offered_never_logs_in(dovecot_with):
    account = new_account(dovecot_with(tls=False, pop3=True))
    error = failure(server_for(account, "starttls"))
    assert error.stage == "tls" and "does not offer STLS" in str(error)
    assert "usually port 995" in str(error)
    assert not pop3_logins(account)


def test_private_targets_are_screened(imap_account, settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    error = failure(server_for(imap_account))
    assert error.stage == "refused" and "loopback" in str(error)
    assert not pop3_logins(imap_account)


# --- the session ------------------------------------------------------------------------------


def test_deletions_happen_at_quit_only(imap_account):
    for tag in ("one", "two"):
        imap_account.deliver(mail(tag))
    with Pop3Session.open(server_for(imap_account)) as session:
        session.delete([1])
    # Left without QUIT: nothing deleted.
    assert len(imap_account.messages()) == 2
    session = Pop3Session.open(server_for(imap_account))
    session.delete([1])
    session.quit()
    session.close()
    assert [b"distinctive body two" in m.data for m in imap_account.messages()] == [True]


def test_lines_beginning_with_a_dot_come_back_unstuffed(imap_account):
    message = mail("dots") + b".\r\n..two\r\n.one\r\n"
    imap_account.deliver(message)
    with Pop3Session.open(server_for(imap_account)) as session:
        assert session.retrieve(1, 1 << 20)[0] == message


def test_a_message_over_the_limit_is_not_held(imap_account):
    imap_account.deliver(mail("big") + b"x" * 5000 + b"\r\n")
    imap_account.deliver(mail("small"))
    with Pop3Session.open(server_for(imap_account)) as session:
        listed = session.listing()
        data, size = session.retrieve(1, 1000)
        assert data is None and size == listed[0].size > 5000
        # The rest of the answer was read and dropped: the session goes on.
        assert session.retrieve(2, 1000)[0] == crlf(mail("small"))
        assert session.head(1).startswith(b"From: noreply-dmarc@example.net")


def test_dropped_connection(imap_account):
    imap_account.deliver(mail("one"))
    session = Pop3Session.open(server_for(imap_account))
    session.listing()
    assert imap_account.server.kick(imap_account.user)
    deadline = time.monotonic() + 5  # kick only signals the process: wait until it is gone
    while imap_account.server.imap_pids(imap_account.user) and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(MailboxError) as caught:
        session.retrieve(1, 1000)
    # dovecot says why before it closes ("-ERR [SYS/TEMP] Server shutting down."), or the
    # connection is simply gone.
    assert caught.value.stage == "protocol"
    assert str(caught.value).startswith(
        ("127.0.0.1 refused RETR: ", "connection to 127.0.0.1 lost at RETR")
    )
    with pytest.raises(MailboxError) as caught:
        session.delete([1])
    assert caught.value.stage == "protocol"
    session.close()
    assert len(imap_account.messages()) == 1


def test_a_server_that_stops_answering(imap_account):
    imap_account.deliver(mail("one"))
    server = imap_account.server
    with (
        Pop3Session.open(server_for(imap_account, timeout=0.5)) as session,
        server.paused(imap_account.user),
        pytest.raises(MailboxError) as caught,
    ):
        session.listing()
    assert caught.value.stage == "timeout"
    assert str(caught.value) == "127.0.0.1 did not answer UIDL within 0.5 s"


# --- servers dovecot cannot imitate -----------------------------------------------------------


def test_a_server_without_uidl_is_refused_clearly():
    with Pop3Peer([mail("one")], uidl=False) as peer:
        with Pop3Session.open(peer_server(peer)) as session, pytest.raises(MailboxError) as caught:
            session.listing()
        steps = pop3.test_connection(peer_server(peer))
    assert caught.value.stage == "protocol"
    assert "does not give unique message ids (UIDL)" in str(caught.value)
    assert not any(c.startswith("RETR") for c in peer.commands)
    assert (steps[-1].name, steps[-1].ok) == ("Messages", False)
    assert "UIDL" in steps[-1].detail


@pytest.mark.parametrize(
    ("options", "how", "command"),
    [
        ({}, "USER/PASS", "PASS ********"),
        ({"capa": False}, "USER/PASS", "PASS ********"),  # no CAPA: USER is assumed
        ({"user_pass": False, "sasl_plain": True}, "SASL PLAIN", "AUTH ********"),
        ({"user_pass": False, "apop": True}, "APOP", "APOP ********"),
    ],
)
def test_login_methods(options, how, command):
    with Pop3Peer([mail("one")], **options) as peer:
        steps = pop3.test_connection(peer_server(peer))
        assert steps[3].detail == f"logged in as {peer.user} ({how})"
        assert steps[4].ok, steps[4].detail
        assert command in peer.commands
        with pytest.raises(MailboxError) as caught:
            Pop3Session.open(peer_server(peer, password="wrong"))
    assert caught.value.stage == "login" and "login refused" in str(caught.value)


def test_a_line_break_in_the_password_is_never_sent():
    with Pop3Peer([mail("one")]) as peer:
        server = peer_server(peer, password="x\r\nDELE 1")
        with pytest.raises(MailboxError, match="contains a line break"):
            Pop3Session.open(server)
    assert not any(c.startswith(("USER", "PASS", "DELE")) for c in peer.commands)


def test_a_server_offering_no_usable_login():
    with Pop3Peer([mail("one")], user_pass=False) as peer, pytest.raises(MailboxError) as caught:
        Pop3Session.open(peer_server(peer))
    assert caught.value.stage == "login"
    assert "offers no login mailsec supports" in str(caught.value)
    assert not any(c.split()[0] in ("USER", "PASS", "APOP", "AUTH") for c in peer.commands)


def test_a_server_that_understates_a_size_is_still_bounded():
    big = mail("big") + b"y" * 3000 + b"\r\n"
    with Pop3Peer([big], understate=True) as peer, Pop3Session.open(peer_server(peer)) as session:
        assert session.listing()[0].size == 100
        data, size = session.retrieve(1, 1000)
        assert data is None and size > 3000
        assert session.listing()[0].uidl == "peer-1"  # the session goes on


# --- servers that are not (working) POP3 servers ----------------------------------------------


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_a_server_that_never_answers(mode):
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:  # accepts, never speaks
        port = silent.getsockname()[1]
        error = failure(ServerSettings("127.0.0.1", port, mode, "u", "p", timeout=0.3))
    assert error.stage == "timeout" and "within 0.3 s" in str(error)


def test_a_server_that_is_not_pop3(imap_account):
    port = imap_account.server.imap_port  # dovecot's IMAP: "* OK [CAPABILITY ...] ready."
    error = failure(ServerSettings("127.0.0.1", port, "starttls", "u", "p"))
    assert error.stage == "protocol"
    assert "did not greet as a POP3 server: * OK" in str(error)


# --- pure pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "stage", "text"),
    [
        (TimeoutError(), "timeout", "h did not answer RETR within 2 s"),
        (poplib.error_proto(b"-ERR no such message"), "protocol",
         "h refused RETR: no such message"),
        (poplib.error_proto("-ERR EOF"), "protocol",
         "connection to h lost at RETR: the server closed"),
        (ConnectionResetError(104, "Connection reset by peer"), "protocol",
         "connection to h lost at RETR: Connection reset by peer"),
        (pop3._LineTooLong("a line longer than 1,048,576 bytes"), "protocol",
         "h sent a line longer than 1,048,576 bytes at RETR"),
    ],
)  # fmt: skip
def test_failures_are_classified(exc, stage, text):
    error = pop3._failure(exc, "h", 2, "RETR")
    assert error.stage == stage and str(error).startswith(text)


def test_unusable_listings_are_refused():
    assert pop3._pairs([b"1 abc", b"2 d-e"], "h", "UIDL") == [(1, "abc"), (2, "d-e")]
    with pytest.raises(MailboxError, match="answered UIDL with"):
        pop3._pairs([b"garbage"], "h", "UIDL")
