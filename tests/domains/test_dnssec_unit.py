"""The pure parts of the dnssec and dane checks: no DNS traffic (see test_dnssec_dane.py)."""

from datetime import UTC, datetime, timedelta

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

import mailsec.settings
from domains.checks.dane import tlsa_problems
from domains.checks.dnssec import (
    Validator,
    algorithm_supported,
    describe_key,
    ds_matches,
    parse_anchors,
    signature_problem,
)

ZONE = dns.name.from_text("example.test.")
NOW = datetime(2030, 6, 1, tzinfo=UTC)


def make_key(flags: int = 257):
    private = ec.generate_private_key(ec.SECP256R1())
    return private, dns.dnssec.make_dnskey(private.public_key(), "ECDSAP256SHA256", flags=flags)


def keyset(*dnskeys):
    return dns.rdataset.from_rdata_list(3600, list(dnskeys))


def soa(serial: int = 1):
    return dns.rrset.from_text(
        ZONE, 300, "IN", "SOA", f"ns.test. hostmaster.test. {serial} 3600 600 86400 300"
    )


def sign(rrset, private, dnskey, *, signer=ZONE, inception=None, expiration=None):
    return dns.dnssec.sign(
        rrset,
        private,
        signer,
        dnskey,
        inception=inception or NOW - timedelta(days=1),
        expiration=expiration or NOW + timedelta(days=30),
    )


# --- trust anchors --------------------------------------------------------------------------


def test_anchors_with_or_without_ttl_and_class_grouped_by_owner():
    anchors = parse_anchors(
        [
            ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
            "test. 3600 IN DS 1234 13 2 " + "AB" * 32,
            "test. DS 4321 13 2 " + "CD" * 32,
        ]
    )

    assert list(anchors) == [dns.name.root, dns.name.from_text("test.")]
    assert [ds.key_tag for ds in anchors[dns.name.root]] == [20326]
    assert [(ds.key_tag, ds.algorithm) for ds in anchors[dns.name.from_text("test")]] == [
        (1234, 13),
        (4321, 13),
    ]


def test_the_default_anchors_parse():
    # The settings module's own value: the tests' knot overrides the setting with its keys.
    anchors = parse_anchors(mailsec.settings.MAILSEC_DNSSEC_TRUST_ANCHORS)
    assert {ds.key_tag for ds in anchors[dns.name.root]} == {20326, 38696}


@pytest.mark.parametrize(
    "text", ["", "garbage", "test. IN DNSKEY 257 3 13 AAAA", "test. IN DS 1234 13 2 XYZ"]
)
def test_a_bad_anchor_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured, match="MAILSEC_DNSSEC_TRUST_ANCHORS"):
        parse_anchors([text])


def test_walk_asks_from_the_deepest_covering_anchor_down():
    validator = Validator(None, [". DS 1 13 2 " + "00" * 32, "test. DS 2 13 2 " + "00" * 32])

    assert validator.queries("mx.good.test") == [
        ("test", "DNSKEY"),
        ("good.test", "DS"),
        ("good.test", "SOA"),
        ("good.test", "DNSKEY"),
        ("mx.good.test", "DS"),
        ("mx.good.test", "SOA"),
        ("mx.good.test", "DNSKEY"),
    ]
    assert Validator(None, ["test. DS 2 13 2 " + "00" * 32]).queries("example.com") == []


# --- keys and signatures --------------------------------------------------------------------


def test_ds_matches_only_the_key_with_that_digest():
    _, key = make_key()
    _, other = make_key()
    ds = dns.dnssec.make_ds(ZONE, key, "SHA256")

    assert ds_matches(ZONE, key, ds)
    assert not ds_matches(ZONE, other, ds)
    assert not ds_matches(dns.name.from_text("other.test."), key, ds)
    # Same key tag and algorithm, different digest (what a stale DS looks like).
    wrong = dns.rdata.from_text("IN", "DS", f"{ds.key_tag} 13 2 {'00' * 32}")
    assert not ds_matches(ZONE, key, wrong)


def test_a_key_without_the_zone_flag_never_matches():
    _, key = make_key(flags=1)
    assert not ds_matches(ZONE, key, dns.dnssec.make_ds(ZONE, key, "SHA256"))


