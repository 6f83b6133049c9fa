"""Containers: find the report payloads inside an input (a file, an upload, a fetched message).

Reports arrive as plain XML or JSON, gzip (sometimes twice, sometimes with trailing bytes), zip,
whole e-mail messages with any of these attached under any MIME type, and mailboxes of such
messages. `payloads()` sniffs the content (never the file name or the declared type), unwraps
what it recognises and yields one Payload per candidate report, or a Refused item naming the part
that could not be used, so one bad part never hides the good ones next to it.

Everything decompressed is streamed and counted against a size cap: a compression bomb is
refused once the cap is passed, after doing no more work than the cap allows (streams.py).
"""

from __future__ import annotations

import codecs
import email
import email.errors
import email.message
import email.policy
import email.utils
import functools
import io
import itertools
import lzma
import os
import re
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings

from reports.parsing.streams import GZIP_MAGIC, Gunzip, Plain, read_up_to, size_text, too_big
from reports.parsing.types import Payload, Refused

SEP = " \u203a "  # a single right-pointing angle quotation mark
HEAD_SIZE = 64 * 1024  # enough to see past a long Received: chain or an XML prolog
MAX_NESTING = 5  # e.g. a gzip in a gzip in a zip in an e-mail in an mbox
MAX_ZIP_MEMBERS = 100
MAX_ZIP_DIRECTORY = 1024 * 1024
# Python's e-mail parser takes ~15 us a MIME part: a 2 MB gzip of three million empty parts
# held a request for 40 s. A report message has a handful of parts; lines that may open one
# are counted (cheaply) before parsing.
MAX_MIME_BOUNDARIES = 10_000
# One input's budget: an mbox archive may hold thousands of reports, not millions of
# messages; and past INPUT_SECONDS (checked between payloads) the rest is not read.
MAX_PAYLOADS = 50_000
INPUT_SECONDS = 600

# (first bytes, kind, what it is in a reason such as "gzip data holds a PNG image, not a report")
_MAGIC = (
    (GZIP_MAGIC, "gzip", ""),
    (b"PK\x03\x04", "zip", ""),
    (b"PK\x05\x06", "zip", ""),  # an empty archive
    (b"\x89PNG\r\n\x1a\n", "png", "a PNG image"),
    (b"\xff\xd8\xff", "jpeg", "a JPEG image"),
    (b"GIF8", "gif", "a GIF image"),
    (b"%PDF-", "pdf", "a PDF document"),
    (b"BZh", "bzip2", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "7z", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "rar", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "msoffice", "a Microsoft Office document"),
)
_DESCRIPTIONS = {kind: what for _, kind, what in _MAGIC if what} | {"html": "HTML"}
# fmt: off
_HTML_TAGS = frozenset({
    "html", "head", "body", "div", "p", "span", "table", "tr", "td", "br", "hr", "meta", "title",
    "style", "script", "link", "font", "a", "b", "i", "u", "center", "pre", "img", "h1", "h2",
    "h3", "h4", "ul", "ol", "li", "blockquote", "section", "header", "main", "form",
})
# fmt: on
_DOCTYPE_HTML = re.compile(rb"<!doctype\s+html", re.IGNORECASE)
_START_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*)(?::([A-Za-z_][\w.\-]*))?[\s/>]")
# An object or an array of objects: prose that merely starts with a bracket is not JSON.
_JSON_START = re.compile(rb'\{\s*["}]|\[\s*[{\]]')
_MBOX_FROM = re.compile(rb"From \S+ [^\r\n]*\d\d:\d\d")
_ESCAPED_FROM = re.compile(rb">+From ")
_HEADER_LINE = re.compile(rb"([!-9;-~]+)[ \t]*:")
_MESSAGE_HEADERS = frozenset(
    b"from date content-type mime-version received return-path message-id subject".split()
)

