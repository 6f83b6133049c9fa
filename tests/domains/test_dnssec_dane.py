"""The dnssec and dane checks against a real authoritative knot on loopback.

One knot serves every zone the cases need: the signed parent "test" (the trust anchor), signed,
unsigned, bogus (DS digest wrong) and broken (SERVFAIL) children, two zones signed here with
dnspython (knot serves them as they are) whose signatures are expired or do not verify, a zone
no trust anchor covers, and the reverse zone for the MX hosts' addresses.
"""

from datetime import UTC, datetime, timedelta

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from domains.checks.base import Severity, Status
from domains.checks.dnssec import Validator, Verdict
from domains.dns import DnsSession
from domains.engine import check_domain
from tests.knot import KnotServer

SOA = "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"
DIGEST = "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d"
DIGEST_512 = "ab" * 64

# name -> the last octet of its address in 127.0.0.0/8
HOSTS = {
    "mx.good.test": 11,
    "mx.mailhost.test": 12,
    "mx.unsignedhost.test": 13,
    "mx.bogus.test": 14,
    "mx.unsigned.test": 15,
    "mx.badtlsa.test": 16,
    "mx.plain.test": 17,
    "mx.expired.test": 18,
    "mx.tampered.test": 19,
    "mx.elsewhere": 20,
    "mx.notlsa.test": 22,
    "mx.nods.test": 23,
    "mx.child.pp.test": 24,
    "mx.iplit.test": 25,
}


def host_a(name: str) -> str:
    return f"127.0.0.{HOSTS[name]}"


ZONES = {
    "test": "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns\nns A 127.0.0.1\n",
    # (the delegations to every child are added by the fixture)
    # signed domain, MX hosts in its own signed zone and in another signed zone, good TLSA
    "good.test": SOA + "@ MX 10 mx\n@ MX 20 mx.mailhost.test.\n"
    f"mx A {host_a('mx.good.test')}\n"
    f"_25._tcp.mx TLSA 3 1 1 {DIGEST}\n",
    "mailhost.test": SOA + f"mx A {host_a('mx.mailhost.test')}\n"
    f"_25._tcp.mx TLSA 2 1 2 {DIGEST_512}\n"
    f"_25._tcp.mx TLSA 3 1 1 {DIGEST}\n",
    # signed domain whose MX host lives in an unsigned zone
    "mixed.test": SOA + "@ MX 10 mx.unsignedhost.test.\n",
    "unsignedhost.test": SOA + f"mx A {host_a('mx.unsignedhost.test')}\n",
    # bogus zone (knot publishes a wrong DS for it), and a signed domain using it as MX
    "bogus.test": SOA + f"@ MX 10 mx\nmx A {host_a('mx.bogus.test')}\n",
    "victim.test": SOA + "@ MX 10 mx.bogus.test.\n",
    # unsigned domain
    "unsigned.test": SOA + f"@ MX 10 mx\nmx A {host_a('mx.unsigned.test')}\n",
    # signed, TLSA with parameters unfit for SMTP
    "badtlsa.test": SOA + f"@ MX 10 mx\nmx A {host_a('mx.badtlsa.test')}\n"
    f"_25._tcp.mx TLSA 0 0 0 {'30' * 40}\n"
    f"_25._tcp.mx TLSA 1 2 1 {DIGEST}\n",
    # unsigned, with TLSA
    "plain.test": SOA + f"@ MX 10 mx\nmx A {host_a('mx.plain.test')}\n"
    f"_25._tcp.mx TLSA 3 1 1 {DIGEST}\n",
    # SERVFAIL for every name; a signed domain whose MX host is in it
    "broken.test": SOA + "@ MX 10 mx\nmx A 127.0.0.21\n",
    "victim2.test": SOA + "@ MX 10 mx.broken.test.\n",
    # signed, no TLSA
    "notlsa.test": SOA + f"@ MX 10 mx\nmx A {host_a('mx.notlsa.test')}\n",
    # below pp.test (made in the fixture): its DS is not signed
    "child.pp.test": SOA + f"@ MX 10 mx\nmx A {host_a('mx.child.pp.test')}\n",
    # one MX is an IP address (no zone to check), the other a host of the signed zone
    "iplit.test": SOA + f"@ MX 10 127.0.0.30.\n@ MX 20 mx\nmx A {host_a('mx.iplit.test')}\n",
    # null MX
    "nullmx.test": SOA + "@ MX 0 .\n",
    # no trust anchor covers this one
    "elsewhere": "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"
    f"@ MX 10 mx\nmx A {host_a('mx.elsewhere')}\n",
    "127.in-addr.arpa": "@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"
    + "".join(f"{last}.0.0 PTR {name}.\n" for name, last in HOSTS.items()),
}
SIGNED = ["test", "good.test", "mailhost.test", "mixed.test", "victim.test", "badtlsa.test"]
SIGNED += ["victim2.test", "nullmx.test", "notlsa.test", "iplit.test"]


