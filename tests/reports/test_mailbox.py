"""reports/mailbox.py against a real dovecot (tests/dovecot.py) on loopback."""

import gzip
import logging
import socket
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from reports import mailbox
from reports.mailbox import ImapSession, MailboxError, ServerSettings, Step
from reports.models import Mailbox
from tests.reports.conftest import DNS_NAME, new_account
from tests.servers import free_port

FIXTURES = Path(__file__).parent.parent / "fixtures" / "reports" / "aggregate"
LARGE_REPORT = "dmarcrua__enterprise-outlook_4f56e9c325864683bb0bba76fb2cfd96.xml"


def server_for(account, tls_mode="implicit", *, host="127.0.0.1", **options) -> ServerSettings:
    port = account.server.imaps_port if tls_mode == "implicit" else account.server.imap_port
    return ServerSettings(host, port, tls_mode, account.user, account.password, **options)


def mail(tag: str) -> bytes:
    return (
        "From: noreply-dmarc@example.net\r\n"
        "To: dmarc@example.test\r\n"
        f"Subject: Report {tag}\r\n"
        f"Message-ID: <{tag}@example.net>\r\n"
        "\r\n"
        f"distinctive body {tag}\r\n"
    ).encode()


def report_mail() -> bytes:
    """A realistic rua message: a gzipped aggregate report as a base64 attachment."""
    message = EmailMessage()
    message["From"], message["To"] = "noreply-dmarc@example.net", "dmarc@example.test"
    message["Subject"] = "Report Domain: example.test"
    message.set_content("This is a DMARC aggregate report.")
    report = gzip.compress((FIXTURES / LARGE_REPORT).read_bytes(), mtime=0)
    message.add_attachment(report, maintype="application", subtype="gzip", filename="report.xml.gz")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def failure(server: ServerSettings) -> MailboxError:
    with pytest.raises(MailboxError) as caught:
        ImapSession.open(server)
    return caught.value


def logins(account) -> list[str]:
    """dovecot's log lines of the account's successful logins."""
    return [
        line
        for line in account.server.log_path.read_text().splitlines()
        if "Login: user=<" + account.user + ">" in line
    ]


# --- connecting -------------------------------------------------------------------------------


def test_implicit_tls_login(imap_account):
    with ImapSession.open(server_for(imap_account, "implicit")) as session:
        assert {"IMAP4REV1", "MOVE", "UIDPLUS"} <= session.capabilities
        assert session.delimiter == "/"
    [login] = logins(imap_account)
    assert "lip=127.0.0.1, mpid=" in login and ", TLS, " in login


def test_starttls_login(imap_account):
    with ImapSession.open(server_for(imap_account, "starttls")) as session:
        assert "MOVE" in session.capabilities
    [login] = logins(imap_account)
    assert ", TLS, " in login  # dovecot says "TLS" only when the session is encrypted


def test_host_name_resolved_through_the_tests_dns(imap_account, knot, settings):
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    for mode in ("implicit", "starttls"):
        with ImapSession.open(server_for(imap_account, mode, host=DNS_NAME)) as session:
            assert session.host == DNS_NAME
    assert len(logins(imap_account)) == 2


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_certificate_checked_for_the_name_not_the_address(dots_account, knot, settings, mode):
    """ns.test is 127.0.0.1, which the certificate names, but not ns.test itself."""
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    error = failure(server_for(dots_account, mode, host=DNS_NAME))
    assert error.stage == "certificate"
    assert str(error).startswith(f"certificate for {DNS_NAME} not valid: ")
    assert "mismatch" in str(error).lower()
    assert logins(dots_account) == []


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_untrusted_certificate(dovecot_with, settings, mode):
    server = dovecot_with(wrong_cert=True)
    settings.MAILSEC_TLS_CA_FILE = str(server.ca_file)
    account = new_account(server)
    error = failure(server_for(account, mode))
    assert error.stage == "certificate"
    assert str(error) == "certificate for 127.0.0.1 not valid: self-signed certificate"
    assert logins(account) == []


def test_plaintext_refused_unless_allowed(imap_account):
    error = failure(server_for(imap_account, "plain"))
    assert error.stage == "refused"
    assert "without encryption" in str(error) and "explicitly allow plaintext" in str(error)
    assert logins(imap_account) == []

    with ImapSession.open(server_for(imap_account, "plain", allow_plaintext=True)) as session:
        assert "UIDPLUS" in session.capabilities
    [login] = logins(imap_account)
    assert ", TLS, " not in login