_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
# What zipfile and its decompressors raise on a damaged archive (bz2 raises OSError).
_ZIP_ERRORS = zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError
_ZIP_ERRORS += OSError, ValueError, NotImplementedError
# What the email package may raise on hostile input instead of noting a defect (its parser
# recurses once per level of multipart nesting).
_EMAIL_ERRORS = (email.errors.MessageError, ValueError, LookupError, RecursionError)
# Leaf parts of an e-mail worth a look; prose bodies, images, signatures are not candidates.
_PART_CANDIDATES = frozenset({"xml", "json", "gzip", "zip"})
_Items = Iterator[Payload | Refused]


def payloads(
    source: bytes | str | os.PathLike, name: str, *, limit: int | None = None
) -> Iterator[Payload | Refused]:
    """Yield every candidate report in `source` (bytes, or a path read lazily), or why not.

    `name` is how the input is called (file path or upload name); payload names build on it,
    joined by SEP: "report.eml", "attachment 2 (x.zip)", "member x.xml". `limit` caps the
    decompressed size of every payload and the size of the input itself (default
    settings.MAILSEC_REPORT_MAX_BYTES).
    """
    if limit is None:
        limit = settings.MAILSEC_REPORT_MAX_BYTES
    try:
        blob = _input_blob(source, name, limit)
    except Refused as exc:
        yield Refused(exc.reason, name)
        return
    deadline = time.monotonic() + INPUT_SECONDS
    for number, item in enumerate(_dispatch(blob), 1):
        yield item
        if number >= MAX_PAYLOADS:
            yield Refused(f"more than {MAX_PAYLOADS} parts: the rest is not read", name)
            return
        if time.monotonic() > deadline:
            yield Refused(f"more than {INPUT_SECONDS} s of work: the rest is not read", name)
            return


def sniff(data: bytes) -> str:
    """What `data` (the first bytes of something) looks like, judged by content alone.

    One of "gzip", "zip", "xml", "json", "email", "mbox", "html", "png", "jpeg", "gif", "pdf",
    "bzip2", "xz", "zstd", "7z", "rar", "msoffice", "empty" or "unknown".
    """
    data = bytes(data[:HEAD_SIZE])
    if not data:
        return "empty"
    for magic, kind, _ in _MAGIC:
        if data.startswith(magic):
            return kind
    text = _text_start(data)
    if text.startswith(b"<"):
        return _markup(text)
    if _JSON_START.match(text):
        return "json"
    if _MBOX_FROM.match(data):
        return "mbox"
    if _looks_like_headers(data):
        return "email"
    return "unknown"


def is_compressed(first_bytes: bytes) -> bool:
    """Whether an input starting with these bytes is gzip or zip (worth storing as is)."""
    return sniff(first_bytes[:8]) in ("gzip", "zip")


# --- sniffing -----------------------------------------------------------------------------