def presigned(
    origin: str, body: str, *, expired: bool = False, tamper: bool = False, unsigned_ds: str = ""
):
    """A zone signed here (knot serves it as it is): its text and its DS record."""
    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(key.public_key(), "ECDSAP256SHA256", flags=257)
    zone = dns.zone.from_text(body, origin=f"{origin}.", relativize=False, check_origin=True)
    now = datetime.now(UTC)
    if expired:
        inception, expiration = now - timedelta(days=30), now - timedelta(days=1)
    else:
        inception, expiration = now - timedelta(days=1), now + timedelta(days=3650)
    dns.dnssec.sign_zone(zone, keys=[(key, dnskey)], inception=inception, expiration=expiration)
    if unsigned_ds:  # the DS RRset of this delegation loses its signature
        node = zone.get_node(f"{unsigned_ds}.")
        rrsig, ds = dns.rdatatype.RRSIG, dns.rdatatype.DS
        assert node.get_rdataset(dns.rdataclass.IN, rrsig, ds) is not None
        node.delete_rdataset(dns.rdataclass.IN, rrsig, ds)
    text = zone.to_text(relativize=False)
    if tamper:  # a new serial under the old signature
        text = text.replace(" 1 3600 600 86400 300", " 2 3600 600 86400 300", 1)
        assert " 2 3600 600 86400 300" in text
    ds = dns.dnssec.make_ds(f"{origin}.", dnskey, "SHA256")
    return text, f"{origin}. 3600 IN DS {ds.to_text()}", dns.dnssec.key_id(dnskey)


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    zones = dict(ZONES)
    extra_ds = []
    tags = {}
    # (zone, signatures expired, SOA changed after signing, DS published in "test")
    for origin, expired, tamper, publish_ds in (
        ("expired.test", True, False, True),
        ("tampered.test", False, True, True),
        ("nods.test", False, False, False),
    ):
        body = "$TTL 300\n" + SOA + f"@ MX 10 mx\nmx A {host_a('mx.' + origin)}\n"
        zones[origin], ds, tags[origin] = presigned(origin, body, expired=expired, tamper=tamper)
        if publish_ds:
            extra_ds.append(ds)
    # A signed parent whose DS RRset for its child has lost its signature.
    body = "$TTL 300\n" + SOA + f"child NS ns.test.\nchild DS 1 13 2 {'00' * 32}\n"
    zones["pp.test"], ds, tags["pp.test"] = presigned("pp.test", body, unsigned_ds="child.pp.test")
    extra_ds.append(ds)
    zones["test"] += "".join(f"{child}. NS ns.test.\n" for child in zones if child.count(".") == 1)
    zones["test"] += "".join(f"{record}\n" for record in extra_ds)
    server = KnotServer(
        tmp_path_factory.mktemp("knot"),
        zones,
        signed=SIGNED,
        bogus=["bogus.test"],
        broken=["broken.test"],
    )
    server.start()
    server.presigned_tags = tags
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def anchors(knot, settings):
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = knot.trust_anchors
    return knot.trust_anchors


def run(knot, domain: str, category: str):
    session = DnsSession([(knot.host, knot.port)])
    return check_domain(domain, categories=[category], session=session).categories[category]