def test_starttls_not_offered_never_logs_in(dovecot_with):
    server = dovecot_with(tls=False)
    account = new_account(server)
    error = failure(server_for(account, "starttls"))
    assert error.stage == "tls"
    assert f"port {server.imap_port} does not offer STARTTLS" in str(error)
    assert account.user not in server.log()  # no login attempted: the password never left


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_wrong_password(imap_account, mode):
    server = server_for(imap_account, mode)
    server.password = "wrong-" + uuid.uuid4().hex
    error = failure(server)
    assert error.stage == "login"
    assert str(error) == (
        f"login refused for {imap_account.user}: [AUTHENTICATIONFAILED] Authentication failed."
    )


def test_connection_refused(imap_account):
    error = failure(
        ServerSettings("127.0.0.1", free_port(), "implicit", imap_account.user, "secret")
    )
    assert error.stage == "tcp"
    assert "cannot connect to 127.0.0.1 port" in str(error)
    assert "connection refused" in str(error)


def test_unknown_host(imap_account, knot, settings):
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    error = failure(server_for(imap_account, host="no-such-imap.test"))
    assert error.stage == "dns"
    assert str(error) == "no-such-imap.test does not exist (NXDOMAIN)"


def test_private_target_refused(imap_account, knot, settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    for host in ("127.0.0.1", DNS_NAME):
        error = failure(server_for(imap_account, host=host))
        assert error.stage == "refused"
        assert "127.0.0.1 (loopback)" in str(error)
    assert logins(imap_account) == []


@pytest.fixture
def silent_port():
    """A port where connections are accepted (by the kernel) and nobody ever says a word."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as sock:
        yield sock.getsockname()[1]


class ChattyServer:
    """Greets like an SMTP server, not an IMAP one."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            with connection:
                connection.sendall(b"220 mx.example.test ESMTP ready\r\n")
                connection.recv(1024)


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_server_that_never_answers(mode, silent_port):
    error = failure(
        ServerSettings("127.0.0.1", silent_port, mode, "u@example.test", "p", timeout=0.3)
    )
    assert error.stage == "timeout"
    assert "within 0.3 s" in str(error)


def test_server_that_is_not_imap():
    server = ChattyServer()
    try:
        error = failure(ServerSettings("127.0.0.1", server.port, "starttls", "u@example.test", "p"))
    finally:
        server.sock.close()
    assert error.stage == "protocol"
    assert "did not greet as an IMAP server" in str(error)
    assert "220 mx.example.test ESMTP ready" in str(error)


# --- folders ----------------------------------------------------------------------------------


def test_ensure_folder_creates_nested_folders(imap_account):
    with ImapSession.open(server_for(imap_account)) as session:
        assert session.server_name("dmarc/processed") == "dmarc/processed"
        assert session.ensure_folder("dmarc/processed") is True
        assert session.ensure_folder("dmarc/processed") is False
        assert session.ensure_folder("dmarc/invalid") is True
        assert session.ensure_folder("a/b/c") is True
        assert session.exists("a/b") and not session.exists("a/x")
    assert imap_account.folders() == {
        "INBOX", "dmarc", "dmarc/processed", "dmarc/invalid", "a", "a/b", "a/b/c"
    }  # fmt: skip


def test_ensure_folder_with_dot_separator(dots_account):
    with ImapSession.open(server_for(dots_account)) as session:
        assert session.delimiter == "."
        assert session.server_name("dmarc/processed") == "dmarc.processed"
        assert session.ensure_folder("dmarc/processed") is True
        assert session.ensure_folder("dmarc/processed") is False
        with pytest.raises(MailboxError) as caught:
            session.server_name("dmarc.reports/processed")
        assert caught.value.stage == "folder"
        assert "contains '.'" in str(caught.value)
    assert dots_account.folders() == {"INBOX", "dmarc", "dmarc.processed"}


def test_ensure_folder_refused(imap_account):
    with (
        ImapSession.open(server_for(imap_account)) as session,
        pytest.raises(MailboxError) as caught,
    ):
        session.ensure_folder("dmarc/x" + "y" * 300)  # longer than dovecot's name limit
    assert caught.value.stage == "folder"
    assert str(caught.value).startswith("folder dmarc/xyyy")
    assert " cannot be created: " in str(caught.value)


def test_select_returns_a_stable_uidvalidity(imap_account):
    imap_account.deliver(mail("one"))
    with ImapSession.open(server_for(imap_account)) as session:
        first = session.select("INBOX", readonly=True)
        assert session.select("INBOX", readonly=False) == first
    with ImapSession.open(server_for(imap_account, "starttls")) as session:
        assert session.select("INBOX", readonly=True) == first
    status = imap_account.server.doveadm(
        "mailbox", "status", "-u", imap_account.user, "uidvalidity", "INBOX"
    )
    assert status.strip() == f"INBOX uidvalidity={first}"


def test_select_missing_folder(imap_account):
    with ImapSession.open(server_for(imap_account)) as session:
        with pytest.raises(MailboxError) as caught:
            session.select("dmarc/nope", readonly=True)
        assert caught.value.stage == "folder"
        assert str(caught.value).startswith("folder dmarc/nope cannot be opened: ")
        assert "Mailbox doesn't exist" in str(caught.value)
        assert session.select("INBOX", readonly=True) > 0  # the session is still usable


# --- messages ---------------------------------------------------------------------------------


def test_uids_and_fetch_return_the_delivered_messages(imap_account):
    delivered = [mail("alpha"), report_mail(), mail("gamma")]
    for message in delivered:
        imap_account.deliver(message)
    with ImapSession.open(server_for(imap_account)) as session:
        session.select("INBOX", readonly=False)
        uids = session.uids()
        assert uids == [1, 2, 3]
        fetched = session.fetch(uids[:2]) | session.fetch(uids[2:])
    assert sorted(fetched) == uids
    for uid, message in zip(uids, delivered, strict=True):
        assert fetched[uid].endswith(message)  # dovecot may only prepend headers
    assert b"distinctive body alpha" in fetched[1]
    assert len(fetched[2]) > 20_000  # many literal reads
    # Read-write and fetched: still unread.
    assert all("\\Seen" not in stored.flags for stored in imap_account.messages())


def test_uids_skip_deleted_and_fetch_skips_vanished(imap_account):
    for tag in ("one", "two", "three"):
        imap_account.deliver(mail(tag))
    with imap_account.server.client(imap_account.user) as other:
        other.select("INBOX")
        other.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    with ImapSession.open(server_for(imap_account)) as session:
        session.select("INBOX", readonly=True)
        assert session.uids() == [1, 3]
        assert session.fetch([]) == {}
        assert sorted(session.fetch([1, 3, 99])) == [1, 3]


def move_setup(account):
    for tag in ("one", "two", "three"):
        account.deliver(mail(tag))
    with account.server.client(account.user) as other:
        other.select("INBOX")
        other.uid("STORE", "3", "+FLAGS", "(\\Deleted)")  # someone else's business


def commands(caplog) -> str:
    """The IMAP commands sent, from IMAPClient's protocol log (LOGIN redacted)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.getMessage().startswith(">"))


def test_move_uses_move(imap_account, caplog):
    caplog.set_level(logging.DEBUG, logger="imapclient")
    move_setup(imap_account)
    with ImapSession.open(server_for(imap_account)) as session:
        session.ensure_folder("dmarc/processed")
        session.select("INBOX", readonly=False)
        session.move(1, "dmarc/processed")
        assert session.uids() == [2]
    assert "UID MOVE 1 " in commands(caplog) and "COPY" not in commands(caplog)
    assert [m.uid for m in imap_account.messages()] == [2, 3]
    [moved] = imap_account.messages("dmarc/processed")
    assert moved.data.endswith(mail("one"))


@pytest.mark.parametrize("how", ["force_copy", "disable_move"])
def test_move_by_copy_expunges_only_that_message(how, dovecot, dovecot_with, settings, caplog):
    caplog.set_level(logging.DEBUG, logger="imapclient")
    server = dovecot_with(disable_move=True) if how == "disable_move" else dovecot
    settings.MAILSEC_TLS_CA_FILE = str(server.ca_file)
    account = new_account(server)
    move_setup(account)
    with ImapSession.open(server_for(account), force_copy=how == "force_copy") as session:
        assert ("MOVE" in session.capabilities) is (how == "force_copy")
        session.ensure_folder("dmarc/processed")
        session.select("INBOX", readonly=False)
        session.move(1, "dmarc/processed")
        assert session.uids() == [2]
    sent = commands(caplog)
    assert "UID COPY 1 " in sent and "UID EXPUNGE 1" in sent and "MOVE" not in sent
    # The message someone else flagged \Deleted is still there: only UID 1 was expunged.
    assert [m.uid for m in account.messages()] == [2, 3]
    [moved] = account.messages("dmarc/processed")
    assert moved.data.endswith(mail("one")) and "\\Deleted" not in moved.flags


def test_move_without_move_or_uidplus_expunges_the_folder(dovecot_with, settings):
    """The documented limitation: plain EXPUNGE also removes others' \\Deleted messages."""
    server = dovecot_with(disable_move=True, disable_uidplus=True, separator=".")
    settings.MAILSEC_TLS_CA_FILE = str(server.ca_file)
    account = new_account(server)
    move_setup(account)
    with ImapSession.open(server_for(account)) as session:
        assert not {"MOVE", "UIDPLUS"} & session.capabilities
        session.ensure_folder("dmarc/processed")
        session.select("INBOX", readonly=False)
        session.move(1, "dmarc/processed")
    assert [m.uid for m in account.messages()] == [2]
    assert [m.data for m in account.messages("dmarc.processed")] == [mail("one")]


@pytest.mark.parametrize("force_copy", [False, True])
def test_move_to_a_missing_folder(imap_account, force_copy):
    imap_account.deliver(mail("one"))
    with ImapSession.open(server_for(imap_account), force_copy=force_copy) as session:
        session.select("INBOX", readonly=False)
        with pytest.raises(MailboxError) as caught:
            session.move(1, "dmarc/nowhere")
    assert caught.value.stage == "folder"
    assert str(caught.value).startswith("message UID 1 cannot be moved to dmarc/nowhere: ")
    assert [m.uid for m in imap_account.messages()] == [1]


def test_dropped_connection(imap_account):
    imap_account.deliver(mail("one"))
    session = ImapSession.open(server_for(imap_account))
    session.select("INBOX", readonly=True)
    assert imap_account.server.kick(imap_account.user)
    # doveadm kick only signals the IMAP process: wait until it is gone, or the next command
    # may still be answered by the dying process.
    deadline = time.monotonic() + 5
    while imap_account.server.imap_pids(imap_account.user) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not imap_account.server.imap_pids(imap_account.user)
    with pytest.raises(MailboxError) as caught:
        session.uids()
    assert caught.value.stage == "protocol"
    assert "connection to 127.0.0.1 lost" in str(caught.value)
    with pytest.raises(MailboxError) as caught:
        session.fetch([1])
    assert caught.value.stage == "protocol"
    session.close()
    session.close()


def test_server_that_stops_answering(imap_account):
    imap_account.deliver(mail("one"))
    with ImapSession.open(server_for(imap_account, timeout=0.5)) as session:
        session.select("INBOX", readonly=True)
        with imap_account.server.paused(imap_account.user), pytest.raises(MailboxError) as caught:
            session.fetch([1])
    assert caught.value.stage == "timeout"
    assert str(caught.value) == "127.0.0.1 did not answer UID FETCH within 0.5 s"


# --- settings and secrets ---------------------------------------------------------------------


def test_server_settings_of_a_mailbox():
    box = Mailbox(
        host="imap.example.org",
        port=143,
        tls_mode="starttls",
        username="dmarc@example.org",
        allow_plaintext=False,
    )
    server = ServerSettings.of(box, "hunter2-secret")
    assert server == ServerSettings(
        "imap.example.org", 143, "starttls", "dmarc@example.org", "hunter2-secret"
    )
    assert server.timeout == 30.0
    assert "hunter2-secret" not in repr(server)


def test_password_never_in_errors_or_log(imap_account, dovecot_with, settings, caplog):
    caplog.set_level(logging.DEBUG)
    messages = []
    with ImapSession.open(server_for(imap_account, "starttls")) as session:
        session.select("INBOX", readonly=True)
    wrong = server_for(imap_account)
    wrong.password = "wrong-" + uuid.uuid4().hex
    messages.append(str(failure(wrong)))
    messages.append(str(failure(server_for(imap_account, "plain"))))
    untrusted = dovecot_with(wrong_cert=True)
    settings.MAILSEC_TLS_CA_FILE = str(untrusted.ca_file)
    messages.append(str(failure(server_for(new_account(untrusted)))))
    steps = mailbox.test_connection(wrong, ["INBOX"], read_only=True)
    messages += [step.detail for step in steps]
    assert "LOGIN" in caplog.text  # the log did see the logins ...
    for secret in (imap_account.password, wrong.password):
        assert all(secret not in message for message in messages)
        assert secret not in caplog.text  # ... but never a password


# --- test_connection --------------------------------------------------------------------------


def test_connection_steps_all_good(imap_account):
    imap_account.deliver(mail("one"))
    imap_account.server.create_folder(imap_account.user, "dmarc/processed")
    steps = mailbox.test_connection(
        server_for(imap_account, "starttls"),
        ["INBOX", "dmarc/processed", "dmarc/invalid", ""],
        read_only=False,
    )
    assert [(s.name, s.ok) for s in steps] == [
        ("DNS", True),
        ("TCP", True),
        ("TLS", True),
        ("Login", True),
        ("Folder INBOX", True),
        ("Folder dmarc/processed", True),
        ("Folder dmarc/invalid", True),
    ]
    details = {s.name: s.detail for s in steps}
    assert details["DNS"] == "an IP address, no DNS lookup"
    assert details["TCP"] == f"connected to 127.0.0.1 port {imap_account.server.imap_port}"
    assert (
        details["TLS"].startswith("TLSv1.") and "certificate valid for 127.0.0.1" in details["TLS"]
    )
    assert details["Login"] == f"logged in as {imap_account.user}"
    assert details["Folder INBOX"].startswith("1 message (UIDVALIDITY ")  # singular: issue 14
    assert details["Folder dmarc/processed"] == "exists"
    assert details["Folder dmarc/invalid"] == "created"
    assert "dmarc/invalid" in imap_account.folders()


def test_connection_steps_read_only_creates_nothing(imap_account, knot, settings):
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    steps = mailbox.test_connection(
        server_for(imap_account, host=DNS_NAME), ["INBOX", "dmarc/processed"], read_only=True
    )
    assert all(step.ok for step in steps)
    assert steps[0] == Step("DNS", True, f"{DNS_NAME} has 127.0.0.1")
    assert steps[-1] == Step(
        "Folder dmarc/processed", True, "does not exist; not needed in read-only mode"
    )
    assert imap_account.folders() == {"INBOX"}


def failing_settings(case, account, servers, settings, knot, silent_port) -> ServerSettings:
    settings.MAILSEC_DNS_NAMESERVERS = [(knot.host, knot.port)]
    if case == "refused-plaintext":
        return server_for(account, "plain")
    if case == "dns":
        return server_for(account, host="no-such-imap.test")
    if case == "refused-private":
        settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
        return server_for(account)
    if case == "tcp":
        return ServerSettings("127.0.0.1", free_port(), "implicit", account.user, "x")
    if case == "certificate":
        untrusted = servers(wrong_cert=True)
        settings.MAILSEC_TLS_CA_FILE = str(untrusted.ca_file)
        return server_for(new_account(untrusted))
    if case == "tls":
        return server_for(new_account(servers(tls=False)), "starttls")
    if case == "timeout":
        return ServerSettings("127.0.0.1", silent_port, "implicit", account.user, "x", timeout=0.3)
    wrong = server_for(account)
    wrong.password = "wrong"
    return wrong


@pytest.mark.parametrize(
    ("case", "failed_step", "stage"),
    [
        ("refused-plaintext", "TLS", "refused"),
        ("dns", "DNS", "dns"),
        ("refused-private", "DNS", "refused"),
        ("tcp", "TCP", "tcp"),
        ("certificate", "TLS", "certificate"),
        ("tls", "TLS", "tls"),
        ("timeout", "TLS", "timeout"),
        ("login", "Login", "login"),
    ],
)
def test_connection_stops_at_the_first_failure(
    case, failed_step, stage, imap_account, dovecot_with, settings, knot, silent_port
):
    server = failing_settings(case, imap_account, dovecot_with, settings, knot, silent_port)
    steps = mailbox.test_connection(server, ["INBOX", "dmarc/processed"], read_only=False)
    *passed, last = steps
    assert all(step.ok for step in passed)
    assert (last.name, last.ok, last.stage) == (failed_step, False, stage)
    assert last.detail
    order = ["TLS"] if case == "refused-plaintext" else ["DNS", "TCP", "TLS", "Login"]
    assert [step.name for step in steps] == order[: order.index(failed_step) + 1]


def test_connection_missing_source_folder(imap_account):
    steps = mailbox.test_connection(
        server_for(imap_account), ["reports", "dmarc/processed"], read_only=False
    )
    assert [s.ok for s in steps] == [True, True, True, True, False]
    assert steps[-1].name == "Folder reports" and steps[-1].stage == "folder"
    assert steps[-1].detail.startswith("folder reports cannot be opened: ")
    assert imap_account.folders() == {"INBOX"}  # stopped before creating anything


def test_connection_folder_that_cannot_be_created(imap_account):
    long_name = "dmarc/" + "x" * 300
    steps = mailbox.test_connection(server_for(imap_account), ["INBOX", long_name], read_only=False)
    assert [s.ok for s in steps] == [True, True, True, True, True, False]
    assert steps[-1].stage == "folder"
    assert " cannot be created: " in steps[-1].detail
