"""What a served certificate chain is worth: trust, names, validity, key and signature.

Trust is judged here, after the handshake, rather than by OpenSSL during it: a handshake that
verifies stops at the first problem and hands over no certificate, while the verdicts need to
say *what* is wrong (untrusted, expired, another name) and DANE needs the chain as served.

- `trusted`: the chain leads, through the intermediates served, to a certificate of the store
  (settings.MAILSEC_TLS_CA_FILE when set, else the system store), with RFC 5280 path validation
  by `cryptography.x509.verification`. The leaf's validity period and its names are NOT part of
  it: they are reported apart (`not_after`, `name_matches`), so an expired certificate from a
  good CA is "expired", not also "untrusted".
- `name_matches`: RFC 6125 (section 6.4): the DNS names of subjectAltName, the common name only
  when there are none; a wildcard only as the whole left-most label, matching one label.
"""

import datetime
import functools
import ssl
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID
from django.conf import settings

from domains.probes.results import Certificate

SYSTEM_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


PEM_END = b"-----END CERTIFICATE-----"


@functools.lru_cache(maxsize=4)
def _store(ca_file: str) -> verification.Store:
    """The certificates of the file, each loaded on its own: a system bundle may hold one that
    `cryptography` rejects (or, today, warns about: a negative serial number), which must not
    cost the trust in all the others."""
    anchors = []
    for block in Path(ca_file).read_bytes().split(PEM_END):
        if b"-----BEGIN CERTIFICATE-----" not in block:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                anchors.append(x509.load_pem_x509_certificate(block + PEM_END))
            except ValueError:
                continue
    if not anchors:
        raise ValueError(f"{ca_file} holds no usable certificate")
    return verification.Store(anchors)


def ca_file() -> str:
    """The file of trusted certificates: MAILSEC_TLS_CA_FILE, else the system's bundle."""
    if settings.MAILSEC_TLS_CA_FILE:
        return str(settings.MAILSEC_TLS_CA_FILE)
    default = ssl.get_default_verify_paths().cafile
    for candidate in (default, *SYSTEM_CA_FILES):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("no system certificate store found; set MAILSEC_TLS_CA_FILE")


def describe(chain_der: list[bytes], host: str, *, now: datetime.datetime | None = None):
    """The Certificate of a served chain (leaf first) for the host probed; None if empty."""
    if not chain_der:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    leaf = chain[0]
    key_type, key_bits = key_description(leaf.public_key())
    names = dns_names(leaf)
    trusted, trust_error = check_trust(chain, now)
    hash_algorithm = leaf.signature_hash_algorithm
    return Certificate(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc.isoformat(),
        not_after=leaf.not_valid_after_utc.isoformat(),
        names=names,
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=hash_algorithm.name if hash_algorithm is not None else "",
        trusted=trusted,
        trust_error=trust_error,
        name_matches=any(name_matches(host, name) for name in names),
        chain_der_hex=[der.hex() for der in chain_der],
    )


def check_trust(chain: list[x509.Certificate], now: datetime.datetime) -> tuple[bool, str]:
    """(trusted, why not). Validated at a moment inside the leaf's validity period when `now`
    is outside it (expiry is reported on its own), against one of the leaf's own names (names
    are checked on their own too)."""
    leaf = chain[0]
    moment = now
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        moment = leaf.not_valid_after_utc - datetime.timedelta(seconds=1)
    names = dns_names(leaf, common_name_fallback=False)
    if names:
        subject = verification.DNSName(names[0].removeprefix("*."))
    else:
        return False, "the certificate names no host in subjectAltName (RFC 5280, RFC 6125)"
    try:
        store = _store(ca_file())
    except (OSError, ValueError) as exc:
        return False, f"no trusted certificates to check against: {exc}"
    verifier = verification.PolicyBuilder().store(store).time(moment).build_server_verifier(subject)
    try:
        verifier.verify(leaf, chain[1:])
    except verification.VerificationError as exc:
        return False, str(exc)
    return True, ""


def dns_names(cert: x509.Certificate, *, common_name_fallback: bool = True) -> list[str]:
    """subjectAltName's DNS names, lower case; the common name(s) when there are none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names and common_name_fallback:
        names = [
            str(attribute.value)
            for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return [name.lower().rstrip(".") for name in names]


def name_matches(host: str, pattern: str) -> bool:
    """RFC 6125 6.4.3: exact (case-insensitive), or `*.rest` standing for exactly one label."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if host == pattern:
        return True
    if not pattern.startswith("*.") or "*" in pattern[1:]:
        return False
    first, _, rest = host.partition(".")
    return bool(first) and rest == pattern[2:] and "." in rest


def key_description(key) -> tuple[str, int]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0
