"""Every finding kind as the domain page shows it (issue 14): its evidence and its fix read as
whole sentences, with no placeholder left, no doubled punctuation and no fragment cut off by an
example block ("the zone .. ." for the root, a lone "." line, "; a domain that sends no mail
publishes" starting a line).

The evidence is what the checks say: the DNS checks run against the test zones (knot), and for
the kinds those zones cannot produce (probes, MTA-STS, DANE, DNSSEC) evidence is written here in
the form the checks build it."""

import re

import pytest
from lxml import html as lxml_html

from domains.dns import DnsSession
from domains.engine import check_domain
from domains.findings import CATALOGUE, KINDS, finding
from domains.models import Domain
from domains.pages import split_fix
from tests.conftest import client_for
from tests.domains.dns_world import test_zone as dns_world_zone
from tests.domains.test_pages import add_run

DNS_CATEGORIES = ["mx", "spf", "dmarc", "dkim", "tls_rpt", "bimi", "dnssec"]
MX = "mx1.acme.example"
AT = f"{MX} (192.0.2.25) port 25"

# Evidence in the form the checks build it, for kinds the test zones do not produce.
WRITTEN = {
    "dmarc.inherited": "No record at _dmarc.mail.acme.example: the policy of _dmarc.acme.example "
    "applies (v=DMARC1; p=reject; rua=mailto:d@acme.example).",
    "mta_sts.missing": "No v=STSv1 TXT record at _mta-sts.acme.example.",
    "mta_sts.record_invalid": "_mta-sts.acme.example: v=STSv1; id=2024-01-01 (id must be 1 to 32 "
    "letters or digits).",
    "mta_sts.policy_unreachable": "https://mta-sts.acme.example/.well-known/mta-sts.txt: "
    "connection refused.",
    "mta_sts.policy_invalid": "https://mta-sts.acme.example/.well-known/mta-sts.txt: Line 1: Not "
    "a key: value pair.",
    "mta_sts.mode_testing": "mode: testing",
    "mta_sts.mode_none": "mode: none",
    "mta_sts.max_age_short": "max_age: 3600 (1 hour), less than a week (604800).",
    "mta_sts.mx_mismatch": "MX mx2.acme.example not matched by the policy's mx: mx1.acme.example.",
    "mta_sts.mx_cert_invalid": f"{AT}: the certificate names mail.other.example, not {MX}",
    "dnssec.unsigned": "acme.example is not protected by DNSSEC. The chain of trust ends at "
    "acme.example: its parent zone example is signed but has no DS record for it (a delegation "
    "to an unsigned zone).",
    "dnssec.mx_unsigned": "MX host mx1.acme.example: not protected by DNSSEC. The chain of trust "
    "ends at acme.example: its parent zone example is signed but has no DS record for it.",
    # As dnssec.py words a failure at the root: a trust anchor that matches no root key.
    # "the zone ." before a full stop would read as a typo: the root zone is named in words.
    "dnssec.bogus": "acme.example fails DNSSEC validation in the root zone. The DNSKEY "
    "RRset of . matches no DS of the configured trust anchor.",
    "dnssec.mx_bogus": "MX host mx1.acme.example: DNSSEC validation fails in "
    "the zone acme.example. The SOA RRset of acme.example is not validly signed by the "
    "zone's keys: the signature expired on 2024-03-01.",
    "dane.missing": f"No TLSA record at _25._tcp.{MX}.",
    "dane.without_dnssec": f"_25._tcp.{MX} TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7c"
    "b23e5b514b56664c5d3d6 is published in an unsigned zone.",
    "dane.bad_parameters": f"_25._tcp.{MX} TLSA 1 0 0 3082...: usage 1 (PKIX-EE) is not meant "
    "for SMTP.",
    "dane.mismatch": f"{AT}: no TLSA record of _25._tcp.{MX} matches the chain served "
    "(3 1 1 0c72ac70...).",
    "smtp.open_relay": f"{AT}: RCPT TO:<relay-test@example.net> from <> was accepted (250 2.1.5 "
    "Ok)",
    "smtp.banner_mismatch": f"{AT}: the server calls itself localhost, the address's PTR is "
    "mx1.acme.example",
    "probe.not_tested": "Port 25 could not be reached from this machine: every MX host timed out, "
    "as when the hosting network blocks outbound port 25.",
    "dns.resolver_broken": "The resolver at 127.0.0.53 answered a name that does not exist "
    "(mailsec-canary.invalid) with an address: it rewrites answers.",
}
for _service, _port in (("smtp", 25), ("submission", 587), ("imap", 993), ("pop3", 995)):
    _at = f"{MX} (192.0.2.25) port {_port}"
    WRITTEN |= {
        f"{_service}.unreachable": f"{_at}: connection timed out after 10 s",
        f"{_service}.tls_missing": f"{_at}: the TLS handshake failed (certificate verify failed)",
        f"{_service}.plaintext_auth": f"{_at}: AUTH PLAIN LOGIN offered before STARTTLS",
        f"{_service}.tls_outdated": f"{_at}: accepts TLSv1, TLSv1.1",
        f"{_service}.cert_untrusted": f"{_at}: CN={MX} issued by CN={MX} (self-signed certificate)",
        f"{_service}.cert_name_mismatch": f"{_at}: the certificate names mail.other.example, "
        f"not {MX}",
        f"{_service}.cert_expired": f"{_at}: CN={MX} expired on 2024-03-01",
        f"{_service}.cert_expiring": f"{_at}: CN={MX} expires on 2024-03-01",
        f"{_service}.no_hosts": f"No {_service} host published for acme.example (no SRV record, "
        "no mail access hosts set).",
    }

