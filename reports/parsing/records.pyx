# cython: language_level=3
"""The hot path of aggregate reports: the parsed children of <feedback> in, AggregateRecords
out.

A million-record report spends most of its time here, so this module is compiled (Cython,
against lxml's public C API, https://lxml.de/capi.html): drain() takes the children of
<feedback> that lxml has finished parsing, walks each record over libxml2's own nodes (each
element name compared in C, a Python string made only for the texts that are kept) and frees
them; only the few other children (the metadata) get Python objects. lxml still does all the
parsing; nothing here reads XML syntax.

What a record means, and what is refused, is written once, here; aggregate.py drives the
parse and reads the metadata.

- Element names are matched on their local part (libxml2 keeps the namespace apart), so any
  namespace, or none, reads the same.
- The section last entered decides what an ambiguous name means: <dkim> is a result word
  under <policy_evaluated> but a block under <auth_results>; <domain>/<result> belong to the
  auth result block they are in; <type>/<comment> to the <reason> they are in.
- A text is an element's leading text and CDATA, as lxml's `.text` gives it.
"""

import ipaddress

from cpython.unicode cimport Py_UNICODE_ISSPACE, PyUnicode_DecodeUTF8
from libc.string cimport strcmp, strlen
from lxml.includes cimport tree
from lxml.includes.etreepublic cimport (
    LXML_VERSION_STRING,
    _Element,
    _isElement,
    elementFactory,
    import_lxml__etree,
)

from reports.parsing.types import AggregateRecord, Refused
from reports.parsing.xmlgate import shorten


cdef extern from "arpa/inet.h":
    int AF_INET
    int inet_pton(int af, const char* src, void* dst)

import_lxml__etree()

import lxml

# The element layout this module reads is that of the lxml it was compiled against.
BUILT_FOR_LXML = (<bytes>LXML_VERSION_STRING).decode()
if lxml.__version__ != BUILT_FOR_LXML:
    raise ImportError(
        f"reports.parsing.records was compiled against lxml {BUILT_FOR_LXML} but lxml "
        f"{lxml.__version__} is installed: reinstall mailsec (make run / make test do)"
    )

# Bounds from the model fields (reports/models.py), so storage never meets an over-long value.
SHORT = 255
LONG = 2000
NAME = 253
WORD = 32
MAX_COUNT = 10**12  # messages per record; anything bigger is a broken counter
MAX_RESULTS = 100  # reasons, DKIM or SPF results in one record


def vocabulary(*words):
    """A vocabulary for word(): each word maps to itself."""
    return {word: word for word in words}


