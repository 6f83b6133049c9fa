"""DMARC failure reports: an ARF e-mail (RFC 5965, RFC 6591) in, a FailureReport out.

The report's `message/feedback-report` part gives the fields. The copy of the failed message
(`message/rfc822` or `text/rfc822-headers`) contributes a few of its headers and never its body:
failure reports carry other people's mail, and storing only what identifies the message keeps
the privacy exposure small. Exim's text-only "DMARC Forensic Report" has no ARF part; its
fields are read from the text instead.

The message may come parsed with the compat32 or the default email policy. Header values are
therefore always read with `raw_items()` (the raw text under both policies) and decoded here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.message
import email.parser
import email.policy
import email.utils
import ipaddress
import itertools
import quopri
import re
from collections.abc import Iterator

from domains.names import DomainNameError, normalize_domain
from reports.parsing.types import FailureReport, Payload, Refused

FEEDBACK_TYPE = "message/feedback-report"
SAMPLE_TYPES = (
    "message/rfc822",
    "text/rfc822-headers",
    "message/rfc822-headers",
    "message/global",
    "message/global-headers",
)
# Headers of the failed message worth showing: who, when, which message, how it was signed.
SAMPLE_HEADERS = {
    name.lower(): name
    for name in (
        "Subject",
        "From",
        "To",
        "Cc",
        "Date",
        "Message-ID",
        "Return-Path",
        "Reply-To",
        "DKIM-Signature",
        "Authentication-Results",
        "Received",
    )
}
MAX_SAME_HEADER = 3  # the first Received lines say where it came from; the rest is noise
MAX_SAMPLE_HEADERS = 30
MAX_VALUE = 2000
MAX_PARTS = 100
MAX_DEPTH = 6
MAX_TEXT_SCAN = 65536
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=2)
# (FailureReport attribute, ARF field, longest value storage holds)
PLAIN_FIELDS = (
    ("user_agent", "user-agent", 255),
    ("version", "version", 20),
    ("original_envelope_id", "original-envelope-id", 255),
    ("delivery_result", "delivery-result", 40),
    ("dkim_selector", "dkim-selector", 63),
    ("dkim_identity", "dkim-identity", 320),
    ("spf_dns", "spf-dns", MAX_VALUE),
    ("identity_alignment", "identity-alignment", 100),
    ("reporting_mta", "reporting-mta", 255),
)
EXIM_LINE = re.compile(
    r"^\s*(sender domain|sender ip address|received date|spf alignment|dkim alignment"
    r"|dmarc results)\s*:[ \t]*(.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
EXIM_HEADERS_INTRO = re.compile(r"^-+ This is a copy of the headers.*$", re.MULTILINE)
EXIM_DISPOSITION = {"accept": "delivered", "quarantine": "spam", "reject": "reject"}
WHITESPACE = re.compile(r"\s+")
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
ADJACENT_WORDS = re.compile(r"(?<=\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?)")  # RFC 2047 6.2


def parse(payload: Payload) -> FailureReport:
    """Parse one failure-report e-mail; raise Refused with a reason a person can act on."""
    message = _message(payload)
    parts = list(itertools.islice(_parts(message, 0), MAX_PARTS))
    feedback = next((p for p in parts if p.get_content_type() == FEEDBACK_TYPE), None)
    if feedback is not None:
        report = _from_arf(_fields(_inner_headers(feedback)))
        sample = next((p for p in parts if p.get_content_type() in SAMPLE_TYPES), None)
        if sample is not None:
            report.sample_headers = _sample_headers(_inner_headers(sample))
    else:
        report = _from_exim_text(parts)
    report.reported_domain = report.reported_domain or _fallback_domain(report)
    headers = _fields(list(message.raw_items()))
    report.org_name = _address_domain(_first(headers, "from"))[:255]
    report.report_id = _strip_angles(_first(headers, "message-id"))[:255]
    return report


def _message(payload: Payload) -> email.message.Message:
    if isinstance(payload.message, email.message.Message):
        return payload.message
    with payload.open() as stream:
        return email.message_from_bytes(stream.read(), policy=email.policy.compat32)


def _parts(part: email.message.Message, depth: int) -> Iterator[email.message.Message]:
    """The leaf parts of the report, without looking inside attached messages.

    A sample message is itself mail and may hold anything, even another ARF report, so only
    the report's own MIME tree is searched.
    """
    if not part.is_multipart() or part.get_content_maintype() == "message":
        yield part
        return
    if depth >= MAX_DEPTH:
        return
    for child in part.get_payload():
        yield from _parts(child, depth + 1)


def _inner_headers(part: email.message.Message) -> list[tuple[str, str]]:
    """The header block carried by a message/* or text/rfc822-headers part, as raw pairs."""
    inner = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(inner, list):
        if not inner:
            return []
        if encoding not in ("base64", "quoted-printable"):
            return list(inner[0].raw_items())
        # The parser split an encoded message/* part as if it were plain text; put it back
        # together and decode it (NetEase sends its feedback-report part in base64).
        sub = inner[0]
        body = sub.get_payload()
        text = "".join(f"{name}: {value}\n" for name, value in sub.raw_items())
        text += ("\n" if text else "") + (body if isinstance(body, str) else "")
        data = _decode_transfer(text, encoding)
    else:
        data = part.get_payload(decode=True) or b""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return list(parser.parsebytes(data).raw_items())


def _decode_transfer(text: str, encoding: str) -> bytes:
    raw = text.encode("ascii", "replace")
    if encoding == "quoted-printable":
        return quopri.decodestring(raw)
    # Lenient like mail clients: stray characters are skipped and a lone trailing character
    # (never a whole byte) is dropped, so the decoder cannot fail.
    compact = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
    if len(compact) % 4 == 1:
        compact = compact[:-1]
    return base64.b64decode(compact + b"=" * (-len(compact) % 4))


def _clean(raw: str) -> str:
    """A header value as text: unfolded, RFC 2047 words decoded, storable in PostgreSQL."""
    try:
        value = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        value = raw.encode("utf-8", "replace").decode("utf-8")
    if "=?" in value:
        value = ENCODED_WORD.sub(_decode_word, ADJACENT_WORDS.sub("", value))
    return WHITESPACE.sub(" ", value.replace("\x00", "")).strip()


def _decode_word(match: re.Match) -> str:
    # Decoded in place rather than with email.header.make_header, which puts spaces around
    # every decoded word (a display name quoted around an encoded word came out '" Name "').
    charset, kind, text = match.groups()
    data = text.encode("ascii", "replace")
    try:
        if kind in "bB":
            data = base64.b64decode(data + b"=" * (-len(data) % 4))
        else:
            data = quopri.decodestring(data, header=True)
        return data.decode(charset.split("*", 1)[0], "replace")
    except (binascii.Error, ValueError, LookupError):
        return match.group(0)


def _fields(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        fields.setdefault(name.strip().lower(), []).append(_clean(value))
    return fields


def _first(fields: dict[str, list[str]], name: str) -> str:
    return next((value for value in fields.get(name, []) if value), "")


def _from_arf(fields: dict[str, list[str]]) -> FailureReport:
    # Checked first: an abuse report's other fields are not worth a refusal of their own.
    feedback_type = _first(fields, "feedback-type").lower()
    if not feedback_type:
        raise Refused("the ARF feedback-report part has no Feedback-Type")
    if feedback_type != "auth-failure":
        raise Refused(
            f"ARF feedback type {feedback_type[:40]!r} is not an authentication failure report"
        )
    report = FailureReport(
        feedback_type=feedback_type,
        # Received-Date is the name an early draft used (still sent by some filters).
        arrival_date=_date(_first(fields, "arrival-date") or _first(fields, "received-date")),
        source_ip=_source_ip(_first(fields, "source-ip")),
        original_mail_from=_strip_angles(_first(fields, "original-mail-from"))[:320],
        original_rcpt_to=", ".join(
            _strip_angles(value) for value in fields.get("original-rcpt-to", []) if value
        )[: MAX_VALUE * 2],
        auth_failure=", ".join(value.lower() for value in fields.get("auth-failure", []) if value)[
            :100
        ],
        authentication_results="\n".join(
            value for value in fields.get("authentication-results", []) if value
        )[: MAX_VALUE * 2],
        dkim_domain=_first(fields, "dkim-domain").lower().removesuffix(".")[:253],
    )
    for attribute, name, limit in PLAIN_FIELDS:
        setattr(report, attribute, _first(fields, name)[:limit])
    reported = _first(fields, "reported-domain")
    if reported:
        report.reported_domain = _domain(reported, "Reported-Domain")
    return report


def _from_exim_text(parts: list[email.message.Message]) -> FailureReport:
    for part in parts:
        if part.get_content_type() != "text/plain":
            continue
        text = _part_text(part)
        found = {key.lower(): value for key, value in EXIM_LINE.findall(text)}
        if "sender domain" in found or "sender ip address" in found:
            return _exim_report(found, text)
    raise Refused("no ARF feedback-report part")


def _exim_report(found: dict[str, str], text: str) -> FailureReport:
    aligned = [
        name
        for name in ("spf", "dkim")
        if found.get(f"{name} alignment", "").lower() in ("yes", "pass", "true")
    ]
    has_alignment = "spf alignment" in found or "dkim alignment" in found
    disposition = found.get("dmarc results", "").rsplit(",", 1)[-1].strip().lower()
    report = FailureReport(
        feedback_type="auth-failure",
        auth_failure="dmarc",  # the text says the message failed the DMARC policy
        arrival_date=_date(found.get("received date", "")),
        source_ip=_source_ip(found.get("sender ip address", "")),
        identity_alignment=",".join(aligned) or ("none" if has_alignment else ""),
        delivery_result=EXIM_DISPOSITION.get(disposition, ""),
    )
    if found.get("sender domain"):
        report.reported_domain = _domain(found["sender domain"], "Sender Domain")
    intro = EXIM_HEADERS_INTRO.search(text)
    if intro:
        block = text[intro.end() :].lstrip("\r\n")
        parser = email.parser.HeaderParser(policy=email.policy.compat32)
        report.sample_headers = _sample_headers(list(parser.parsestr(block).raw_items()))
    return report


def _part_text(part: email.message.Message) -> str:
    data = (part.get_payload(decode=True) or b"")[:MAX_TEXT_SCAN]
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _sample_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for name, raw in headers:
        key = name.strip().lower()
        if key not in SAMPLE_HEADERS or seen.get(key, 0) >= MAX_SAME_HEADER:
            continue
        seen[key] = seen.get(key, 0) + 1
        kept.append((SAMPLE_HEADERS[key], _clean(raw)[:MAX_VALUE]))
        if len(kept) >= MAX_SAMPLE_HEADERS:
            break
    return kept


def _fallback_domain(report: FailureReport) -> str:
    """No Reported-Domain: the sample's From domain, else the envelope sender's domain."""
    sample_from = next((value for name, value in report.sample_headers if name == "From"), "")
    for address in (sample_from, report.original_mail_from):
        try:
            return normalize_domain(_address_domain(address))
        except DomainNameError:
            continue
    raise Refused("no reported domain")


def _domain(text: str, field: str) -> str:
    try:
        return normalize_domain(text)
    except DomainNameError as exc:
        raise Refused(f"{field} {text[:80]!r} is not a domain name: {exc.messages[0]}") from None


def _address_domain(value: str) -> str:
    address = email.utils.parseaddr(value)[1] if value else ""
    return address.rpartition("@")[2].strip().lower() if "@" in address else ""


def _source_ip(text: str) -> str:
    # "148.163.85.135 (sainay.interpublication.org)": the address, then an optional comment.
    token = text.split("(", 1)[0].strip().strip("[]")
    if not token:
        return ""
    candidate = token[5:] if token.lower().startswith("ipv6:") else token
    try:
        if "%" in candidate:  # a scoped address names an interface, not a sending host
            raise ValueError(candidate)
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        raise Refused(f"Source-IP {text[:80]!r} is not an IP address") from None


def _date(text: str) -> dt.datetime | None:
    """An RFC 5322 date as an aware datetime; None when absent or unreadable (it is
    informative only, and a bad one should not cost the whole report)."""
    if not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
        if moment.tzinfo is None:  # "-0000": the time is UTC, the zone unknown
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(dt.UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if not EARLIEST <= moment <= dt.datetime.now(dt.UTC) + CLOCK_SKEW:
        return None
    return moment


def _strip_angles(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        return value[1:-1].strip()
    return value
