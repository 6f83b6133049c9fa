"""The gate every aggregate report passes before it is parsed: a tree-less lxml parse that
refuses a DOCTYPE before anything is declared or expanded, checks the root element and the
nesting depth, and, for a document of at most RECOVER_LIMIT bytes (all of any real report),
finds out whether the XML is well-formed. It has to come first: records are handed to storage
as they are parsed, so a syntax error met after the first record could no longer be answered
by parsing again in recovering mode (aggregate.py decides what to do with what the gate found).

A larger document is never recovered, so the gate reads only its beginning, up to the root
element; the rest is checked as it is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from reports.parsing.streams import read_up_to
from reports.parsing.types import Payload, Refused

# Measured: with larger reads more of the tree is alive between frees, and parsing is slower.
CHUNK = 1 << 16
RECOVER_LIMIT = 2 * 1024 * 1024  # only documents up to this size are parsed again to recover
MAX_DEPTH = 20  # a report needs 7 levels (xs:schema > feedback > record > row > ... > type)
# No entity is ever expanded and nothing is fetched; the gate refuses a DOCTYPE outright.
SAFE_PARSING = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
}
XSD_SCHEMA = "{http://www.w3.org/2001/XMLSchema}schema"
DOCTYPE = "XML with a DOCTYPE (entity declarations are not allowed in reports)"


_LOCAL_NAMES: dict[object, str] = {}


def local_name(tag: object) -> str:
    """The local part of an lxml tag ("{ns}row" -> "row"); "" for comments and PIs."""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(_LOCAL_NAMES) < 10_000:  # hostile documents may invent any number of names
            _LOCAL_NAMES[tag] = name
    return name


@dataclass
class _Inspection:
    error: str | None = None
    truncated: bool = False
    small: bool = True
    warnings: tuple[str, ...] = ()


class _Gate:
    """lxml parser target: sees the prolog and every element's start and end, builds nothing."""

    def __init__(self):
        self.open: list[str] = []  # the tags of the elements open now
        self.started = False
        self.wrapped = False  # the report sits inside an <xs:schema> (IKEA)
        self.feedback_depth = 0
        self.feedback_closed = False

    def doctype(self, name, pubid, system):
        if (name or "").lower() == "html":
            raise Refused("an HTML page, not a DMARC aggregate report")
        raise Refused(DOCTYPE)

    def start(self, tag, attrib):
        self.open.append(tag)
        depth = len(self.open)
        if depth > MAX_DEPTH:
            raise Refused(f"XML nested more than {MAX_DEPTH} levels deep")
        if depth == 1:
            self.started = True
            if local_name(tag) == "feedback":
                self.feedback_depth = 1
            elif tag == XSD_SCHEMA:
                self.wrapped = True
            else:
                raise Refused(f"XML but not a DMARC aggregate report (root <{local_name(tag)}>)")
        elif depth == 2 and self.wrapped and not self.feedback_depth:
            if local_name(tag) != "feedback":
                raise Refused("XML but not a DMARC aggregate report (root <schema>)")
            self.feedback_depth = 2

    def end(self, tag):
        if len(self.open) == self.feedback_depth:
            self.feedback_closed = True
        self.open.pop()

    def close(self):
        return None

    def lost_content(self, exc: etree.XMLSyntaxError) -> bool:
        """Whether the error is a closing tag that closes no open element: a piece of the
        document is missing (dmarcrua's wp.pl sample jumps from <policy_published> into the
        middle of a record). Recovering would silently drop records, so it is not tried."""
        if exc.code != etree.ErrorTypes.ERR_TAG_NAME_MISMATCH:
            return False
        # libxml2: "Opening and ending tag mismatch: <open> line <n> and <closing>"
        closing = (exc.msg or "").rpartition(" and ")[2].partition(",")[0].strip()
        return bool(closing) and closing not in {local_name(tag) for tag in self.open}


def inspect(payload: Payload) -> _Inspection:
    small = _is_small(payload)
    gate = _Gate()
    parser = etree.XMLParser(target=gate, **SAFE_PARSING)
    size = 0
    blank = True
    with payload.open() as stream:
        while size <= RECOVER_LIMIT:
            if gate.started and not small:
                break  # the prolog and the root are checked; recovering is out of the question
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            blank = blank and not chunk.lstrip(b"\xef\xbb\xbf \t\r\n")
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError as exc:
                _not_xml(gate, exc, blank)
                if gate.lost_content(exc):
                    missing = f"{syntax_message(exc)} (part of the document is missing)"
                    return _Inspection(missing, truncated=True)
                return _Inspection(syntax_message(exc), small=small)
        if not small:
            # Larger than anything we would recover: the rest is checked as it is parsed.
            if not gate.started:
                raise Refused(f"no XML element in the first {RECOVER_LIMIT} bytes")
            return _Inspection(warnings=_gate_warnings(gate))
        if blank:
            raise Refused("empty document")
        try:
            parser.close()
        except etree.XMLSyntaxError as exc:
            _not_xml(gate, exc, blank)
            truncated = not gate.feedback_closed
            warnings = _gate_warnings(gate)
            return _Inspection(syntax_message(exc), truncated=truncated, warnings=warnings)
    return _Inspection(warnings=_gate_warnings(gate))


def _is_small(payload: Payload) -> bool:
    """Whether the payload holds at most RECOVER_LIMIT bytes (read, not parsed)."""
    with payload.open() as stream:
        return len(read_up_to(stream, RECOVER_LIMIT + 1)) <= RECOVER_LIMIT


def _not_xml(gate: _Gate, exc: etree.XMLSyntaxError, blank: bool) -> None:
    if blank:
        raise Refused("empty document")
    if not gate.started:
        raise Refused(f"not XML: {syntax_message(exc)}")


def _gate_warnings(gate: _Gate) -> tuple[str, ...]:
    return ("the report is wrapped in an <xs:schema> element",) if gate.wrapped else ()


def syntax_message(exc: etree.XMLSyntaxError) -> str:
    return shorten(exc.msg or str(exc), 200)


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
