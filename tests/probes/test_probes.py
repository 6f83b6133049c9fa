"""One probe against each real server of the mail lab (tests/mailservers.py): Postfix, dovecot,
a tarpit, a refusing host and one that drops connection attempts."""

import datetime
import time

import pytest

from domains.probes.probe import Timeouts, probe
from domains.probes.results import Reach, Service, Target, TlsMode

FAST = Timeouts(connect=1, greeting=1, command=5)
MODERN = ["TLSv1.2", "TLSv1.3"]


@pytest.fixture
def run(lab_trust, lab_dns):
    def run(name: str, **target_changes):
        target = lab_trust.endpoints[name].target()
        for attribute, value in target_changes.items():
            setattr(target, attribute, value)
        return probe(target, lab_dns, FAST)

    return run


# --- SMTP (Postfix) ---------------------------------------------------------------------------


def test_smtp_with_starttls_and_a_good_certificate(run):
    result = run("good")
    assert result.reach is Reach.OK and result.error == ""
    assert result.greeting.startswith("220 mx-good.probes.test ESMTP")
    assert result.starttls_offered is True
    assert "STARTTLS" in result.capabilities_plain
    assert result.capabilities_tls and "STARTTLS" not in result.capabilities_tls
    tls = result.tls
    assert tls.ok and tls.version == "TLSv1.3" and tls.cipher
    assert tls.accepted_versions == MODERN
    assert tls.refused_versions == ["TLSv1", "TLSv1.1"]
    cert = tls.certificate
    assert cert.trusted and cert.trust_error == ""
    assert cert.name_matches and cert.names == ["mx-good.probes.test"]
    assert cert.subject == "CN=mx-good.probes.test" and cert.issuer == "CN=mailsec lab CA"
    assert (cert.key_type, cert.key_bits, cert.signature_hash) == ("EC", 256, "sha256")
    assert len(cert.chain_der_hex) == 2  # Postfix sends the CA too
    assert datetime.datetime.fromisoformat(cert.not_after) > datetime.datetime.now(datetime.UTC)
    assert result.plaintext_auth is False
    assert result.open_relay is False
    assert "454" in result.relay_evidence and "Relay access denied" in result.relay_evidence
    assert result.ehlo_name == "mx-good.probes.test"
    assert result.ptr_names == ["mx-good.probes.test"] and result.fcrdns is True
    assert result.connections == 4  # the conversation (TLS 1.3), then 1.0, 1.1, 1.2 on their own


def test_smtp_without_tls(run):
    result = run("plain")
    assert result.reach is Reach.OK
    assert result.starttls_offered is False and result.tls is None
    assert result.capabilities_tls == []
    assert result.plaintext_auth is False  # port 25 without AUTH exposes no password
    assert result.open_relay is False
    assert result.ptr_names == [] and result.fcrdns is False  # no PTR at all


def test_expired_certificate_is_reported_expired_not_untrusted(run):
    cert = run("expired").tls.certificate
    assert datetime.datetime.fromisoformat(cert.not_after) < datetime.datetime.now(datetime.UTC)
    assert cert.trusted is True and cert.name_matches is True


def test_certificate_for_another_name(run):
    cert = run("wrongname").tls.certificate
    assert cert.names == ["other-name.example.test"]
    assert cert.name_matches is False and cert.trusted is True


def test_certificate_of_an_unknown_ca(run):
    cert = run("untrusted").tls.certificate
    assert cert.trusted is False and cert.trust_error
    assert cert.issuer == "CN=mailsec rogue CA" and cert.name_matches is True


def test_system_store_does_not_trust_the_lab(run, settings):
    settings.MAILSEC_TLS_CA_FILE = None
    cert = run("good").tls.certificate
    assert cert.trusted is False and cert.trust_error


def test_open_relay(run):
    result = run("relay")
    assert result.open_relay is True
    assert result.relay_evidence.startswith("RCPT TO:<mailsec-probe@example.invalid> answered 250")
    # its PTR names a host without an address: no forward confirmation
    assert result.ptr_names == ["not-forward.probes.test"] and result.fcrdns is False


