"""DMARC aggregate reports (RFC 7489 appendix C, RFC 9990): one XML payload in, an
AggregateReport out, or Refused saying why.

Reports run to hundreds of megabytes, so the document is streamed: the metadata is read
eagerly, the records are parsed as the consumer asks for them and their elements freed.
Two passes over the bytes:

1. The gate (xmlgate.py): a tree-less look at the first RECOVER_LIMIT bytes that refuses a
   DOCTYPE, checks the root and the nesting, and finds out whether the XML is well-formed.
2. The parse proper: XMLPullParser events for the few container elements, recovering only
   when the gate found a small, malformed but not truncated document. "Truncated" is the
   input ending inside <feedback>, or a closing tag for no open element (a piece cut out):
   recovering either would store a report that silently lost records.

Beyond RECOVER_LIMIT the gate stops; the rest is checked as it streams (a syntax error then
comes from records()), and libxml2's own limit of 256 levels bounds the nesting.

Element names are matched on their local part, so any namespace (or none, or a broken one)
is read the same. Reporters' quirks are accepted; anything that would store wrong numbers,
dates or addresses is refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from collections.abc import Iterator

from lxml import etree

from domains.names import DomainNameError, normalize_domain
from reports.parsing.types import AggregateMeta, AggregateRecord, AggregateReport, Payload, Refused
from reports.parsing.xmlgate import (
    CHUNK,
    DOCTYPE,
    SAFE_PARSING,
    inspect,
    local_name,
    shorten,
    syntax_message,
)

MAX_BUFFERED = 10_000  # records held back while the metadata is still missing
MAX_COUNT = 10**12  # messages per record; anything bigger is a broken counter
MAX_ERRORS = 100
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=2)

# Bounds from the model fields (reports/models.py), so storage never meets an over-long value.
SHORT = 255
LONG = 2000
NAME = 253
WORD = 32

CONTAINERS = (
    "{*}feedback",
    "{*}version",
    "{*}report_metadata",
    "{*}policy_published",
    "{*}record",
)
NO_RECORDS = "the report holds no <record>"


def _vocabulary(*words: str) -> dict[str, str]:
    return {word: word for word in words}


# Values are stripped; words of the RFC vocabulary are lower-cased ("Pass" -> "pass"), anything
# else (SPF "hardfail", DKIM "invalid", "nil") is kept as the reporter wrote it.
DISPOSITIONS = _vocabulary("none", "quarantine", "reject", "pass")
DKIM_RESULTS = _vocabulary("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
SPF_RESULTS = _vocabulary("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
PASS_FAIL = _vocabulary("pass", "fail")
ALIGNMENT = _vocabulary("r", "s")
POLICIES = _vocabulary("none", "quarantine", "reject")
TESTING = _vocabulary("y", "n")
DISCOVERY = _vocabulary("psl", "treewalk")
SCOPES = _vocabulary("helo", "mfrom")


def parse(payload: Payload) -> AggregateReport:
    """Parse one aggregate report payload; raise Refused with a reason a person can act on.

    The metadata is complete on return; records() streams the records and raises Refused if
    the rest of the document turns out to be bad.
    """
    gate = inspect(payload)
    if gate.error is None:
        return _Document(payload, recover=False, warnings=gate.warnings).report()
    error = gate.error
    if gate.truncated:
        raise Refused(f"truncated XML: {error}")
    if not gate.small:
        raise Refused(f"malformed XML: {error} (too large to try recovering it)")
    document = _Document(payload, recover=True, warnings=gate.warnings, recovering_from=error)
    try:
        report = document.report()
    except Refused as exc:
        raise _unrecovered(error, exc) from None
    report.meta.warnings.append(f"malformed XML recovered: {error}")
    return report


def _unrecovered(error: str, refusal: Refused) -> Refused:
    return Refused(f"malformed XML: {error}; recovering it gave no valid report: {refusal}")


# --- the parse proper -------------------------------------------------------------------------


class _Document:
    """One streaming parse of the payload, shared by report() and the records it streams."""

    def __init__(self, payload, *, recover, warnings=(), recovering_from=None):
        self.payload = payload
        self.recovering_from = recovering_from
        self.warnings = list(warnings)
        self.feedback = None  # the <feedback> element, once seen
        self.feedback_closed = False
        # Blank text, comments and PIs carry nothing we read; not building them is faster.
        self.parser = etree.XMLPullParser(
            events=("end",),
            tag=CONTAINERS,
            recover=recover,
            remove_blank_text=True,
            remove_comments=True,
            remove_pis=True,
            **SAFE_PARSING,
        )
        self.number = 0  # records parsed so far

    def report(self) -> AggregateReport:
        """Read up to the first record (buffering records while metadata is still missing)."""
        events = self._events()
        head = _Head()
        buffered: list[AggregateRecord] = []
        for element in events:
            record = self._take(element, head)
            if record is not None:
                buffered.append(record)
                if head.complete:
                    break
                if len(buffered) > MAX_BUFFERED:
                    raise Refused(
                        f"more than {MAX_BUFFERED} records before the report's metadata "
                        "(<report_metadata> and <policy_published>)"
                    )
        else:
            head.check_complete()
        meta = head.meta(self.warnings)
        if not buffered:
            raise Refused(NO_RECORDS)
        return AggregateReport(meta, lambda: self._records(buffered, events, head))

    def _take(self, element, head: _Head) -> AggregateRecord | None:
        """Handle one container's end event; the record, if it was one of ours."""
        name = local_name(element.tag)
        if name == "record":
            return self._record(element)
        if name == "feedback":
            self.feedback_closed = True
        elif name == "version":
            head.version = head.version or _text(element.text, 20)
        elif self._in_feedback(element):
            if name == "report_metadata":
                head.metadata = head.metadata or _metadata(element)
            else:
                head.policy = head.policy or _policy(element)
            self.feedback.remove(element)
        return None

    def _records(self, buffered, events, head) -> Iterator[AggregateRecord]:
        try:
            yield from buffered
            buffered.clear()
            for element in events:
                record = self._take(element, head)
                if record is not None:
                    yield record
        except Refused as exc:
            if self.recovering_from is None:
                raise
            raise _unrecovered(self.recovering_from, exc) from None

    def _record(self, element) -> AggregateRecord | None:
        """The record of a <record> end event, its element (and any before it) freed."""
        if not self._in_feedback(element):
            return None  # a <record> somewhere else (inside an extension) is not ours
        self.number += 1
        record = _record(element, self.number)
        feedback = self.feedback
        while (previous := element.getprevious()) is not None:
            feedback.remove(previous)
        feedback.remove(element)
        return record

    def _in_feedback(self, element) -> bool:
        parent = element.getparent()
        if parent is self.feedback:
            return parent is not None
        if parent is None or local_name(parent.tag) != "feedback" or self.feedback is not None:
            return False
        if parent.getroottree().docinfo.doctype:  # the gate refuses these; never parse one
            raise Refused(DOCTYPE)
        self.feedback = parent
        return True

    def _events(self) -> Iterator:
        parser = self.parser
        with self.payload.open() as stream:
            while chunk := stream.read(CHUNK):
                try:
                    parser.feed(chunk)
                except etree.XMLSyntaxError as exc:
                    raise Refused(f"malformed XML: {syntax_message(exc)}") from None
                for _event, element in parser.read_events():
                    yield element
            try:
                parser.close()
            except etree.XMLSyntaxError as exc:
                if self.feedback_closed:
                    raise Refused(f"malformed XML: {syntax_message(exc)}") from None
                raise Refused(f"truncated XML: {syntax_message(exc)}") from None
            for _event, element in parser.read_events():
                yield element