def ids(result) -> list[str]:
    return [f.id for f in result.findings]


def ds_rdata(record: str) -> str:
    """ "good.test. 3600 IN DS 1234 13 2 ABCD" -> "1234 13 2 abcd", as dnspython writes it."""
    tag, algorithm, digest_type, digest = record.split()[-4:]
    return f"{tag} {algorithm} {digest_type} {digest.lower()}"


# --- dnssec ---------------------------------------------------------------------------------


def test_the_harness_anchors_the_signed_parent(knot):
    assert [a.split()[0] for a in knot.trust_anchors] == ["test."]


def test_signed_domain_with_signed_mx_zones_is_secure(knot):
    result = run(knot, "good.test", "dnssec")

    assert ids(result) == []
    assert result.status == Status.PASS
    assert result.score == 100
    assert result.data == {
        "domain": "secure",
        "mx": {"mx.good.test": "secure", "mx.mailhost.test": "secure"},
    }
    assert result.records["DS"] == [ds_rdata(r) for r in knot.ds_records("good.test")]
    tag = knot.ds_records("good.test")[0].split()[4]
    assert result.records["DNSKEY"] == [f"{tag} ECDSAP256SHA256 flags 257 (KSK/SEP)"]


def test_mx_host_in_unsigned_zone(knot):
    result = run(knot, "mixed.test", "dnssec")

    assert ids(result) == ["dnssec.mx_unsigned"]
    # The host is another organisation's (unsignedhost.test, a mail provider's): mixed.test
    # cannot sign it, so the finding is information only (issue 11, item 9).
    assert result.findings[0].severity == Severity.INFO
    assert result.status == Status.PASS
    assert result.data == {"domain": "secure", "mx": {"mx.unsignedhost.test": "insecure"}}
    detail = result.findings[0].detail
    assert "mx.unsignedhost.test" in detail
    assert "unsignedhost.test: its parent zone test is signed but has no DS" in detail


def test_bogus_domain(knot):
    result = run(knot, "bogus.test", "dnssec")

    # The MX host is in the same bogus zone: reported once, as the domain's.
    assert ids(result) == ["dnssec.bogus"]
    assert result.status == Status.FAIL
    assert result.score == 0
    assert result.data == {"domain": "bogus", "mx": {"mx.bogus.test": "bogus"}}
    detail = result.findings[0].detail
    tag = knot.ds_records("bogus.test")[0].split()[4]
    assert f"No DNSKEY of bogus.test matches its DS (the DS in test: key tag {tag}," in detail
    assert f"Key {tag} has the DS's key tag and algorithm, but its digest differs" in detail
    # The published (wrong) DS is kept for history.
    assert result.records["DS"] == [ds_rdata(r) for r in knot.ds_records("bogus.test")]


def test_mx_host_in_bogus_zone(knot):
    result = run(knot, "victim.test", "dnssec")

    assert ids(result) == ["dnssec.mx_bogus"]
    assert result.status == Status.FAIL
    assert result.data == {"domain": "secure", "mx": {"mx.bogus.test": "bogus"}}
    assert "MX host mx.bogus.test: DNSSEC validation fails in the zone bogus.test." in (
        result.findings[0].detail
    )


def test_unsigned_domain(knot):
    result = run(knot, "unsigned.test", "dnssec")

    # The MX host shares the domain's unsigned zone: no second finding for it.
    assert ids(result) == ["dnssec.unsigned"]
    assert result.findings[0].severity == Severity.MEDIUM
    assert result.status == Status.WARN
    assert result.data == {"domain": "insecure", "mx": {"mx.unsigned.test": "insecure"}}
    assert result.records == {"DS": [], "DNSKEY": []}
    assert "The chain of trust ends at unsigned.test" in result.findings[0].detail


def test_expired_signatures_are_bogus(knot):
    result = run(knot, "expired.test", "dnssec")

    assert ids(result) == ["dnssec.bogus"]
    assert result.data["domain"] == "bogus"
    detail = result.findings[0].detail
    tag = knot.presigned_tags["expired.test"]
    assert (
        f"The DNSKEY RRset of expired.test is not validly signed by a key its DS (the DS in "
        f"test) points to (key tag {tag}): RRSIG by expired.test key tag {tag} algorithm 13: "
        "expired on "
    ) in detail


