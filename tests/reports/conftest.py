"""Real dovecot IMAP servers for the mailbox tests (tests/dovecot.py), and a fresh account per
test so that no test sees another's mail."""

import uuid
from dataclasses import dataclass

import pytest

from tests.dovecot import DovecotServer, StoredMessage

# The tests' knot (tests/conftest.py) resolves ns.test to 127.0.0.1: with it in the
# certificate, a session can go through DNS to dovecot by name.
DNS_NAME = "ns.test"


@dataclass
class ImapAccount:
    server: DovecotServer
    user: str
    password: str

    def deliver(self, message: bytes, folder: str = "INBOX") -> None:
        self.server.deliver(self.user, message, folder)

    def messages(self, folder: str = "INBOX") -> list[StoredMessage]:
        return self.server.messages(self.user, folder)

    def folders(self) -> set[str]:
        return self.server.folders(self.user)


def new_account(server: DovecotServer) -> ImapAccount:
    account = ImapAccount(server, f"dmarc-{uuid.uuid4().hex[:12]}@example.test", uuid.uuid4().hex)
    server.add_user(account.user, account.password)
    return account


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory):
    """dovecot with "/" as its folder separator, MOVE and UIDPLUS; POP3 too, on the same
    mail (pop3_port: STLS or plaintext, pop3s_port: implicit TLS)."""
    with DovecotServer(
        tmp_path_factory.mktemp("dovecot"), hostnames=("localhost", DNS_NAME), pop3=True
    ) as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_dots(tmp_path_factory):
    """dovecot with "." as its folder separator; its certificate does not name ns.test."""
    with DovecotServer(tmp_path_factory.mktemp("dovecot-dots"), separator=".") as server:
        yield server


@pytest.fixture
def imap_account(dovecot, settings) -> ImapAccount:
    """A fresh account on `dovecot`, whose CA mailsec trusts for this test."""
    settings.MAILSEC_TLS_CA_FILE = str(dovecot.ca_file)
    return new_account(dovecot)


@pytest.fixture
def dots_account(dovecot_dots, settings) -> ImapAccount:
    settings.MAILSEC_TLS_CA_FILE = str(dovecot_dots.ca_file)
    return new_account(dovecot_dots)


@pytest.fixture(scope="session")
def dovecot_with(tmp_path_factory):
    """dovecot_with(**options) -> a running DovecotServer with those options (as
    DovecotServer's), started on first use and shared by the session: tests take fresh
    accounts on it (new_account). Stopping one takes dovecot ~1 s, so they stop together."""
    servers: dict[tuple, DovecotServer] = {}

    def get(**options) -> DovecotServer:
        key = tuple(sorted(options.items()))
        if key not in servers:
            server = DovecotServer(tmp_path_factory.mktemp("dovecot-variant"), **options)
            server.start()
            servers[key] = server
        return servers[key]

    yield get
    for server in servers.values():
        server.process.terminate()
    for server in servers.values():
        server.stop()