def test_algorithms():
    assert algorithm_supported(13)
    assert algorithm_supported(8)
    assert not algorithm_supported(1)  # RSAMD5: must not be validated (RFC 8624)
    assert not algorithm_supported(200)


def test_describe_key():
    _, key = make_key()
    assert describe_key(key) == f"{dns.dnssec.key_id(key)} ECDSAP256SHA256 flags 257 (KSK/SEP)"
    _, zsk = make_key(flags=256)
    assert describe_key(zsk).endswith("flags 256 (ZSK)")


def test_a_good_signature_validates():
    private, key = make_key()
    rrsig = sign(soa(), private, key)
    assert signature_problem(soa(), [rrsig], ZONE, keyset(key), NOW.timestamp()) is None


def test_no_signature():
    _, key = make_key()
    problem = signature_problem(soa(), [], ZONE, keyset(key), NOW.timestamp())
    assert problem == "it has no signature (RRSIG)"


def test_expired_and_not_yet_valid_signatures():
    private, key = make_key()
    tag = dns.dnssec.key_id(key)
    old = sign(
        soa(), private, key, inception=NOW - timedelta(days=9), expiration=NOW - timedelta(days=2)
    )
    early = sign(
        soa(), private, key, inception=NOW + timedelta(days=1), expiration=NOW + timedelta(days=9)
    )

    assert signature_problem(soa(), [old], ZONE, keyset(key), NOW.timestamp()) == (
        f"RRSIG by example.test key tag {tag} algorithm 13: expired on 2030-05-30 00:00 UTC"
    )
    assert signature_problem(soa(), [early], ZONE, keyset(key), NOW.timestamp()) == (
        f"RRSIG by example.test key tag {tag} algorithm 13: not valid before 2030-06-02 00:00 UTC"
    )
    # One good signature among bad ones is enough.
    good = sign(soa(), private, key)
    assert signature_problem(soa(), [old, good], ZONE, keyset(key), NOW.timestamp()) is None


def test_changed_data_does_not_verify():
    private, key = make_key()
    rrsig = sign(soa(1), private, key)
    problem = signature_problem(soa(2), [rrsig], ZONE, keyset(key), NOW.timestamp())
    assert problem.endswith(": the signature does not verify")


def test_signature_by_a_key_not_among_the_trusted_ones():
    private, key = make_key()
    _, trusted = make_key()
    rrsig = sign(soa(), private, key)
    problem = signature_problem(soa(), [rrsig], ZONE, keyset(trusted), NOW.timestamp())
    assert problem == (
        f"RRSIG by example.test key tag {dns.dnssec.key_id(key)} algorithm 13: "
        "not made by any of those keys"
    )


def test_signature_by_another_zone():
    private, key = make_key()
    parent = dns.name.from_text("test.")
    rrsig = sign(soa(), private, key, signer=parent)
    problem = signature_problem(soa(), [rrsig], ZONE, keyset(key), NOW.timestamp())
    assert problem.endswith(": not made by the zone example.test")


# --- TLSA parameters ------------------------------------------------------------------------

SHA256 = "8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d"


def tlsa(text: str):
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, text)


@pytest.mark.parametrize("text", [f"3 1 1 {SHA256}", f"2 0 1 {SHA256}", f"3 1 2 {'ab' * 64}"])
def test_tlsa_fit_for_smtp(text):
    assert tlsa_problems(tlsa(text)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"1 1 1 {SHA256}",
            ["usage 1 (PKIX-EE) is ignored by SMTP senders, use 3 (DANE-EE) or 2 (DANE-TA)"],
        ),
        (
            f"0 1 1 {SHA256}",
            ["usage 0 (PKIX-TA) is ignored by SMTP senders, use 3 (DANE-EE) or 2 (DANE-TA)"],
        ),
        (f"4 1 1 {SHA256}", ["usage 4 is not defined"]),
        (f"3 2 1 {SHA256}", ["selector 2 is not defined (0 or 1)"]),
        (f"3 1 3 {SHA256}", ["matching type 3 is not defined (1 or 2)"]),
        (
            "3 0 0 3082",
            [
                "matching type 0 (full data) is discouraged, use 1 (SHA2-256) so the record "
                "survives certificate renewals with the same key"
            ],
        ),
    ],
)
def test_tlsa_unfit_for_smtp(text, expected):
    assert tlsa_problems(tlsa(text)) == expected