def test_soa_signature_that_does_not_verify_is_bogus(knot):
    result = run(knot, "tampered.test", "dnssec")

    assert ids(result) == ["dnssec.bogus"]
    assert result.data["domain"] == "bogus"
    detail = result.findings[0].detail
    tag = knot.presigned_tags["tampered.test"]
    assert (
        "The SOA RRset of tampered.test is not validly signed by the zone's keys: RRSIG by "
        f"tampered.test key tag {tag} algorithm 13: the signature does not verify."
    ) in detail


def test_keys_without_ds_at_the_parent_are_insecure_and_said_so(knot):
    result = run(knot, "nods.test", "dnssec")

    assert ids(result) == ["dnssec.unsigned"]
    assert result.data == {"domain": "insecure", "mx": {"mx.nods.test": "insecure"}}
    tag = knot.presigned_tags["nods.test"]
    key = f"{tag} ECDSAP256SHA256 flags 257 (KSK/SEP)"
    assert result.records == {"DS": [], "DNSKEY": [key]}
    assert (
        f"nods.test does publish DNSKEY records ({key}): the DS record for them is missing "
        "at the parent (registrar)."
    ) in result.findings[0].detail


def test_unsigned_ds_is_bogus(knot):
    result = run(knot, "child.pp.test", "dnssec")

    assert ids(result) == ["dnssec.bogus"]
    assert result.data == {"domain": "bogus", "mx": {"mx.child.pp.test": "bogus"}}
    assert (
        "The DS RRset of child.pp.test is not validly signed by the keys of its parent zone "
        "pp.test: it has no signature (RRSIG)."
    ) in result.findings[0].detail


def test_name_no_trust_anchor_covers_is_insecure(knot):
    result = run(knot, "elsewhere", "dnssec")

    assert ids(result) == ["dnssec.unsigned"]
    assert result.data == {"domain": "insecure", "mx": {"mx.elsewhere": "insecure"}}
    assert "No configured trust anchor" in result.findings[0].detail


def test_null_mx_skips_the_mx_part(knot):
    result = run(knot, "nullmx.test", "dnssec")

    assert ids(result) == []
    assert result.data == {"domain": "secure", "mx": {}}


def test_ip_literal_mx_is_left_to_the_mx_check(knot):
    result = run(knot, "iplit.test", "dnssec")

    assert ids(result) == []
    assert result.data == {"domain": "secure", "mx": {"mx.iplit.test": "secure"}}


@pytest.mark.parametrize("domain", ["broken.test", "victim2.test"])
def test_broken_zone_is_an_error_not_a_verdict(knot, domain):
    result = run(knot, domain, "dnssec")

    assert result.status == Status.ERROR
    assert result.score is None
    assert ids(result) == ["dns.lookup_failed"]
    # One finding for the failing zone, naming it (issue 11, item 6).
    assert "the name servers of broken.test:" in result.findings[0].detail
    assert "broken.test (server answered SERVFAIL)" in result.findings[0].detail


def test_wrong_trust_anchor_makes_everything_bogus(knot, settings):
    settings.MAILSEC_DNSSEC_TRUST_ANCHORS = [
        "test. IN DS 12345 13 2 " + "00" * 32,
    ]
    result = run(knot, "good.test", "dnssec")

    assert ids(result) == ["dnssec.bogus"]
    assert result.data["domain"] == "bogus"
    assert "No DNSKEY of test matches its DS (the configured trust anchor" in (
        result.findings[0].detail
    )


