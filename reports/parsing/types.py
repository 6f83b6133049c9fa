"""What the parsers hand to storage: plain data, no database.

Containers (parsing/unpack.py) turn an input into payloads; the parsers
(parsing/aggregate.py, tls.py, failure.py) turn a payload into one of the reports
below or raise Refused with a reason a person can act on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal


class Refused(Exception):
    """An input or payload that is not stored as a report, and why."""

    def __init__(self, reason: str, name: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.name = name  # the payload it concerns, when an input holds several


PayloadKind = Literal["xml", "json", "arf"]


@dataclass
class Payload:
    """One candidate report found inside an input.

    `open()` returns a fresh binary stream of the decompressed bytes, each
    read counted against the decompression cap (it raises Refused past it), so
    a parser may open it twice (for example to retry a malformed document in
    recovering mode). For "arf", `message` is the parsed e-mail message.
    """

    name: str
    kind: PayloadKind
    open: Callable[[], BinaryIO]
    message: object | None = None


@dataclass
class AggregateMeta:
    org_name: str
    email: str
    extra_contact_info: str
    report_id: str
    begin: dt.datetime
    end: dt.datetime
    domain: str
    version: str = ""
    generator: str = ""
    errors: list[str] = field(default_factory=list)
    adkim: str = ""
    aspf: str = ""
    p: str = ""
    sp: str = ""
    np: str = ""
    pct: int | None = None
    fo: str = ""
    testing: str = ""
    discovery_method: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AggregateRecord:
    source_ip: str
    count: int
    disposition: str
    dkim: str
    spf: str
    header_from: str
    envelope_from: str = ""
    envelope_to: str = ""
    # [{"type": "forwarded", "comment": ""}]
    reasons: list[dict] = field(default_factory=list)
    # [{"domain": "example.com", "selector": "s1", "result": "pass", "human_result": ""}]
    dkim_results: list[dict] = field(default_factory=list)
    # [{"domain": "example.com", "scope": "mfrom", "result": "pass", "human_result": ""}]
    spf_results: list[dict] = field(default_factory=list)


class AggregateReport:
    """A parsed aggregate report: metadata now, records streamed on demand.

    `records()` may be iterated once; it yields AggregateRecord objects as the
    parser reaches them and raises Refused if the rest of the document turns
    out to be bad (storage then rolls the whole report back).
    """

    kind = "aggregate"

    def __init__(self, meta: AggregateMeta, records: Callable[[], Iterator[AggregateRecord]]):
        self.meta = meta
        self._records = records

    def records(self) -> Iterator[AggregateRecord]:
        return self._records()


@dataclass
class TlsPolicy:
    policy_type: str
    policy_domain: str
    policy_strings: list[str]
    mx_hosts: list[str]
    successful: int
    failed: int
    # [{"result-type": ..., "sending-mta-ip": ..., "receiving-mx-hostname": ...,
    #   "receiving-mx-helo": ..., "receiving-ip": ..., "failed-session-count": n,
    #   "additional-information": ..., "failure-reason-code": ...}]
    failure_details: list[dict] = field(default_factory=list)


@dataclass
class TlsReport:
    kind = "tls"
    org_name: str = ""
    contact_info: str = ""
    report_id: str = ""
    begin: dt.datetime | None = None
    end: dt.datetime | None = None
    policies: list[TlsPolicy] = field(default_factory=list)

    @property
    def domain(self) -> str:
        return self.policies[0].policy_domain if self.policies else ""


@dataclass
class FailureReport:
    kind = "failure"
    feedback_type: str = ""
    user_agent: str = ""
    version: str = ""
    arrival_date: dt.datetime | None = None
    source_ip: str = ""
    reported_domain: str = ""
    original_mail_from: str = ""
    original_rcpt_to: str = ""
    original_envelope_id: str = ""
    auth_failure: str = ""
    authentication_results: str = ""
    delivery_result: str = ""
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_identity: str = ""
    spf_dns: str = ""
    identity_alignment: str = ""
    reporting_mta: str = ""
    # Subject, From, To, Date, Message-ID of the sample (headers only, never the body)
    sample_headers: list[tuple[str, str]] = field(default_factory=list)
    org_name: str = ""  # who sent the failure report (From: domain)
    report_id: str = ""  # the failure report message's Message-ID

    @property
    def domain(self) -> str:
        return self.reported_domain


Report = AggregateReport | TlsReport | FailureReport


def open_bytes(data: bytes) -> Callable[[], BinaryIO]:
    """A Payload.open for bytes already in memory."""
    import io

    return lambda: io.BytesIO(data)


__all__ = [
    "AggregateMeta",
    "AggregateRecord",
    "AggregateReport",
    "FailureReport",
    "Payload",
    "Refused",
    "Report",
    "TlsPolicy",
    "TlsReport",
]