def _text_start(data: bytes) -> bytes:
    """The start of `data` as ASCII-compatible bytes, byte order mark and blanks removed."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = data[:4096].decode("utf-16", "replace").encode("utf-8", "replace")
    elif data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return data.lstrip()


def _markup(text: bytes) -> str:
    while text.startswith((b"<?", b"<!--")):
        close = b"?>" if text.startswith(b"<?") else b"-->"
        end = text.find(close)
        if end < 0:
            return "xml"  # a prolog longer than the head: no HTML page starts like that
        text = text[end + len(close) :].lstrip()
    if _DOCTYPE_HTML.match(text):
        return "html"
    tag = _START_TAG.match(text)
    if tag is None:
        return "xml" if text.startswith(b"<!") or not text else "unknown"
    if tag.group(2) is None and tag.group(1).lower().decode() in _HTML_TAGS:
        return "html"
    return "xml"


def _looks_like_headers(data: bytes) -> bool:
    """Header lines up to a blank line, naming at least one header every message has."""
    names = set()
    # The last piece may be a line cut off by the head size: leave it out.
    for number, line in enumerate(data.split(b"\n")[:-1]):
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if number == 0:
                return False
            continue
        header = _HEADER_LINE.match(line)
        if header is None:
            return False
        names.add(header.group(1).lower())
    return bool(names & _MESSAGE_HEADERS)


def _preview(head: bytes) -> str:
    return '"' + repr(head[:16])[2:-1] + '"'


def _not_a_report(kind: str, head: bytes, within: str) -> str:
    if kind == "empty":
        return f"{within} is empty" if within else "empty input"
    what = _DESCRIPTIONS.get(kind) or f"unrecognised data (starts with {_preview(head)})"
    if within:
        return f"{within} holds {what}, not a report"
    if kind in _DESCRIPTIONS:
        return f"{what.removeprefix('a ')}, not a report"
    return f"not a report: {what}"


def _label(text: str) -> str:
    """A name from the input (zip member, attachment file name) made safe to show."""
    return "".join("?" if ord(c) < 32 or ord(c) == 127 else c for c in text[:200])


# --- the walk -----------------------------------------------------------------------------


@dataclass
class _Blob:
    """Some bytes found in the input: in memory, a file on disk, or a stream to unwrap."""

    name: str
    open: Callable[[], BinaryIO]  # a fresh counted stream from the start
    limit: int
    depth: int = 0  # containers around it
    data: bytes | None = None
    path: str | None = None
    _head: bytes | None = field(default=None, repr=False)

    def head(self) -> bytes:
        if self._head is None:
            if self.data is not None:
                self._head = self.data[:HEAD_SIZE]
            else:
                with self.open() as stream:
                    self._head = read_up_to(stream, HEAD_SIZE)
        return self._head

    def read_all(self) -> bytes:
        if self.data is None:
            with self.open() as stream:
                self.data = stream.read()
        return self.data

    def seekable(self) -> BinaryIO:
        if self.path is not None:
            return open(self.path, "rb")  # the caller closes it
        return io.BytesIO(self.read_all())


def _memory_blob(name: str, data: bytes, limit: int, depth: int) -> _Blob:
    return _Blob(name, lambda: Plain(io.BytesIO(data), limit), limit, depth, data=data)


def _input_blob(source, name: str, limit: int) -> _Blob:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > limit:
            raise Refused(f"input size exceeds the {size_text(limit)} limit")
        return _memory_blob(name, data, limit, 0)
    path = os.fspath(source)
    try:
        status = os.stat(path)
    except OSError as exc:
        raise Refused(f"cannot read the input ({exc.strerror})") from exc
    if not stat.S_ISREG(status.st_mode):
        raise Refused("the input is not a regular file")
    if status.st_size > limit:
        raise Refused(f"input size exceeds the {size_text(limit)} limit")
    return _Blob(name, lambda: Plain(open(path, "rb"), limit), limit, path=path)


def _dispatch(blob: _Blob, within: str = "") -> _Items:
    """Payloads for one blob: itself when it is XML or JSON, else what its container holds."""
    try:
        head = blob.head()
    except Refused as exc:
        yield Refused(exc.reason, blob.name)
        return
    kind = sniff(head)
    if kind in ("xml", "json"):
        skip = _blanks_before_xml(head) if kind == "xml" else 0
        opener = functools.partial(_skipping, blob.open, skip) if skip else blob.open
        yield Payload(name=blob.name, kind=kind, open=opener)
    elif kind in _CONTAINERS:
        yield from _unwrap(kind, blob)
    else:
        yield Refused(_not_a_report(kind, head, within), blob.name)


def _blanks_before_xml(head: bytes) -> int:
    """How many bytes of blanks (and UTF-8 byte order marks among them) come before the XML
    declaration. Real reporters send a newline, spaces or tabs there, which XML forbids before
    "<?xml" (libxml2: "XML declaration allowed only at the start of the document"). A lone byte
    order mark is left alone: XML allows it, and every byte skipped is one less copy."""
    rest = head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n")
    skip = len(head) - len(rest)
    return 0 if skip == len(codecs.BOM_UTF8) and head.startswith(codecs.BOM_UTF8) else skip


def _skipping(open_stream: Callable[[], BinaryIO], skip: int) -> BinaryIO:
    """The stream `open_stream()` gives, its first `skip` bytes read and dropped."""
    stream = open_stream()
    try:
        read_up_to(stream, skip)
    except BaseException:
        stream.close()
        raise
    return stream


def _unwrap(kind: str, blob: _Blob) -> _Items:
    if blob.depth >= MAX_NESTING:
        yield Refused(f"containers nested too deeply (more than {MAX_NESTING})", blob.name)
        return
    try:
        yield from _CONTAINERS[kind](blob)
    except Refused as exc:
        # The container as a whole is unusable (a part's own trouble is yielded, not raised).
        yield Refused(exc.reason, exc.name or blob.name)


def _gzip(blob: _Blob) -> _Items:
    outer = blob.open
    inner = _Blob(blob.name, lambda: Gunzip(outer(), blob.limit), blob.limit, blob.depth + 1)
    # Double gzip needs nothing special: the inflated head is sniffed again.
    yield from _dispatch(inner, within="gzip data")


# --- zip ----------------------------------------------------------------------------------


def _zip(blob: _Blob) -> _Items:
    with blob.seekable() as file:
        members = _zip_members(file)
    budget = blob.limit  # what all members together may inflate to
    for info in members:
        name = f"{blob.name}{SEP}member {_label(info.filename)}"
        problem = _member_problem(info, blob.limit)
        if problem is None:
            budget -= info.file_size
            if budget < 0:
                total = size_text(blob.limit)
                problem = f"decompressed size of all members exceeds the {total} limit"
        if problem:
            yield Refused(problem, name)
            continue
        opener = functools.partial(_open_member, blob, info)
        yield from _dispatch(_Blob(name, opener, blob.limit, blob.depth + 1), within="zip member")


def _zip_members(file: BinaryIO) -> list[zipfile.ZipInfo]:
    _check_directory(file)
    try:
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise Refused(f"corrupt or truncated zip archive ({exc})") from exc
    if len(infos) > MAX_ZIP_MEMBERS:
        raise Refused(f"zip archive has {len(infos)} members, more than {MAX_ZIP_MEMBERS}")
    files = [info for info in infos if not info.is_dir()]
    if not files:
        raise Refused("zip archive holds no files")
    return files


def _check_directory(file: BinaryIO) -> None:
    """Refuse an archive announcing too many members before zipfile builds an object for each
    of them (millions fit in 100 MB)."""
    size = file.seek(0, os.SEEK_END)
    start = max(0, size - (22 + 0xFFFF + 20 + 56))  # end record, comment, zip64 record + locator
    file.seek(start)
    tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return  # no end record: zipfile says so
    entries, directory = struct.unpack("<HI", tail[at + 10 : at + 16])
    if (entries == 0xFFFF or directory == 0xFFFFFFFF) and at >= 76:
        # Zip64: the real numbers are in the record just before the zip64 locator.
        record, locator = tail[at - 76 : at - 20], tail[at - 20 : at]
        if record.startswith(b"PK\x06\x06") and locator.startswith(b"PK\x06\x07"):
            entries, directory = struct.unpack("<QQ", record[32:48])
    if entries > MAX_ZIP_MEMBERS:
        raise Refused(f"zip archive has {entries} members, more than {MAX_ZIP_MEMBERS}")
    if directory > MAX_ZIP_DIRECTORY:
        raise Refused(f"zip archive directory is too large ({directory:,} bytes)")


def _member_problem(info: zipfile.ZipInfo, limit: int) -> str | None:
    if info.flag_bits & 0x1:
        return "zip member is encrypted"
    if info.compress_type not in _ZIP_METHODS:
        return f"zip member uses compression method {info.compress_type}, which is not supported"
    # zipfile never inflates a member past its declared size, so this bound holds.
    if info.file_size > limit:
        return too_big(limit)
    return None


def _open_member(blob: _Blob, info: zipfile.ZipInfo) -> BinaryIO:
    file = blob.seekable()
    try:
        archive = zipfile.ZipFile(file)
        member = archive.open(info)
    except _ZIP_ERRORS as exc:
        file.close()
        raise Refused(f"corrupt zip member ({exc})") from exc
    return Plain(
        member, blob.limit, also_close=(archive, file), errors=_ZIP_ERRORS, what="zip member"
    )


# --- e-mail -------------------------------------------------------------------------------


def _email(blob: _Blob) -> _Items:
    raw = blob.read_all()
    if raw.count(b"\n--") > MAX_MIME_BOUNDARIES:
        raise Refused(
            f"an e-mail message of more than {MAX_MIME_BOUNDARIES} MIME parts "
            "(a report message has a few)"
        )
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        failure = _is_failure_report(message)
        top = message.get_content_type()
    except _EMAIL_ERRORS as exc:
        raise Refused(f"unreadable e-mail message ({exc})") from exc
    if failure:
        yield _arf(blob, raw, message)
        return
    found = False
    leaves = (part for part in message.walk() if not part.is_multipart())
    for index, part in enumerate(leaves, 1):
        for item in _attachment(blob, index, part):
            found = True
            yield item
    if found:
        return
    if top == "multipart/report":
        # A report with nothing machine-readable attached: a failure report in prose
        # (Exim sends those), which the failure parser reads from the text.
        yield _arf(blob, raw, message)
    else:
        yield Refused("no report found in this e-mail message", blob.name)


def _is_failure_report(message: email.message.Message) -> bool:
    if message.get_content_type() == "multipart/report":
        report_type = email.utils.collapse_rfc2231_value(message.get_param("report-type", ""))
        if report_type.lower() == "feedback-report":
            return True
    return any(part.get_content_type() == "message/feedback-report" for part in message.walk())


def _arf(blob: _Blob, raw: bytes, message: email.message.Message) -> Payload:
    limit = blob.limit
    return Payload(blob.name, "arf", lambda: Plain(io.BytesIO(raw), limit), message=message)


def _attachment(blob: _Blob, index: int, part: email.message.Message) -> _Items:
    label = f"attachment {index}"
    try:
        filename = part.get_filename()
        data = part.get_payload(decode=True)
    except _EMAIL_ERRORS as exc:
        yield Refused(f"unreadable e-mail part ({exc})", f"{blob.name}{SEP}{label}")
        return
    if not isinstance(data, bytes) or sniff(data) not in _PART_CANDIDATES:
        return
    if filename:
        label += f" ({_label(filename)})"
    child = _memory_blob(f"{blob.name}{SEP}{label}", data, blob.limit, blob.depth + 1)
    yield from _dispatch(child, within="e-mail attachment")


# --- mbox ---------------------------------------------------------------------------------


def _mbox(blob: _Blob) -> _Items:
    stream = blob.seekable()
    with stream:
        messages = _split_mbox(stream)
        first, second = next(messages, None), next(messages, None)
        if first is None:
            raise Refused("mbox holds no messages")
        if second is None:
            # One message, as some tools save a single .eml: name it after the input.
            yield from _unwrap("email", _memory_blob(blob.name, first, blob.limit, blob.depth + 1))
            return
        for number, data in enumerate(itertools.chain([first, second], messages), 1):
            name = f"{blob.name}{SEP}message {number}"
            yield from _unwrap("email", _memory_blob(name, data, blob.limit, blob.depth + 1))


def _split_mbox(stream: BinaryIO) -> Iterator[bytes]:
    """Messages of an mbox file: a "From " line after a blank line starts one; ">From "
    lines in bodies lose one ">" (mboxrd quoting)."""
    lines: list[bytes] = []
    started, after_blank = False, True
    for line in stream:
        if after_blank and _MBOX_FROM.match(line):
            if started:
                yield b"".join(lines)
            lines, started = [], True
        else:
            lines.append(line[1:] if _ESCAPED_FROM.match(line) else line)
        after_blank = line in (b"\n", b"\r\n")
    if started:
        yield b"".join(lines)


_CONTAINERS: dict[str, Callable[[_Blob], _Items]]
_CONTAINERS = {"gzip": _gzip, "zip": _zip, "email": _email, "mbox": _mbox}