def test_relay_probe_sends_no_data_and_no_login(run, mail_lab):
    """What Postfix itself counted: its log's "disconnect" line lists every command by name."""
    log = mail_lab.postfix.log_path
    start = len(log.read_bytes())
    run("relay")
    deadline = time.monotonic() + 5
    while True:
        lines = log.read_bytes()[start:].decode(errors="replace").splitlines()
        ends = [
            line
            for line in lines
            if " mx-relay postfix/smtpd" in line
            and "disconnect" in line
            and "commands=0/0" not in line  # the lab's readiness checks at its start
        ]
        if len(ends) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(ends) == 4  # the conversation, and TLS 1.0, 1.1, 1.2 tried one by one
    conversation = [line for line in ends if "rcpt=" in line]
    assert len(conversation) == 1
    assert "ehlo=2 starttls=1 mail=1 rcpt=1 rset=1 quit=1 commands=7" in conversation[0]
    assert not any("data=" in line or "auth=" in line for line in ends)


def test_old_tls_versions_each_tried_with_its_own_handshake(run):
    tls = run("tls10").tls
    assert tls.accepted_versions == ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert tls.refused_versions == [] and tls.untested_versions == {}


def test_banner_name_against_ptr(run):
    result = run("banner")
    assert result.greeting == "220 mail.elsewhere.test ESMTP"
    assert result.ehlo_name == "mail.elsewhere.test"
    assert result.ptr_names == ["mx-banner.probes.test"] and result.fcrdns is True


def test_submission_offers_auth_only_after_starttls(run):
    result = run("good-submission")
    assert result.target.port == 587 and result.starttls_offered
    assert not any(c.startswith("AUTH") for c in result.capabilities_plain)
    assert "AUTH PLAIN LOGIN" in result.capabilities_tls
    assert result.plaintext_auth is False
    assert result.open_relay is None and result.relay_evidence == ""  # port 25 only
    assert result.ptr_names == [] and result.fcrdns is None  # PTR is looked at for SMTP only


def test_submission_with_auth_before_starttls(run):
    result = run("authplain")
    assert result.plaintext_auth is True
    assert result.plaintext_auth_evidence == "EHLO before TLS lists AUTH PLAIN LOGIN"


def test_submission_without_tls_at_all(run):
    result = run("submission-notls")
    assert result.tls is None and result.starttls_offered is False
    assert result.plaintext_auth is True


def test_implicit_tls_submission(run):
    result = run("good-submissions")
    assert result.reach is Reach.OK and result.target.port == 465
    assert result.starttls_offered is None and result.capabilities_plain == []
    assert result.greeting.startswith("220 mx-good.probes.test")
    assert "AUTH PLAIN LOGIN" in result.capabilities_tls
    assert result.tls.ok and result.tls.accepted_versions == MODERN
    assert result.tls.certificate.trusted and result.plaintext_auth is False


def test_implicit_tls_where_the_server_speaks_plaintext(run):
    result = run("good", tls_mode=TlsMode.IMPLICIT)
    assert result.reach is Reach.TLS_FAILED
    assert result.tls.ok is False and "TLS with 127.0.30.1 port 25 failed" in result.error
    assert result.greeting == ""


# --- IMAP and POP3 (dovecot) ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["imap-secure", "pop3-secure"])
def test_starttls_and_no_login_before_it(run, name):
    result = run(name)
    assert result.reach is Reach.OK and result.starttls_offered is True
    assert result.tls.ok and result.tls.certificate.trusted
    assert result.tls.certificate.names == ["mail.probes.test"]
    assert result.tls.accepted_versions == MODERN
    assert result.plaintext_auth is False and result.plaintext_auth_evidence == ""
    assert result.open_relay is None


def test_imap_announces_logindisabled_before_tls_only(run):
    result = run("imap-secure")
    assert "LOGINDISABLED" in result.capabilities_plain
    assert "LOGINDISABLED" not in result.capabilities_tls
    assert "AUTH=PLAIN" in result.capabilities_tls
    assert result.greeting.startswith("* OK")


def test_pop3_lists_user_after_tls_only(run):
    result = run("pop3-secure")
    assert "USER" not in result.capabilities_plain and "STLS" in result.capabilities_plain
    assert "USER" in result.capabilities_tls
    assert result.greeting.startswith("+OK")


def test_imap_plaintext_login_allowed(run):
    result = run("imap-plain")
    assert result.tls.ok and result.plaintext_auth is True
    assert "LOGINDISABLED" in result.plaintext_auth_evidence


def test_pop3_plaintext_login_allowed(run):
    result = run("pop3-plain")
    assert result.plaintext_auth is True and "USER" in result.plaintext_auth_evidence


