"""DMARC aggregate reports (RFC 7489 appendix C, RFC 9990): one XML payload in, an
AggregateReport out, or Refused saying why.

Reports run to hundreds of megabytes, so the document is streamed: the metadata is read
eagerly, the records are parsed as the consumer asks for them and their elements freed.
Two passes over the bytes:

1. The gate (xmlgate.py): a tree-less look that refuses a DOCTYPE and checks the root and
   the nesting; for a document of at most RECOVER_LIMIT bytes, it also finds out whether the
   XML is well-formed.
2. The parse proper: an XMLPullParser whose only event is the start of <feedback>; after
   each chunk, records.drain() reads the children of <feedback> completed so far (in C) and
   frees them. It recovers only when the gate found a small, malformed but not truncated
   document. "Truncated" is the input ending inside <feedback>, or a closing tag for no open
   element (a piece cut out): recovering either would store a report that silently lost
   records.

A larger document is gated on its beginning only; the rest is checked as it streams (a syntax
error then comes from records()), and libxml2's own limit of 256 levels bounds the nesting.

Element names are matched on their local part, so any namespace (or none, or a broken one)
is read the same. Reporters' quirks are accepted; anything that would store wrong numbers,
dates or addresses is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from lxml import etree

from domains.names import DomainNameError, normalize_domain
from reports.parsing.records import LONG, SHORT, drain, vocabulary
from reports.parsing.records import text as _text
from reports.parsing.records import word as _word
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
# lxml holds a child of <feedback> whole until it ends; a record takes a few hundred bytes,
# so one running on for megabytes is an attack on memory (libxml2 takes ~10x the input).
MAX_CHILD_BYTES = 4 * 2**20
# A report's <feedback> holds a handful of elements besides its records (<version>, the
# metadata, the policy, extensions); millions of them cost seconds of CPU each to hand to
# Python, for nothing: past this many the input is refused.
MAX_OTHER_CHILDREN = 1000
MAX_ERRORS = 100
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
CLOCK_SKEW = dt.timedelta(days=2)

FEEDBACK = "{*}feedback"
NO_RECORDS = "the report holds no <record>"


# The record's own vocabularies are in records.pyx.
ALIGNMENT = vocabulary("r", "s")
POLICIES = vocabulary("none", "quarantine", "reject")
TESTING = vocabulary("y", "n")
DISCOVERY = vocabulary("psl", "treewalk")


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
        # One event, the start of <feedback>: its children are read (and freed) by
        # records.drain() in C as they complete, so no other element ever gets a Python
        # object. (Asking for end events too would make lxml take the GIL at the end of every
        # element: a tenth of the time.) Blank text, comments and PIs carry nothing we read;
        # not building them is faster.
        self.parser = etree.XMLPullParser(
            events=("start",),
            tag=FEEDBACK,
            recover=recover,
            remove_blank_text=True,
            remove_comments=True,
            remove_pis=True,
            **SAFE_PARSING,
        )
        self.number = 0  # records parsed so far
        self.others = 0  # children of <feedback> that are not records

    def report(self) -> AggregateReport:
        """Read up to the first record (buffering records while metadata is still missing)."""
        items = self._items()
        head = _Head()
        buffered: list[AggregateRecord] = []
        for item in items:
            if type(item) is not AggregateRecord:
                self._read_head(item, head)
                continue
            buffered.append(item)
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
        return AggregateReport(meta, lambda: self._records(buffered, items, head))

    def _records(self, buffered, items, head) -> Iterator[AggregateRecord]:
        try:
            yield from buffered
            buffered.clear()
            for item in items:
                if type(item) is AggregateRecord:
                    yield item
                else:
                    self._read_head(item, head)
        except Refused as exc:
            if self.recovering_from is None:
                raise
            raise _unrecovered(self.recovering_from, exc) from None

    def _read_head(self, element, head: _Head) -> None:
        self.others += 1
        if self.others > MAX_OTHER_CHILDREN:
            raise Refused(
                f"more than {MAX_OTHER_CHILDREN} elements in <feedback> outside any <record> "
                "(a report has a handful)"
            )
        _read_head(element, head)

    def _items(self) -> Iterator:
        """The children of <feedback> in document order: an AggregateRecord for each record,
        the element for anything else."""
        parser = self.parser
        unfinished = 0  # bytes read since a child of <feedback> was last finished
        with self.payload.open() as stream:
            while chunk := stream.read(CHUNK):
                try:
                    parser.feed(chunk)
                except etree.XMLSyntaxError as exc:
                    raise Refused(f"malformed XML: {syntax_message(exc)}") from None
                items = self._drain(parser.read_events(), final=False)
                unfinished = 0 if items else unfinished + len(chunk)
                if unfinished > MAX_CHILD_BYTES:
                    raise Refused(
                        f"an element of more than {MAX_CHILD_BYTES // 2**20} MB in the report "
                        "(a record takes a few hundred bytes)"
                    )
                yield from items
            try:
                parser.close()
            except etree.XMLSyntaxError as exc:
                # Content after the root element is malformed; any other error at the end of
                # the input means the document stops inside it.
                if exc.code == etree.ErrorTypes.ERR_DOCUMENT_END:
                    raise Refused(f"malformed XML: {syntax_message(exc)}") from None
                raise Refused(f"truncated XML: {syntax_message(exc)}") from None
            yield from self._drain(parser.read_events(), final=True)

    def _drain(self, events, *, final: bool) -> list:
        for _event, element in events:
            if self.feedback is None:
                # The outermost <feedback> (the root, or the child of an <xs:schema> root: the
                # gate saw to that). A <feedback> inside it is not ours.
                if element.getroottree().docinfo.doctype:  # the gate refuses these
                    raise Refused(DOCTYPE)
                self.feedback = element
        if self.feedback is None:
            return []
        items, self.number = drain(self.feedback, final, self.number)
        return items


def _read_head(element, head: _Head) -> None:
    """A child of <feedback> other than a record: the metadata, or something to ignore."""
    name = local_name(element.tag)
    if name == "version":
        head.version = head.version or _text(element.text, 20)
    elif name == "report_metadata":
        head.metadata = head.metadata or _metadata(element)
    elif name == "policy_published":
        head.policy = head.policy or _policy(element)


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
