"""Certificate judgement (pure): RFC 6125 names, keys, the common-name fallback, trust."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from domains.probes import certs
from tests.mailservers import LabCA

SHA256 = hashes.SHA256()


@pytest.mark.parametrize(
    "host,pattern,expected",
    [
        ("mx.example.com", "mx.example.com", True),
        ("MX.Example.COM.", "mx.example.com", True),
        ("mx.example.com", "*.example.com", True),
        ("a.mx.example.com", "*.example.com", False),  # one label only
        ("example.com", "*.example.com", False),
        ("mx.example.com", "m*.example.com", False),  # no partial wildcards
        ("mx.example.com", "*.*.com", False),
        ("example.com", "*.com", False),  # never a whole public suffix
        ("mx.example.com", "mx.example.org", False),
    ],
)
def test_name_matching(host, pattern, expected):
    assert certs.name_matches(host, pattern) is expected


def _self_signed(key, *, common_name="cn.example.test", sans=None, sign_hash=SHA256):
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if sans:
        names = [x509.DNSName(n) for n in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, sign_hash)
    return cert.public_bytes(serialization.Encoding.DER)


def test_rsa_key_signature_hash_common_name_only():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  (weak on purpose)
    der = _self_signed(key, sign_hash=hashes.SHA384())
    cert = certs.describe([der], "cn.example.test")
    assert (cert.key_type, cert.key_bits, cert.signature_hash) == ("RSA", 1024, "sha384")
    assert cert.names == ["cn.example.test"] and cert.name_matches is True
    assert cert.trusted is False
    assert "subjectAltName" in cert.trust_error  # a certificate naming no host is never valid


def test_ed25519_key_has_no_separate_hash():
    der = _self_signed(
        ed25519.Ed25519PrivateKey.generate(), sans=["a.example.test"], sign_hash=None
    )
    cert = certs.describe([der], "b.example.test")
    assert (cert.key_type, cert.key_bits, cert.signature_hash) == ("Ed25519", 256, "")
    assert cert.names == ["a.example.test"] and cert.name_matches is False


def test_san_wins_over_the_common_name():
    der = _self_signed(
        ed25519.Ed25519PrivateKey.generate(),
        common_name="cn.example.test",
        sans=["san.example.test"],
        sign_hash=None,
    )
    cert = certs.describe([der], "cn.example.test")
    assert cert.names == ["san.example.test"] and cert.name_matches is False


def test_trust_needs_the_ca_in_the_configured_file(tmp_path, settings):
    lab, other = LabCA(tmp_path, "lab"), LabCA(tmp_path, "other")
    cert_path, _ = lab.issue("mx.example.test", ("mx.example.test",))
    chain = [
        c.public_bytes(serialization.Encoding.DER)
        for c in x509.load_pem_x509_certificates(cert_path.read_bytes())
    ]
    settings.MAILSEC_TLS_CA_FILE = str(lab.cert_path)
    assert certs.describe(chain, "mx.example.test").trusted is True
    assert certs.describe(chain[:1], "mx.example.test").trusted is True  # CA not sent: fine
    settings.MAILSEC_TLS_CA_FILE = str(other.cert_path)
    untrusted = certs.describe(chain, "mx.example.test")
    assert untrusted.trusted is False and untrusted.trust_error


def test_an_empty_chain_is_no_certificate():
    assert certs.describe([], "mx.example.test") is None