# --- metadata ---------------------------------------------------------------------------------

METADATA_FIELDS = frozenset({"org_name", "email", "extra_contact_info", "report_id", "generator"})
POLICY_FIELDS = frozenset(
    {"domain", "adkim", "aspf", "p", "sp", "np", "pct", "fo", "testing", "discovery_method"}
)


class _Head:
    """What comes before the records: <version>, <report_metadata>, <policy_published>."""

    def __init__(self):
        self.version = ""
        self.metadata: dict | None = None
        self.policy: dict | None = None

    @property
    def complete(self) -> bool:
        return self.metadata is not None and self.policy is not None

    def check_complete(self) -> None:
        if self.metadata is None:
            raise Refused("the report has no <report_metadata>")
        if self.policy is None:
            raise Refused("the report has no <policy_published>")

    def meta(self, warnings: list[str]) -> AggregateMeta:
        metadata, policy = self.metadata, self.policy
        email = _text(metadata.get("email"), SHORT)
        # An empty org_name is named after the reporter's e-mail domain, as parsedmarc does.
        org_name = _text(metadata.get("org_name"), SHORT) or email.rpartition("@")[2].strip()
        if not org_name:
            raise Refused("the report has no org_name (and no email to name the reporter by)")
        begin = _epoch(metadata.get("begin"), "begin")
        end = _epoch(metadata.get("end"), "end")
        if end < begin:
            raise Refused(f"date_range end ({end:%Y-%m-%d %H:%M}) is before begin")
        return AggregateMeta(
            org_name=org_name,
            email=email,
            extra_contact_info=_text(metadata.get("extra_contact_info"), LONG),
            report_id=_report_id(metadata.get("report_id")),
            begin=begin,
            end=end,
            domain=_policy_domain(policy.get("domain")),
            version=self.version,
            generator=_text(metadata.get("generator"), SHORT),
            errors=metadata["errors"],
            adkim=_word(policy.get("adkim"), ALIGNMENT, 10),
            aspf=_word(policy.get("aspf"), ALIGNMENT, 10),
            p=_word(policy.get("p"), POLICIES, 20),
            sp=_word(policy.get("sp"), POLICIES, 20),
            np=_word(policy.get("np"), POLICIES, 20),
            pct=_pct(policy.get("pct"), warnings),
            fo=_text(policy.get("fo"), 20),
            testing=_word(policy.get("testing"), TESTING, 10),
            discovery_method=_word(policy.get("discovery_method"), DISCOVERY, 20),
            warnings=warnings,
        )


