"""The probes' own sentences in the reader's language (issue 18): stored in English as the
probes wrote them (ProbeResult, server summaries, JSON), read back as Messages whose English is
the stored text byte for byte and whose French is French; the library's or server's own words
inside stay as they are. Also the domain-name errors, the refused-address sentences, the
Check-now rate limit and the resolver's problem, English for the CLI and API."""

import pytest
from django.utils import translation

from domains.checks.mailservers import AccessHostError, dane_untested, parse_access_host
from domains.findings import localized
from domains.messages import Message, msg
from domains.names import DomainNameError, normalize_domain, normalize_selector
from domains.net import refusal_reason, refusal_sentence
from domains.probes.protocols import Imap, Pop3, Smtp
from domains.probes.wording import dane_worded, void_worded, worded
from domains.scheduling import RateLimited
from tests.domains.test_french import APOS, NBSP, french
from tests.domains.test_probe_verdicts import cert, probe, run

RELAY = "RCPT TO:<probe@example.invalid> answered 250 2.1.5 Ok"


def french_of(message) -> str:
    with translation.override("fr"):
        return message.render()


def test_the_probes_sentences_read_back_byte_for_byte():
    stored = [
        Smtp.plaintext_login(["PIPELINING", "AUTH PLAIN LOGIN"]),
        Imap.plaintext_login(["IMAP4rev1", "AUTH=PLAIN"]),
        Pop3.plaintext_login(["USER", "UIDL"]),
        "no STLS offered: any login crosses the network in the clear",
        RELAY,
        f"{RELAY} (without TLS, which failed)",
        "not tested: connection refused",
        "could not look up the PTR or its names: PTR 1.2.0.192.in-addr.arpa: timeout",
        "TLS is offered but refused: 454 4.7.0 TLS not available",
    ]
    for text in stored:
        message = worded(text)
        assert isinstance(message, Message), text
        assert message.english() == text
        assert french_of(message) != text
    assert french_of(worded(stored[0])) == "EHLO avant TLS annonce AUTH PLAIN LOGIN"
    assert french_of(worded(stored[5])) == (
        "RCPT TO:<probe@example.invalid> a reçu la réponse 250 2.1.5 Ok (sans TLS, qui a échoué)"
    )
    # A server's reply or a library's reason is data: not recognised, shown as it is.
    assert worded("250 2.1.5 Ok") == "250 2.1.5 Ok"


def test_a_dane_mismatch_reads_in_french_line_by_line():
    stored = (
        "_25._tcp.mx.example.com: 3 1 1 abcd (DANE-EE): matches no certificate served; "
        "2 0 1 ef01: matches certificate 1, not linked to the leaf"
    )
    message = dane_worded(stored)
    assert message.english() == stored
    assert french_of(message) == (
        f"_25._tcp.mx.example.com{NBSP}: 3 1 1 abcd (DANE-EE){NBSP}: ne correspond à aucun "
        f"certificat servi; 2 0 1 ef01{NBSP}: correspond au certificat 1, non relié au "
        "certificat final"
    )
    assert dane_worded("something else: entirely") == "something else: entirely"


def test_an_open_relay_finding_in_french_keeps_its_english_stored():
    result = run([probe(open_relay=True, relay_evidence=RELAY)])
    (relay,) = [f for f in result.findings if f.id == "smtp.open_relay"]
    assert RELAY in relay.detail  # the stored English, as before
    with translation.override("fr"):
        detail = localized(relay, "example.com").detail
    assert "RCPT TO:<probe@example.invalid> a reçu la réponse 250 2.1.5 Ok" in detail
    assert "answered" not in detail


def test_an_untrusted_chain_names_its_reason_in_french():
    reason = "the certificate names no host in subjectAltName (RFC 5280, RFC 6125)"
    result = run([probe(certificate=cert(trusted=False, error=reason))])
    (untrusted,) = [f for f in result.findings if reason in f.detail]
    with translation.override("fr"):
        detail = localized(untrusted, "example.com").detail
    assert "le certificat ne nomme aucun hôte dans subjectAltName" in detail


def test_name_errors_english_for_the_cli_french_for_the_page(alice, acme_domain):
    try:
        normalize_domain("https://new.example/")
    except DomainNameError as exc:
        error = exc
    with translation.override("en"):
        assert error.messages == ["Enter a bare domain name such as example.com, not a URL."]
    with translation.override("fr"):
        assert error.messages == [
            "Saisissez un simple nom de domaine, comme example.com, pas une URL."
        ]
    try:
        normalize_selector("s1._domainkey")
    except DomainNameError as exc:
        with translation.override("fr"):
            assert exc.messages == [
                f"'s1._domainkey'{NBSP}: indiquez le sélecteur seul, sans ._domainkey."
            ]
    page = french(alice).post("/domains/add/", {"names": "new.example\nlocalhost"})
    text = page.content.decode()
    assert f"localhost n{APOS}est pas un domaine de messagerie sur Internet." in text
    assert "is not a mail domain" not in text


def test_refused_addresses_in_whole_sentences():
    assert refusal_reason("10.0.0.1") == "private"
    with translation.override("en"):
        assert refusal_sentence("private") == "mailsec does not connect to private addresses."
        assert refusal_sentence("private", sending=True) == (
            "mailsec does not send to private addresses."
        )
    with translation.override("fr"):
        assert refusal_sentence("loopback", sending=True) == (
            f"mailsec n{APOS}envoie rien aux adresses de bouclage (loopback)."
        )
        wrapped = refusal_reason("2002:a00:1::1")  # 6to4 of 10.0.0.1
        assert refusal_sentence(wrapped) == (
            "mailsec ne se connecte pas aux adresses privées. "
            "Cette adresse est la forme 6to4 de 10.0.0.1."
        )


def test_the_rate_limit_english_for_the_api_french_for_the_page():
    limited = RateLimited(
        msg("%(domain)s was checked less than a minute ago.", domain="acme.example")
    )
    assert str(limited) == "acme.example was checked less than a minute ago."
    assert french_of(limited.message) == (
        f"acme.example a été vérifié il y a moins d{APOS}une minute."
    )


def test_what_a_failed_optional_lookup_voids_reads_in_french():
    stored = dane_untested("mx.example.com", 25)
    message = void_worded(stored)
    assert message.english() == stored
    assert french_of(message) == "DANE de mx.example.com:25 non testé"
    assert void_worded("something the checks never say") == "something the checks never say"


def test_a_mail_access_host_refused_in_french():
    with translation.override("fr"), pytest.raises(AccessHostError) as refused:
        parse_access_host("mail.example.com:2525")
    assert str(refused.value).startswith(f"«{NBSP}mail.example.com:2525{NBSP}»{NBSP}: le port 2525")