def test_validator_shares_zones_between_names(knot):
    session = DnsSession([(knot.host, knot.port)])
    validator = Validator(session, knot.trust_anchors)

    assert validator.verdict("mx.good.test") == Verdict(
        "secure", "good.test", "good.test validates from the trust anchor."
    )
    asked = session.queries
    # A sibling that does not exist: one DS lookup (NXDOMAIN), the rest is known.
    assert validator.verdict("nothing.good.test").zone == "good.test"
    assert session.queries == asked + 1
    # Below an unsigned delegation: insecure from the delegation down.
    deep = validator.verdict("a.b.unsigned.test")
    assert (deep.status, deep.zone) == ("insecure", "unsigned.test")
    # Only DNSSEC records were asked, all with checking disabled.
    assert {(rdtype, cd) for _, rdtype, cd in session._asked} == {
        ("DNSKEY", True),
        ("DS", True),
        ("SOA", True),
    }


# --- dane -----------------------------------------------------------------------------------


def test_good_tlsa_on_signed_hosts(knot):
    result = run(knot, "good.test", "dane")

    assert ids(result) == []
    assert result.status == Status.PASS
    assert result.score == 100
    assert result.applicable is True
    tlsa = {host: sorted(records) for host, records in result.records["TLSA"].items()}
    assert tlsa == {
        "mx.good.test": [f"3 1 1 {DIGEST}"],
        "mx.mailhost.test": [f"2 1 2 {DIGEST_512}", f"3 1 1 {DIGEST}"],
    }


def test_bad_tlsa_parameters(knot):
    result = run(knot, "badtlsa.test", "dane")

    assert ids(result) == ["dane.bad_parameters"]
    assert result.status == Status.WARN
    detail = result.findings[0].detail
    assert "_25._tcp.mx.badtlsa.test TLSA 0 0 0 " in detail
    assert "usage 0 (PKIX-TA) is ignored by SMTP senders" in detail
    assert "matching type 0 (full data) is discouraged" in detail
    assert f"_25._tcp.mx.badtlsa.test TLSA 1 2 1 {DIGEST}: usage 1 (PKIX-EE) is ignored" in detail
    assert "selector 2 is not defined (0 or 1)" in detail
    assert "No record is usable" in detail


def test_tlsa_in_unsigned_zone(knot):
    result = run(knot, "plain.test", "dane")

    assert ids(result) == ["dane.without_dnssec"]
    assert result.status == Status.WARN
    assert result.records == {"TLSA": {"mx.plain.test": [f"3 1 1 {DIGEST}"]}}
    assert "the zone of mx.plain.test is not signed" in result.findings[0].detail


def test_no_tlsa_on_a_host_in_a_signed_zone(knot):
    result = run(knot, "notlsa.test", "dane")

    assert ids(result) == ["dane.missing"]
    assert result.findings[0].severity == Severity.LOW
    assert result.status == Status.WARN
    assert result.records == {"TLSA": {"mx.notlsa.test": []}}
    assert "mx.notlsa.test has no TLSA record at _25._tcp.mx.notlsa.test" in (
        result.findings[0].detail
    )


@pytest.mark.parametrize(
    ("domain", "host"),
    [("unsigned.test", "mx.unsigned.test"), ("mixed.test", "mx.unsignedhost.test")],
)
def test_no_tlsa_on_a_host_in_an_unsigned_zone_is_informational(knot, domain, host):
    result = run(knot, domain, "dane")

    assert ids(result) == ["dane.missing"]
    assert result.findings[0].severity == Severity.INFO
    assert result.status == Status.PASS
    assert f"DANE first needs DNSSEC on the zone of {host}" in result.findings[0].detail


def test_host_in_bogus_zone_gets_no_dane_finding(knot):
    result = run(knot, "victim.test", "dane")

    assert ids(result) == []
    assert result.applicable is True
    assert result.records == {"TLSA": {}}


@pytest.mark.parametrize("domain", ["nullmx.test", "mailhost.test"])
def test_null_or_no_mx_is_not_applicable(knot, domain):
    result = run(knot, domain, "dane")

    assert result.applicable is False
    assert result.status == Status.INFO
    assert result.score is None
    assert ids(result) == []


def test_dane_errors_when_the_mx_host_zone_is_broken(knot):
    result = run(knot, "victim2.test", "dane")

    assert result.status == Status.ERROR
    assert ids(result) == ["dns.lookup_failed"]