def _metadata(element) -> dict:
    values: dict = {"errors": []}
    for child in element:
        name = local_name(child.tag)
        if name == "date_range":
            for item in child:
                item_name = local_name(item.tag)
                if item_name in ("begin", "end"):
                    values.setdefault(item_name, item.text)
        elif name == "error":
            error = _text(child.text, LONG)
            if error and len(values["errors"]) < MAX_ERRORS:
                values["errors"].append(error)
        elif name in METADATA_FIELDS:
            values.setdefault(name, child.text)
    return values


def _policy(element) -> dict:
    values: dict = {}
    for child in element:
        name = local_name(child.tag)
        if name in POLICY_FIELDS:
            values.setdefault(name, child.text)
    return values


def _report_id(text: str | None) -> str:
    value = _text(text, LONG)
    if value.startswith("<") and value.endswith(">"):  # Message-ID style: <id@host>
        value = value[1:-1].strip()
    if not value:
        raise Refused("the report has no report_id")
    if len(value) > SHORT:
        raise Refused(f"report_id is longer than {SHORT} characters")
    return value


def _policy_domain(text: str | None) -> str:
    value = _text(text, LONG)
    if not value:
        raise Refused("the report has no policy domain (<policy_published><domain>)")
    try:
        return normalize_domain(value)
    except DomainNameError as exc:
        raise Refused(
            f"policy_published domain {shorten(value)!r} is not a domain name: {exc.messages[0]}"
        ) from None


