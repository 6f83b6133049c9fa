"""What one probe of one (address, port) found: plain data, JSON-serialisable, shared by every
domain whose mail servers include that address and port.

The verdict modules read these and nothing else, so their tests build them by hand."""

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Service(StrEnum):
    SMTP = "smtp"  # port 25, STARTTLS optional
    SUBMISSION = "submission"  # 587 STARTTLS, 465 implicit TLS
    IMAP = "imap"  # 143 STARTTLS, 993 implicit TLS
    POP3 = "pop3"  # 110 STLS, 995 implicit TLS


class TlsMode(StrEnum):
    STARTTLS = "starttls"  # plaintext greeting, then STARTTLS / STLS
    IMPLICIT = "implicit"  # TLS from the first byte (465, 993, 995)


class Reach(StrEnum):
    OK = "ok"  # connected and greeted
    REFUSED = "refused"  # TCP RST / connection refused
    TIMEOUT = "timeout"  # no TCP connection within the timeout
    NO_GREETING = "no_greeting"  # connected, but no greeting in time (tarpit)
    RESET = "reset"  # the connection was closed or reset during the conversation
    BAD_GREETING = "bad_greeting"  # a greeting that is not the protocol's (or a refusal: 554)
    REFUSED_TARGET = (
        "refused_target"  # a private address while MAILSEC_ALLOW_PRIVATE_TARGETS is off
    )
    ERROR = "error"  # any other network error (in `error`)
    # Added by the probes: connected, but the implicit-TLS handshake (465/993/995) failed or
    # timed out, so no greeting could come; `tls` says why.
    TLS_FAILED = "tls_failed"


@dataclass
class Target:
    """One thing to probe: a host name (for SNI and certificate names), one of its addresses,
    a port, the service and how TLS starts there."""

    host: str
    address: str
    port: int
    service: Service
    tls_mode: TlsMode

    @property
    def key(self) -> tuple[str, int, str, str, str]:
        """Probes are shared by this key: same address, port, protocol and TLS mode. The host
        name matters for SNI and name checks, so it is part of the key too."""
        return (self.address, self.port, str(self.service), str(self.tls_mode), self.host)


@dataclass
class Certificate:
    subject: str  # RFC 4514 string of the leaf's subject
    issuer: str
    not_before: str  # ISO 8601, UTC
    not_after: str  # ISO 8601, UTC
    names: list[str]  # DNS names of subjectAltName (the CN when there is none)
    key_type: str  # "RSA", "EC", "Ed25519" ...
    key_bits: int
    signature_hash: str  # "sha256", "sha1" ... ("" for Ed25519)
    trusted: bool  # chain verifies against the system store or MAILSEC_TLS_CA_FILE
    trust_error: str = ""  # OpenSSL's reason when not trusted
    name_matches: bool = False  # the probed host name matches one of `names` (RFC 6125)
    chain_der_hex: list[str] = field(default_factory=list)  # leaf first, as served (for DANE)


@dataclass
class TlsInfo:
    ok: bool  # a handshake with default (modern) settings worked
    error: str = ""
    version: str = ""  # negotiated, e.g. "TLSv1.3"
    cipher: str = ""
    accepted_versions: list[str] = field(default_factory=list)  # e.g. ["TLSv1.2", "TLSv1.3"]
    certificate: Certificate | None = None
    # Added by the probes: versions whose own handshake the server refused, and those that could
    # not be tried (the connection failed before the handshake: neither accepted nor refused).
    refused_versions: list[str] = field(default_factory=list)
    untested_versions: dict[str, str] = field(default_factory=dict)  # version -> why


@dataclass
class ProbeResult:
    target: Target
    probed_at: str  # ISO 8601, UTC
    duration_ms: int
    reach: Reach
    error: str = ""  # what happened, in words, when reach is not OK (or TLS failed)
    greeting: str = ""  # first line of the banner, bounded
    capabilities_plain: list[str] = field(default_factory=list)  # EHLO/CAPABILITY/CAPA before TLS
    capabilities_tls: list[str] = field(default_factory=list)  # the same after TLS
    starttls_offered: bool | None = None  # None for implicit TLS
    tls: TlsInfo | None = None  # None when TLS was not attempted (not offered / unreachable)
    plaintext_auth: bool = False  # a login could be sent before TLS (or there is no TLS at all)
    plaintext_auth_evidence: str = ""  # e.g. "EHLO before STARTTLS lists AUTH PLAIN LOGIN"
    open_relay: bool | None = None  # smtp only; None when not tested
    relay_evidence: str = ""  # the RCPT reply
    ehlo_name: str = ""  # the name the server gives in its greeting / EHLO reply (smtp)
    ptr_names: list[str] = field(default_factory=list)  # PTR of the address
    fcrdns: bool | None = None  # a PTR name resolves back to the address; None if not tested
    # Added by the probes:
    connections: int = 0  # TCP connections this probe opened (one, plus one per TLS version tried)
    ptr_error: str = ""  # why ptr_names / fcrdns are unknown (a failed DNS lookup)
    ehlo_refused: str = ""  # smtp: EHLO's refusal ("502 ..."); HELO was used, no extensions

    def as_dict(self) -> dict:
        return asdict(self)