# Values are stripped; words of the RFC vocabulary are lower-cased ("Pass" -> "pass"), anything
# else (SPF "hardfail", DKIM "invalid", "nil") is kept as the reporter wrote it.
DISPOSITIONS = vocabulary("none", "quarantine", "reject", "pass")
DKIM_RESULTS = vocabulary("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
SPF_RESULTS = vocabulary("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
PASS_FAIL = vocabulary("pass", "fail")
SCOPES = vocabulary("helo", "mfrom")


cpdef str text(object value, Py_ssize_t limit):
    """A value stripped and cut to `limit` characters; "" for none."""
    if not value:
        return ""
    cdef str string = value
    cdef Py_ssize_t size = len(string)
    if (size <= limit and not Py_UNICODE_ISSPACE(string[0])
            and not Py_UNICODE_ISSPACE(string[size - 1])):
        return string  # the common case: nothing to strip or cut
    return string.strip()[:limit]


cpdef str word(object value, dict vocabulary, Py_ssize_t limit=WORD):
    """A value of a vocabulary, lower-cased if that makes it one; else kept as written."""
    if not value:
        return ""
    stripped = value.strip()
    return vocabulary.get(stripped) or vocabulary.get(stripped.lower()) or stripped[:limit]


# --- walking libxml2's nodes -----------------------------------------------------------------

# What an element name means inside a record.
cdef enum Name:
    OTHER, SOURCE_IP, COUNT, DISPOSITION, HEADER_FROM, ENVELOPE_FROM, ENVELOPE_TO,
    DKIM, SPF, ROW, POLICY_EVALUATED, IDENTIFIERS, AUTH_RESULTS,
    DOMAIN, SELECTOR, SCOPE, RESULT, HUMAN_RESULT, REASON, TYPE, COMMENT

# The section last entered; the order matters (below AUTH: <dkim>/<spf> are result words).
cdef enum Section:
    IN_ROW, IN_EVALUATED, IN_REASON, IN_IDENTIFIERS, IN_AUTH, IN_AUTH_DKIM, IN_AUTH_SPF

# Auth result blocks are lists [domain, selector or scope, result, human_result]; reasons
# are [type, comment].
cdef enum Slot:
    B_DOMAIN, B_SELECTOR_OR_SCOPE, B_RESULT, B_HUMAN_RESULT


cdef Name _name(const char* name) noexcept:
    cdef char first = name[0]
    if first == b"s":
        if strcmp(name, b"source_ip") == 0:
            return SOURCE_IP
        if strcmp(name, b"spf") == 0:
            return SPF
        if strcmp(name, b"selector") == 0:
            return SELECTOR
        if strcmp(name, b"scope") == 0:
            return SCOPE
    elif first == b"d":
        if strcmp(name, b"dkim") == 0:
            return DKIM
        if strcmp(name, b"domain") == 0:
            return DOMAIN
        if strcmp(name, b"disposition") == 0:
            return DISPOSITION
    elif first == b"r":
        if strcmp(name, b"result") == 0:
            return RESULT
        if strcmp(name, b"row") == 0:
            return ROW
        if strcmp(name, b"reason") == 0:
            return REASON
    elif first == b"c":
        if strcmp(name, b"count") == 0:
            return COUNT
        if strcmp(name, b"comment") == 0:
            return COMMENT
    elif first == b"e":
        if strcmp(name, b"envelope_from") == 0:
            return ENVELOPE_FROM
        if strcmp(name, b"envelope_to") == 0:
            return ENVELOPE_TO
    elif first == b"h":
        if strcmp(name, b"header_from") == 0:
            return HEADER_FROM
        if strcmp(name, b"human_result") == 0:
            return HUMAN_RESULT
    elif first == b"p":
        if strcmp(name, b"policy_evaluated") == 0:
            return POLICY_EVALUATED
    elif first == b"i":
        # <identities> seen from unipi.it
        if strcmp(name, b"identifiers") == 0 or strcmp(name, b"identities") == 0:
            return IDENTIFIERS
    elif first == b"a":
        if strcmp(name, b"auth_results") == 0:
            return AUTH_RESULTS
    elif first == b"t":
        if strcmp(name, b"type") == 0:
            return TYPE
    return OTHER


cdef inline bint _is_text(tree.xmlNode* node) noexcept:
    return node is not NULL and (
        node.type == tree.XML_TEXT_NODE or node.type == tree.XML_CDATA_SECTION_NODE
    )


cdef str _decoded(tree.xmlNode* node):
    cdef const char* content = <const char*>node.content
    if content is NULL:
        return ""
    return PyUnicode_DecodeUTF8(content, strlen(content), NULL)  # libxml2 holds UTF-8


cdef object _text_of(tree.xmlNode* element):
    """The element's leading text and CDATA nodes, as lxml's .text; None when there are none."""
    cdef tree.xmlNode* node = element.children
    if not _is_text(node):
        return None
    if not _is_text(node.next):
        return _decoded(node)
    parts = []
    while _is_text(node):
        parts.append(_decoded(node))
        node = node.next
    return "".join(parts)


def drain(_Element feedback, bint final, Py_ssize_t number):
    """Take the complete children of <feedback> out of the tree, in document order.

    Returns (items, number): an AggregateRecord for each <record> (numbered on from
    `number`), the element itself for any other child (metadata, extensions), and the number
    of the last record. Children are complete once another follows them; with `final` (the
    document is parsed) the last one is too. Taking them out frees them, so the tree never
    holds more than the records of one chunk.
    """
    cdef tree.xmlNode* node = feedback._c_node.children
    cdef tree.xmlNode* last = NULL if final else feedback._c_node.last
    cdef list items = []
    cdef Py_ssize_t taken = 0  # children as lxml counts them (elements, comments, PIs)
    while node is not NULL and node is not last:
        if _isElement(node):
            taken += 1
            if node.type == tree.XML_ELEMENT_NODE:
                if strcmp(<const char*>node.name, b"record") == 0:
                    number += 1
                    items.append(_record(node, number))
                else:
                    items.append(elementFactory(feedback._doc, node))
        node = node.next
    if taken:
        del feedback[:taken]  # lxml frees them (and their tails); elements kept above live on
    return items, number


cdef object _record(tree.xmlNode* top, Py_ssize_t number):
    """The AggregateRecord of a <record> node; Refused if it would store wrong values."""
    cdef tree.xmlNode* node = top.children
    cdef Section section = IN_ROW
    cdef Name name
    cdef list block = None
    source_ip = count = disposition = dkim = spf = None
    header_from = envelope_from = envelope_to = None
    cdef list reasons = []
    cdef list dkim_blocks = []
    cdef list spf_blocks = []
    # Depth-first over the element nodes below `top`, in document order.
    while node is not NULL:
        if node.type == tree.XML_ELEMENT_NODE:
            name = _name(<const char*>node.name)
            if name == SOURCE_IP:
                source_ip = _text_of(node)
            elif name == COUNT:
                count = _text_of(node)
            elif name == DISPOSITION:
                disposition = _text_of(node)
            elif name == HEADER_FROM:
                header_from = _text_of(node)
            elif name == ENVELOPE_FROM:
                envelope_from = _text_of(node)
            elif name == ENVELOPE_TO:
                envelope_to = _text_of(node)
            elif name == DOMAIN or name == SELECTOR or name == SCOPE or name == RESULT \
                    or name == HUMAN_RESULT:
                if section > IN_AUTH:
                    if name == DOMAIN:
                        block[B_DOMAIN] = _text_of(node)
                    elif name == RESULT:
                        block[B_RESULT] = _text_of(node)
                    elif name == HUMAN_RESULT:
                        block[B_HUMAN_RESULT] = _text_of(node)
                    elif name == SELECTOR and section == IN_AUTH_DKIM:
                        block[B_SELECTOR_OR_SCOPE] = _text_of(node)
                    elif name == SCOPE and section == IN_AUTH_SPF:
                        block[B_SELECTOR_OR_SCOPE] = _text_of(node)
            elif name == DKIM or name == SPF:
                if section < IN_AUTH:
                    if name == DKIM:
                        dkim = _text_of(node)
                    else:
                        spf = _text_of(node)
                else:
                    block = [None, None, None, None]
                    if name == DKIM:
                        section = IN_AUTH_DKIM
                        dkim_blocks.append(block)
                    else:
                        section = IN_AUTH_SPF
                        spf_blocks.append(block)
                    if len(dkim_blocks) > MAX_RESULTS or len(spf_blocks) > MAX_RESULTS:
                        raise _too_many(number)
            elif name == ROW:
                section = IN_ROW
            elif name == POLICY_EVALUATED:
                section = IN_EVALUATED
            elif name == IDENTIFIERS:
                section = IN_IDENTIFIERS
            elif name == AUTH_RESULTS:
                section = IN_AUTH
            elif name == REASON:
                section = IN_REASON
                block = [None, None]
                reasons.append(block)
                if len(reasons) > MAX_RESULTS:
                    raise _too_many(number)
            elif name == TYPE or name == COMMENT:
                if section == IN_REASON:
                    block[0 if name == TYPE else 1] = _text_of(node)
            # descend into an element's children first
            if node.children is not NULL:
                node = node.children
                continue
        # else the next sibling, climbing as far as needed (never above `top`)
        while node.next is NULL:
            node = node.parent
            if node is top or node is NULL:
                node = NULL
                break
        if node is not NULL:
            node = node.next
    return _assemble(source_ip, count, disposition, dkim, spf, header_from, envelope_from,
                     envelope_to, reasons, dkim_blocks, spf_blocks, number)


cdef _too_many(Py_ssize_t number):
    return Refused(f"record {number}: more than {MAX_RESULTS} reasons or DKIM/SPF results")


cdef _assemble(source_ip, count, disposition, dkim, spf, header_from, envelope_from,
               envelope_to, list reasons, list dkim_blocks, list spf_blocks,
               Py_ssize_t number):
    cdef list reason_list = []
    cdef list dkim_list = []
    cdef list spf_list = []
    cdef list block
    for block in reasons:
        kind, comment = text(block[0], 64), text(block[1], LONG)
        if kind or comment:
            reason_list.append({"type": kind, "comment": comment})
    for block in dkim_blocks:
        domain, result = block[B_DOMAIN], block[B_RESULT]
        # A result with neither domain nor result (<dkim><domain/><result/></dkim>) says nothing.
        domain = text(domain, NAME)
        result = DKIM_RESULTS.get(result) or word(result, DKIM_RESULTS)
        if domain or result:
            dkim_list.append({
                "domain": domain,
                "selector": text(block[B_SELECTOR_OR_SCOPE], 63),
                "result": result,
                "human_result": text(block[B_HUMAN_RESULT], LONG),
            })
    for block in spf_blocks:
        domain, result, scope = block[B_DOMAIN], block[B_RESULT], block[B_SELECTOR_OR_SCOPE]
        domain = text(domain, NAME)
        result = SPF_RESULTS.get(result) or word(result, SPF_RESULTS)
        if domain or result:
            spf_list.append({
                "domain": domain,
                "scope": SCOPES.get(scope) or word(scope, SCOPES),
                "result": result,
                "human_result": text(block[B_HUMAN_RESULT], LONG),
            })
    return AggregateRecord(
        _ip(source_ip, number),
        _count(count, number),
        DISPOSITIONS.get(disposition) or word(disposition, DISPOSITIONS),
        PASS_FAIL.get(dkim) or word(dkim, PASS_FAIL),
        PASS_FAIL.get(spf) or word(spf, PASS_FAIL),
        text(header_from, NAME),
        text(envelope_from, NAME),
        text(envelope_to, NAME),
        reason_list,
        dkim_list,
        spf_list,
    )


cdef str _ip(object raw, Py_ssize_t number):
    cdef str value = raw.strip() if raw else ""
    cdef unsigned char packed[4]
    # inet_pton accepts only the canonical dotted quad (no leading zeros, no spaces), so an
    # address it takes is stored as written.
    if 7 <= len(value) <= 15 and value.isascii():
        if inet_pton(AF_INET, value.encode("ascii"), packed) == 1:
            return value
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


cdef dict _COUNTS = {}  # most counts are small numbers seen again and again


cdef object _count(object raw, Py_ssize_t number):
    known = _COUNTS.get(raw)
    if known is not None:
        return known
    value = raw.strip() if raw else ""
    if not (value.isascii() and value.isdigit()):
        raise Refused(
            f"record {number}: count {shorten(value)!r} is not a non-negative whole number"
        )
    if len(value) > 13 or int(value) > MAX_COUNT:
        raise Refused(f"record {number}: count {shorten(value)} is implausibly large")
    if len(_COUNTS) < 10_000:
        _COUNTS[raw] = int(value)
    return int(value)