@pytest.mark.parametrize("name", ["imap-notls", "pop3-notls"])
def test_no_tls_at_all_on_a_login_port(run, name):
    result = run(name)
    assert result.reach is Reach.OK
    assert result.starttls_offered is False and result.tls is None
    assert result.plaintext_auth is True


@pytest.mark.parametrize("name", ["imaps-secure", "pop3s-secure", "imaps-plain"])
def test_implicit_tls_mail_access(run, name):
    result = run(name)
    assert result.reach is Reach.OK and result.starttls_offered is None
    assert result.capabilities_plain == [] and result.capabilities_tls
    assert result.tls.ok and result.tls.certificate.trusted
    assert result.plaintext_auth is False


def test_dovecot_accepting_tls_1_0(run):
    assert run("imaps-oldtls").tls.accepted_versions == [
        "TLSv1",
        "TLSv1.1",
        "TLSv1.2",
        "TLSv1.3",
    ]


def test_imap_certificate_checked_against_the_host_probed(run):
    cert = run("imaps-secure", host="mail.elsewhere.test").tls.certificate
    assert cert.name_matches is False and cert.trusted is True


# --- hosts that do not answer -----------------------------------------------------------------


def test_tarpit_costs_one_greeting_timeout(run, mail_lab):
    before = mail_lab.tarpit.connections
    result = run("tarpit")
    assert result.reach is Reach.NO_GREETING
    assert result.error == "connected, but no greeting within 1 s"
    assert 900 <= result.duration_ms < 2500
    assert result.tls is None and result.connections == 1
    assert mail_lab.tarpit.connections == before + 1


def test_refused_connection(run):
    result = run("refused")
    assert result.reach is Reach.REFUSED
    assert result.error == "127.0.32.2 port 25 refused the connection (nothing listens there)"
    assert result.duration_ms < 500 and result.connections == 0


def test_connection_attempt_without_answer_times_out(run):
    result = run("blackhole")
    assert result.reach is Reach.TIMEOUT
    assert result.error == "no TCP connection to 127.0.32.3 port 25 within 1 s"


def test_private_address_refused_without_a_connection(run, settings, mail_lab):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    before = mail_lab.tarpit.connections
    result = run("tarpit")
    assert result.reach is Reach.REFUSED_TARGET
    assert "127.0.32.1 is loopback" in result.error
    assert "MAILSEC_ALLOW_PRIVATE_TARGETS" in result.error
    assert result.duration_ms < 100 and result.connections == 0
    assert mail_lab.tarpit.connections == before


def test_private_address_refusal_covers_ipv4_mapped_ipv6(settings):
    settings.MAILSEC_ALLOW_PRIVATE_TARGETS = False
    target = Target("x.probes.test", "::ffff:10.0.0.1", 25, Service.SMTP, TlsMode.STARTTLS)
    result = probe(target, None, FAST)
    assert result.reach is Reach.REFUSED_TARGET and "private" in result.error


# --- servers that misbehave (tests/mailservers.py: Scripted) ----------------------------------


def test_refusal_greeting(run):
    result = run("refusing")
    assert result.reach is Reach.BAD_GREETING
    assert result.greeting == "554 5.7.1 no service for you"
    assert "554 5.7.1 no service for you" in result.error


def test_endless_line_is_cut(run):
    result = run("endless")
    assert result.reach is Reach.BAD_GREETING
    assert "sent a line longer than 4096 bytes" in result.error


def test_closed_before_greeting(run):
    result = run("hangup")
    assert result.reach is Reach.RESET
    assert result.error.startswith("closed before any greeting")


def test_closed_during_the_conversation(run):
    result = run("dropout")
    assert result.reach is Reach.RESET
    assert result.greeting == "220 dropout.probes.test ESMTP"
    assert "connection lost (closed by the server)" in result.error


def test_multiline_replies(run, mail_lab):
    server = next(s for s in mail_lab.scripted if s.greeting.startswith(b"220-multiline"))
    server.received.clear()
    result = run("multiline")
    assert result.reach is Reach.OK
    assert result.greeting == "220 multiline.probes.test ESMTP"
    assert result.capabilities_plain == ["AUTH LOGIN", "8BITMIME"]
    assert result.starttls_offered is False and result.tls is None
    assert result.plaintext_auth is True  # AUTH offered on port 25 without TLS
    assert result.open_relay is False and "550 5.7.1 relaying denied" in result.relay_evidence
    (said,) = server.received  # one connection: no TLS, so no handshake per version
    assert [line.split(" ")[0].split(":")[0] for line in said] == [
        "EHLO",
        "MAIL",
        "RCPT",
        "RSET",
        "QUIT",
    ]  # never AUTH, never DATA, though AUTH is offered and the sender was accepted


