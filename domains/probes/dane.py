"""DANE: do a name's TLSA records match the certificate chain a server served? (RFC 6698,
RFC 7671, RFC 7672 for SMTP). Pure: records and chain in, an outcome with its evidence out.

Only the usages SMTP's DANE uses are considered (RFC 7672 3.1.3): DANE-TA(2) and DANE-EE(3).
PKIX-TA(0) and PKIX-EE(1) records are "unusable" for SMTP and so are unknown selectors or
matching types; when no usable record is left, the outcome is "none" (as if there were none).

- DANE-EE(3): the leaf certificate (selector 0) or its public key (selector 1) matches; its
  names and validity period do not matter (RFC 7672 3.1.1).
- DANE-TA(2): a certificate the server sent after the leaf matches, and the chain from the leaf
  up to it is signed link by link (RFC 7671 5.2.2: the server must send the trust anchor),
  except for "2 1 0", the anchor's whole public key, which may sign the top of the chain sent.
  The names of the leaf are checked apart (Certificate.name_matches), as for any certificate.

Matching types: 0 the whole DER, 1 its SHA-256, 2 its SHA-512.
"""

import hashlib
import itertools
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

MATCH, MISMATCH, NONE = "match", "mismatch", "none"
USAGES = {2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}


@dataclass
class DaneResult:
    status: str  # MATCH, MISMATCH or NONE
    evidence: list[str] = field(default_factory=list)
    matched: str = ""  # the record that matched, in presentation form


def _fields(rdata) -> tuple[int, int, int, bytes]:
    """usage, selector, matching type, data: from a dnspython TLSA rdata or a tuple."""
    if isinstance(rdata, tuple | list):
        usage, selector, mtype, data = rdata
        return (
            int(usage),
            int(selector),
            int(mtype),
            bytes.fromhex(data) if isinstance(data, str) else bytes(data),
        )
    return rdata.usage, rdata.selector, rdata.mtype, bytes(rdata.cert)


def _text(usage: int, selector: int, mtype: int, data: bytes) -> str:
    return f"{usage} {selector} {mtype} {data.hex()}"


def _selected(cert: x509.Certificate, der: bytes, selector: int) -> bytes:
    if selector == 0:
        return der
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _digest(data: bytes, mtype: int) -> bytes:
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def _chain_signed_up_to(chain: list[x509.Certificate], index: int) -> bool:
    """Each certificate from the leaf to chain[index] is issued (signed) by the next."""
    try:
        for child, parent in itertools.pairwise(chain[: index + 1]):
            child.verify_directly_issued_by(parent)
    except Exception:  # InvalidSignature, ValueError, TypeError (unlike key types) ...
        return False
    return True


def _signed_by_key(chain: list[x509.Certificate], spki: bytes) -> bool:
    """RFC 7671 5.2.2: with "2 1 0" the record holds the trust anchor's whole public key, so the
    server may leave the anchor out: the chain (from the leaf up) must end in a certificate that
    key signed."""
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, TypeError):
        return False
    for index, cert in enumerate(chain):
        if index and not _chain_signed_up_to(chain, index):
            return False
        if _verifies(key, cert):
            return True
    return False


def _verifies(key, cert: x509.Certificate) -> bool:
    signature, data, algorithm = (
        cert.signature,
        cert.tbs_certificate_bytes,
        cert.signature_hash_algorithm,
    )
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def match(tlsa_rdatas, chain_der_hex: list[str]) -> DaneResult:
    """Whether any usable TLSA record matches the chain served (leaf first, DER in hex)."""
    usable, skipped = [], []
    for rdata in tlsa_rdatas:
        usage, selector, mtype, data = _fields(rdata)
        text = _text(usage, selector, mtype, data)
        if usage in USAGES and selector in SELECTORS and mtype in MATCHING:
            usable.append((usage, selector, mtype, data, text))
        else:
            skipped.append(f"{text[:80]}: unusable for SMTP (RFC 7672 3.1.3)")
    if not usable:
        return DaneResult(NONE, skipped or ["no TLSA records"])
    if not chain_der_hex:
        return DaneResult(MISMATCH, [*skipped, "no certificate was served (no TLS)"])
    ders = [bytes.fromhex(h) for h in chain_der_hex]
    chain = [x509.load_der_x509_certificate(der) for der in ders]
    evidence = list(skipped)
    for usage, selector, mtype, data, text in usable:
        positions = [0] if usage == 3 else range(1, len(chain))
        for index in positions:
            if _digest(_selected(chain[index], ders[index], selector), mtype) != data:
                continue
            if usage == 2 and not _chain_signed_up_to(chain, index):
                evidence.append(f"{text[:80]}: matches certificate {index}, not linked to the leaf")
                continue
            where = "the leaf" if index == 0 else f"certificate {index} of the chain"
            return DaneResult(MATCH, [*evidence, f"{text[:80]}: matches {where}"], text)
        if (usage, selector, mtype) == (2, 1, 0) and _signed_by_key(chain, data):
            line = f"{text[:80]}: the served chain is signed by this trust-anchor key"
            return DaneResult(MATCH, [*evidence, line], text)
        evidence.append(f"{text[:80]} ({USAGES[usage]}): matches no certificate served")
    return DaneResult(MISMATCH, evidence)