def _epoch(text: str | None, where: str) -> dt.datetime:
    value = _text(text, LONG)
    if not value:
        raise Refused(f"the report has no date_range <{where}>")
    if not (value.isascii() and value.isdigit()):
        raise Refused(
            f"date_range {where} {shorten(value)!r} is not a whole number of seconds since 1970"
        )
    latest = dt.datetime.now(dt.UTC) + CLOCK_SKEW
    if len(value) > 11 or int(value) > latest.timestamp():
        raise Refused(f"date_range {where} {shorten(value)} is in the future")
    moment = dt.datetime.fromtimestamp(int(value), dt.UTC)
    if moment < EARLIEST:
        raise Refused(f"date_range {where} {value} ({moment:%Y-%m-%d}) is before 1990")
    return moment


def _pct(text: str | None, warnings: list[str]) -> int | None:
    value = _text(text, LONG)
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 3 and int(value) <= 100:
        return int(value)
    warnings.append(f"pct {shorten(value)!r} ignored: not a whole number from 0 to 100")
    return None


# --- records: the hot path ----------------------------------------------------------------------
#
# One pass over a record's descendants (iterdescendants() runs in C: about twice as fast as
# nested loops over children), each tag looked up once in KINDS, and the section last entered
# deciding what an ambiguous name means: <dkim> is a result word under <policy_evaluated> but a
# block under <auth_results>; <domain>/<result> belong to the auth result block they are in.

MAX_RESULTS = 100  # reasons, DKIM or SPF results in one record
_ROW, _EVALUATED, _REASON, _IDENTIFIERS, _AUTH, _AUTH_DKIM, _AUTH_SPF = range(7)
_LEAF, _SECTION, _WORD_OR_BLOCK, _AUTH_FIELD, _REASON_START, _REASON_FIELD, _OTHER = range(7)
SECTIONS = {
    "row": _ROW,
    "policy_evaluated": _EVALUATED,
    "identifiers": _IDENTIFIERS,
    "identities": _IDENTIFIERS,  # seen from unipi.it
    "auth_results": _AUTH,
}
LEAVES = ("source_ip", "count", "disposition", "header_from", "envelope_from", "envelope_to")
# tag (with its namespace, as lxml gives it) -> (kind, local name or section)
KINDS: dict[object, tuple[int, object]] = {
    **{name: (_LEAF, name) for name in LEAVES},
    **{name: (_SECTION, section) for name, section in SECTIONS.items()},
    "dkim": (_WORD_OR_BLOCK, "dkim"),
    "spf": (_WORD_OR_BLOCK, "spf"),
    **{name: (_AUTH_FIELD, name) for name in ("domain", "selector", "scope", "result")},
    "human_result": (_AUTH_FIELD, "human_result"),
    "reason": (_REASON_START, "reason"),
    "type": (_REASON_FIELD, "type"),
    "comment": (_REASON_FIELD, "comment"),
}


def _kind(tag: object) -> tuple[int, object]:
    kind = KINDS.get(local_name(tag), (_OTHER, ""))
    if len(KINDS) < 10_000:  # namespaced tags are learnt as they are met
        KINDS[tag] = kind
    return kind


def _record(element, number: int) -> AggregateRecord:
    fields: dict[object, str | None] = {}  # the leaves of <row> and <identifiers> by name
    reasons: list[dict] = []
    dkim_blocks: list[dict] = []
    spf_blocks: list[dict] = []
    section = _ROW
    block: dict = {}
    kinds = KINDS.get
    for child in element.iterdescendants():
        kind, name = kinds(child.tag) or _kind(child.tag)
        if kind == _LEAF:
            fields[name] = child.text
        elif kind == _AUTH_FIELD:
            if section > _AUTH:
                block[name] = child.text
        elif kind == _SECTION:
            section = name
        elif kind == _WORD_OR_BLOCK:
            if section < _AUTH:
                fields[name] = child.text
            else:
                section = _AUTH_DKIM if name == "dkim" else _AUTH_SPF
                block = {}
                (dkim_blocks if name == "dkim" else spf_blocks).append(block)
        elif kind == _REASON_START:
            section = _REASON
            block = {}
            reasons.append(block)
        elif kind == _REASON_FIELD and section == _REASON:
            block[name] = child.text
    return _assemble(fields, reasons, dkim_blocks, spf_blocks, number)