PLACEHOLDER = re.compile(r"(?<!%)\{[^{}]*\}")  # "%{p}" is an SPF macro, quoted on purpose
DOUBLED = re.compile(r"\.\.(?!\.)|(?<!\.)\.\.\.\.|\. \.(?! [A-Z])|,,|;;|::")
ORPHAN_START = re.compile(r"^[.;,:)]")
ONLY_PUNCTUATION = re.compile(r"^[\W_]+$")


def _zone_names() -> list[str]:
    names = set()
    for line in dns_world_zone().splitlines():
        owner = line.split()[0] if line.split() else ""
        if owner.endswith(".test.") and owner.count(".") == 2:
            names.add(owner.rstrip("."))
    return sorted(names)


@pytest.fixture(scope="module")
def checked_evidence(knot) -> dict[str, str]:
    """The first evidence the DNS checks give for each kind, over every test zone."""
    session = DnsSession([(knot.host, knot.port)])
    evidence: dict[str, str] = {}
    for name in _zone_names():
        for f in check_domain(name, categories=DNS_CATEGORIES, session=session).findings:
            evidence.setdefault(f.id, f.detail)
    return evidence


def _problems(text: str) -> list[str]:
    found = []
    if PLACEHOLDER.search(text):
        found.append("placeholder left")
    if re.search(r"\bNone\b", text):
        found.append('"None"')
    if DOUBLED.search(text.replace("...", "\u2026")):
        found.append("doubled punctuation")
    return found


def _lines(fix) -> list[str]:
    """The fix as the reader sees it: the text between example blocks, one line each."""
    lines, line = [], []
    for node in fix.iterchildren():
        if node.tag == "span" and "example" in node.get("class", ""):
            lines.append("".join(line))
            line = [node.tail or ""]
        else:
            line.append(lxml_html.tostring(node, method="text", encoding="unicode"))
    lines.append("".join(line))
    first = (fix.text or "") + lines[0]
    return [first.strip().removeprefix("Fix:").strip(), *(s.strip() for s in lines[1:])]


def test_every_kind_has_evidence_to_render(checked_evidence):
    missing = [k.id for k in KINDS if k.id not in checked_evidence and k.id not in WRITTEN]
    assert missing == []


def test_every_finding_reads_as_whole_sentences(alice, acme, checked_evidence):
    domain = Domain.objects.create(organization=acme, name="acme.example")
    made = [
        finding(k.id, checked_evidence.get(k.id) or WRITTEN[k.id], domain=domain.name)
        for k in KINDS
    ]
    rows = [(f.id, str(f.severity), f.title, f.detail, f.remediation) for f in made]
    run = add_run(domain, score=40, grade="F", findings=rows)
    page = client_for(alice).get(f"/domains/{domain.pk}/").content.decode()
    tree = lxml_html.fromstring(page)
    articles = {a.get("id"): a for a in tree.xpath('//article[@class="finding"]')}
    assert len(articles) == len(KINDS)
    problems = []
    for stored in run.findings.all():
        article = articles[f"finding-{stored.pk}"]
        evidence = (
            article.xpath('.//p[@class="evidence"]')[0].text_content().removeprefix("Evidence:")
        )
        evidence = evidence.strip()
        problems += [f"{stored.kind} evidence: {p}: {evidence}" for p in _problems(evidence)]
        if not evidence.endswith((".", "?", "!", ".)")):
            problems.append(f"{stored.kind} evidence does not end a sentence: {evidence}")
        fix = article.xpath('.//div[@class="fix"]')[0]
        text = fix.text_content()
        problems += [f"{stored.kind} fix: {p}: {text}" for p in _problems(text)]
        for number, line in enumerate(_lines(fix)):
            if number and line and not (line[0].isupper() or line[0] == "`"):
                problems.append(f"{stored.kind} fix: a line after a block starts mid-sentence: "
                                f"{line!r}")  # fmt: skip
            if ORPHAN_START.match(line) or (line and ONLY_PUNCTUATION.match(line)):
                problems.append(f"{stored.kind} fix: orphan fragment {line!r}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("kind", sorted(CATALOGUE))
def test_an_example_block_ends_its_sentence(kind):
    """In the catalogue itself: a block is introduced by a colon, and what follows it starts
    a sentence of its own (or nothing follows)."""
    parts = split_fix(CATALOGUE[kind].fix("acme.example", english=True))
    for index, (part_kind, _) in enumerate(parts):
        if part_kind == "record" and index + 1 < len(parts):
            following = parts[index + 1][1].strip()
            assert not following or following[0].isupper(), (kind, following)
