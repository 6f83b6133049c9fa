"""DANE matching (pure): TLSA records against chains made by the lab's CA, then against the chain
a real Postfix serves."""

import hashlib

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from domains.probes import dane
from domains.probes.probe import Timeouts, probe
from tests.mailservers import LabCA, spki_der, spki_sha256


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dane")
    lab, rogue = LabCA(directory, "lab"), LabCA(directory, "rogue")

    def chain(ca, host):
        cert_path, _ = ca.issue(host, (host,))
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
        return [c.public_bytes(serialization.Encoding.DER).hex() for c in certs]

    good = chain(lab, "mx.dane.test")
    return {
        "good": good,  # leaf, lab CA
        "forged": [chain(rogue, "mx.dane.test")[0], good[1]],  # rogue leaf, lab CA after it
        "lab_ca": lab.cert.public_bytes(serialization.Encoding.DER),
    }


def spki(der_hex: str) -> bytes:
    cert = x509.load_der_x509_certificate(bytes.fromhex(der_hex))
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def tlsa(usage, selector, mtype, data: bytes):
    text = f"{usage} {selector} {mtype} {data.hex()}"
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, text)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "selector,mtype,select,digest",
    [
        (1, 1, "spki", sha256),
        (0, 1, "cert", sha256),
        (1, 2, "spki", lambda d: hashlib.sha512(d).digest()),
        (0, 0, "cert", lambda d: d),
        (1, 0, "spki", lambda d: d),
    ],
)
def test_dane_ee_matches_the_leaf(chains, selector, mtype, select, digest):
    leaf = chains["good"][0]
    data = digest(spki(leaf) if select == "spki" else bytes.fromhex(leaf))
    result = dane.match([tlsa(3, selector, mtype, data)], chains["good"])
    assert result.status == dane.MATCH
    assert result.matched.startswith(f"3 {selector} {mtype} ")
    assert result.evidence[-1].endswith("matches the leaf")


def test_dane_ee_for_another_key_is_a_mismatch(chains):
    result = dane.match([tlsa(3, 1, 1, sha256(b"another key"))], chains["good"])
    assert result.status == dane.MISMATCH
    assert "(DANE-EE): matches no certificate served" in result.evidence[0]


def test_dane_ee_does_not_match_the_ca(chains):
    result = dane.match([tlsa(3, 0, 1, sha256(chains["lab_ca"]))], chains["good"])
    assert result.status == dane.MISMATCH


@pytest.mark.parametrize("selector", [0, 1])
def test_dane_ta_matches_the_ca_served_after_the_leaf(chains, selector):
    ca = chains["good"][1]
    data = sha256(spki(ca) if selector else bytes.fromhex(ca))
    result = dane.match([tlsa(2, selector, 1, data)], chains["good"])
    assert result.status == dane.MATCH
    assert result.evidence[-1].endswith("matches certificate 1 of the chain")


def test_dane_ta_does_not_match_the_leaf_itself(chains):
    result = dane.match([tlsa(2, 1, 1, sha256(spki(chains["good"][0])))], chains["good"])
    assert result.status == dane.MISMATCH


def test_dane_ta_served_but_not_the_leafs_issuer(chains):
    """The lab CA is sent, but the leaf was signed by another CA: no chain leads to it."""
    result = dane.match([tlsa(2, 0, 1, sha256(chains["lab_ca"]))], chains["forged"])
    assert result.status == dane.MISMATCH
    assert "matches certificate 1, not linked to the leaf" in result.evidence[0]


def test_one_matching_record_among_several_is_enough(chains):
    records = [tlsa(3, 1, 1, sha256(b"old key")), tlsa(3, 1, 1, sha256(spki(chains["good"][0])))]
    result = dane.match(records, chains["good"])
    assert result.status == dane.MATCH
    assert "matches no certificate served" in result.evidence[0]


def test_only_unusable_records_is_no_dane(chains):
    """PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (RFC 7672 3.1.3): as if absent."""
    leaf_hash = sha256(spki(chains["good"][0]))
    result = dane.match([tlsa(1, 1, 1, leaf_hash), tlsa(0, 0, 1, leaf_hash)], chains["good"])
    assert result.status == dane.NONE
    assert all("unusable for SMTP" in line for line in result.evidence)


def test_unknown_matching_type_is_unusable(chains):
    result = dane.match([(3, 1, 9, "00" * 32)], chains["good"])
    assert result.status == dane.NONE


def test_no_records_is_none(chains):
    assert dane.match([], chains["good"]).status == dane.NONE


def test_records_but_no_tls_is_a_mismatch():
    result = dane.match([(3, 1, 1, "00" * 32)], [])
    assert result.status == dane.MISMATCH
    assert result.evidence == ["no certificate was served (no TLS)"]


def test_tuples_with_hex_data_are_accepted(chains):
    leaf = chains["good"][0]
    assert dane.match([(3, 1, 1, sha256(spki(leaf)).hex())], chains["good"]).status == dane.MATCH


def test_lab_keys_are_known_before_the_servers_start():
    """What lets a zone carry TLSA records for the lab's servers: keys derived from names."""
    assert (
        spki_sha256("mx-good.probes.test")
        == hashlib.sha256(spki_der("mx-good.probes.test")).hexdigest()
    )
    assert spki_sha256("mx-good.probes.test") != spki_sha256("mx-plain.probes.test")


def test_against_the_chain_postfix_serves(lab_trust):
    target = lab_trust.endpoints["good"].target()
    chain = probe(target, None, Timeouts(connect=1, greeting=1, command=5)).tls.certificate
    record = (3, 1, 1, spki_sha256("mx-good.probes.test"))
    assert dane.match([record], chain.chain_der_hex).status == dane.MATCH
    other = (3, 1, 1, spki_sha256("mx-other.probes.test"))
    assert dane.match([other], chain.chain_der_hex).status == dane.MISMATCH


def test_dane_ta_full_key_may_sign_a_chain_without_the_anchor(chains):
    """RFC 7671 5.2.2: "2 1 0" carries the anchor's whole key; the server may leave it out."""
    ca_key = spki(chains["good"][1])
    leaf_only = chains["good"][:1]
    result = dane.match([tlsa(2, 1, 0, ca_key)], leaf_only)
    assert result.status == dane.MATCH
    assert result.evidence[-1].endswith("the served chain is signed by this trust-anchor key")
    # a digest of the key is not enough then: the anchor must be in the chain to be hashed
    assert dane.match([tlsa(2, 1, 1, sha256(ca_key))], leaf_only).status == dane.MISMATCH
    # nor does the key match a chain it did not sign
    assert dane.match([tlsa(2, 1, 0, ca_key)], chains["forged"]).status == dane.MISMATCH
    rogue_leaf = chains["forged"][:1]
    assert dane.match([tlsa(2, 1, 0, ca_key)], rogue_leaf).status == dane.MISMATCH
