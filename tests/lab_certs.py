"""The mail lab's certificates: a CA (`LabCA`) whose leaf keys are derived from host names, so
a TLSA record of selector 1 can be written into a zone before the servers start
(`spki_sha256(host)`). Used by tests/mailservers.py."""

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EXPIRING_IN = datetime.timedelta(days=7)  # an `expiring` certificate's days left


def leaf_key(name: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from `name`: the same in every run (for TLSA records in zones)."""
    secret = int.from_bytes(hashlib.sha256(f"mailsec lab {name}".encode()).digest(), "big")
    return ec.derive_private_key(secret % (2**255) + 1, ec.SECP256R1())


def spki_der(name: str) -> bytes:
    return (
        leaf_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def spki_sha256(name: str) -> str:
    """The data of a TLSA "3 1 1" record for the lab certificate of host `name` (hex)."""
    return hashlib.sha256(spki_der(name)).hexdigest()


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


class LabCA:
    """A CA whose key is derived from its label; issues leaf certificates into `directory`."""

    def __init__(self, directory: Path, label: str):
        self.directory, self.label = Path(directory), label
        self.key = leaf_key(f"CA {label}")
        now = datetime.datetime.now(datetime.UTC)
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_cn(f"mailsec {label} CA"))
            .issuer_name(_cn(f"mailsec {label} CA"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3650))  # before the expired leaf's
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = self.directory / f"ca-{label}.pem"
        self.cert_path.write_bytes(_pem(self.cert))

    def issue(
        self, host: str, names: tuple[str, ...], *, expired=False, expiring=False
    ) -> tuple[Path, Path]:
        """(certificate chain PEM: leaf then CA, key PEM) for `names`, keyed by `host`;
        `expiring`: valid for EXPIRING_IN more days (inside the 14 days of cert_expiring)."""
        key = leaf_key(host)
        now = datetime.datetime.now(datetime.UTC)
        start, end = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=60))
        if expired:
            start, end = now - datetime.timedelta(days=90), now - datetime.timedelta(days=2)
        if expiring:
            start, end = now - datetime.timedelta(days=60), now + EXPIRING_IN
        cert = (
            x509.CertificateBuilder()
            .subject_name(_cn(names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        suffix = "-expired" if expired else "-expiring" if expiring else ""
        stem = self.directory / f"{self.label}-{host}{suffix}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(_pem(cert) + _pem(self.cert))
        key_path.write_bytes(_pem(key))
        key_path.chmod(0o600)
        return cert_path, key_path