def _assemble(fields: dict, reasons: list, dkim: list, spf: list, number: int) -> AggregateRecord:
    if len(reasons) > MAX_RESULTS or len(dkim) > MAX_RESULTS or len(spf) > MAX_RESULTS:
        raise Refused(f"record {number}: more than {MAX_RESULTS} reasons or DKIM/SPF results")
    get = fields.get
    disposition, dkim_word, spf_word = get("disposition"), get("dkim"), get("spf")
    return AggregateRecord(
        _ip(get("source_ip"), number),
        _count(get("count"), number),
        DISPOSITIONS.get(disposition) or _word(disposition, DISPOSITIONS),
        PASS_FAIL.get(dkim_word) or _word(dkim_word, PASS_FAIL),
        PASS_FAIL.get(spf_word) or _word(spf_word, PASS_FAIL),
        _text(get("header_from"), NAME),
        _text(get("envelope_from"), NAME),
        _text(get("envelope_to"), NAME),
        [reason for reason in map(_reason, reasons) if reason["type"] or reason["comment"]],
        # A result with neither domain nor result (<dkim><domain/><result/></dkim>) says nothing.
        [result for result in map(_dkim, dkim) if result["domain"] or result["result"]],
        [result for result in map(_spf, spf) if result["domain"] or result["result"]],
    )


def _reason(block: dict) -> dict:
    return {"type": _text(block.get("type"), 64), "comment": _text(block.get("comment"), LONG)}


def _dkim(block: dict) -> dict:
    result = block.get("result")
    return {
        "domain": _text(block.get("domain"), NAME),
        "selector": _text(block.get("selector"), 63),
        "result": DKIM_RESULTS.get(result) or _word(result, DKIM_RESULTS),
        "human_result": _text(block.get("human_result"), LONG),
    }


def _spf(block: dict) -> dict:
    result, scope = block.get("result"), block.get("scope")
    return {
        "domain": _text(block.get("domain"), NAME),
        "scope": SCOPES.get(scope) or _word(scope, SCOPES),
        "result": SPF_RESULTS.get(result) or _word(result, SPF_RESULTS),
        "human_result": _text(block.get("human_result"), LONG),
    }


def _ip(text: str | None, number: int) -> str:
    value = text.strip() if text else ""
    try:
        # inet_pton accepts only the canonical dotted quad, and is 7x faster than ipaddress.
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value))
    except (OSError, ValueError):
        pass
    if not value:
        raise Refused(f"record {number}: no source_ip")
    if "%" not in value:  # a scoped address names an interface of the reporter, not a host
        try:
            address = ipaddress.IPv6Address(value)
        except ValueError:
            pass
        else:
            return str(address.ipv4_mapped or address)
    raise Refused(f"record {number}: source_ip {shorten(value)!r} is not an IP address")


_COUNTS: dict[str, int] = {}  # most counts are small numbers seen again and again


def _count(text: str | None, number: int) -> int:
    known = _COUNTS.get(text)
    if known is not None:
        return known
    value = text.strip() if text else ""
    if not (value.isascii() and value.isdigit()):
        raise Refused(
            f"record {number}: count {shorten(value)!r} is not a non-negative whole number"
        )
    if len(value) > 13 or int(value) > MAX_COUNT:
        raise Refused(f"record {number}: count {shorten(value)} is implausibly large")
    if len(_COUNTS) < 10_000:
        _COUNTS[text] = int(value)
    return int(value)


def _word(text: str | None, vocabulary: dict[str, str], limit: int = WORD) -> str:
    if not text:
        return ""
    value = text.strip()
    return vocabulary.get(value) or vocabulary.get(value.lower()) or value[:limit]


def _text(text: str | None, limit: int) -> str:
    return text.strip()[:limit] if text else ""