def test_ipv6_address(lab_trust):
    from tests.servers import free_port
    from tests.silent_servers import Tarpit

    tarpit = Tarpit("::1", free_port())
    try:
        target = Target("v6.probes.test", "::1", tarpit.port, Service.IMAP, TlsMode.IMPLICIT)
        result = probe(target, None, Timeouts(connect=1, greeting=1, command=1))
    finally:
        tarpit.stop()
    assert result.reach is Reach.TLS_FAILED and tarpit.connections == 1
    assert "no TLS handshake with ::1" in result.error
    assert result.duration_ms < 2000  # one timeout: no handshake per TLS version after it
    assert set(result.tls.untested_versions) == {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}


def test_starttls_offered_but_refused(run):
    result = run("tlsrefused")
    assert result.reach is Reach.OK and result.starttls_offered is True
    assert result.tls.ok is False
    assert result.tls.error == "TLS is offered but refused: 454 4.7.0 TLS not available"
    assert result.tls.accepted_versions == [] and len(result.tls.untested_versions) == 4
    assert result.connections == 1  # no handshake per version where TLS cannot start at all
    assert result.open_relay is False and "554 5.7.1" in result.relay_evidence


@pytest.mark.parametrize(
    "configured,machine,expected",
    [
        ("probe.mailsec.test", "vm", "EHLO probe.mailsec.test"),
        ("", "probe-host.example.test", "EHLO probe-host.example.test"),
        ("", "vm", "EHLO [127.0.0.1]"),  # a bare name: the address literal of our end instead
    ],
)
def test_ehlo_name(run, mail_lab, settings, monkeypatch, configured, machine, expected):
    settings.MAILSEC_PROBE_HELO_NAME = configured
    monkeypatch.setattr("domains.probes.probe.socket.gethostname", lambda: machine)
    server = next(s for s in mail_lab.scripted if s.greeting.startswith(b"220-multiline"))
    server.received.clear()
    run("multiline")
    assert server.received[0][0] == expected


def test_a_server_refusing_ehlo_is_asked_helo(run, mail_lab):
    server = next(s for s in mail_lab.scripted if s.greeting.startswith(b"220 heloonly"))
    server.received.clear()
    result = run("heloonly")
    assert result.reach is Reach.OK
    assert result.ehlo_refused == "502 5.5.2 Error: command not recognized"
    # HELO has no extensions: no STARTTLS (judged from HELO, not from the refused EHLO).
    assert result.capabilities_plain == [] and result.starttls_offered is False
    assert result.tls is None and result.plaintext_auth is False
    assert result.ehlo_name == "heloonly.probes.test"
    assert result.open_relay is False and "554 5.7.1" in result.relay_evidence
    (said,) = server.received
    assert [line.split(" ")[0].split(":")[0] for line in said] == [
        "EHLO", "HELO", "MAIL", "RCPT", "RSET", "QUIT",
    ]  # fmt: skip


def test_starttls_of_a_helo_only_server_is_judged_missing(run):
    from domains.checks.mailservers import Plan
    from domains.checks.verdicts import judge

    result = run("heloonly")
    plan = Plan(targets=[result.target], source="mx")
    now = datetime.datetime.now(datetime.UTC)
    found = judge(Service.SMTP, plan, {result.target.key: result}, {}, now)
    assert [f.id for f in found.findings] == ["smtp.tls_missing"]
    assert found.findings[0].detail == (
        "heloonly.probes.test (127.0.33.8) port 25: STARTTLS not offered (EHLO says: refused "
        "with 502 5.5.2 Error: command not recognized; HELO has no extensions)."
    )


def test_a_server_refusing_ehlo_and_helo_is_an_error(run):
    result = run("nohelo")
    assert result.reach is Reach.ERROR
    assert result.error == "EHLO answered 502 5.5.2 no, HELO answered 550 5.7.1 go away"


def test_an_answer_that_is_no_smtp(run):
    result = run("garbled")
    assert result.reach is Reach.ERROR
    assert result.greeting == "220 garbled.probes.test ESMTP"
    assert result.error == "not an SMTP reply: 'hello there'"
