"""Read-only streams of decompressed bytes, each counting what it hands out against a size
cap: past it, a read raises Refused, so a compression bomb costs no more work than the cap
allows (unpack.py builds them; parsers read them through Payload.open()).
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from reports.parsing.types import Refused

IN_CHUNK = 64 * 1024
OUT_CHUNK = 256 * 1024  # most bytes one inflate step may produce, so the cap is checked often
GZIP_MAGIC = b"\x1f\x8b"


def size_text(limit: int) -> str:
    return f"{limit // 2**20} MB" if limit % 2**20 == 0 else f"{limit:,} bytes"


def too_big(limit: int) -> str:
    return f"decompressed size exceeds the {size_text(limit)} limit"


class CappedReader(io.RawIOBase):
    """A read-only stream counting what it hands out against the cap; it raises Refused
    past it. Closing it closes what it reads from."""

    def __init__(self, limit: int, resources: list):
        super().__init__()
        self._limit = limit
        self._count = 0
        self._resources = resources

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(OUT_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        data = self._read_some(size) if size else b""
        self._count += len(data)
        if self._count > self._limit:
            raise Refused(too_big(self._limit))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            for resource in self._resources:
                resource.close()
        super().close()

    def _read_some(self, size: int) -> bytes:
        raise NotImplementedError


class Plain(CappedReader):
    """Bytes as they are (a file, memory, a zip member stream)."""

    def __init__(self, raw: BinaryIO, limit: int, *, also_close=(), errors=(), what=""):
        super().__init__(limit, [raw, *also_close])
        self._raw = raw
        self._errors = errors
        self._what = what

    def _read_some(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except self._errors as exc:
            raise Refused(f"corrupt {self._what} ({exc})") from exc


class Gunzip(CappedReader):
    """gzip data inflated as it is read: concatenated members are joined, and bytes after the
    last member that do not start another one are ignored (some senders append some)."""

    def __init__(self, raw: BinaryIO, limit: int):
        super().__init__(limit, [raw])
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # compressed bytes read ahead for the next member
        self._buffer = b""
        self._pos = 0
        self._done = False

    def _read_some(self, size: int) -> bytes:
        while self._pos >= len(self._buffer):
            if self._done:
                return b""
            self._buffer, self._pos = self._inflate_more(), 0
        if self._pos == 0 and size >= len(self._buffer):
            self._pos = len(self._buffer)
            return self._buffer
        start, self._pos = self._pos, self._pos + size
        return self._buffer[start : self._pos]

    def _inflate_more(self) -> bytes:
        inflate = self._inflate
        data = inflate.unconsumed_tail or self._pending or self._raw.read(IN_CHUNK)
        self._pending = b""
        if not data:
            self._done = True
            rest = inflate.flush()
            if not inflate.eof:
                raise Refused("truncated gzip data")
            return rest
        try:
            out = inflate.decompress(data, OUT_CHUNK)
        except zlib.error as exc:
            raise Refused(f"corrupt gzip data ({exc})") from exc
        if inflate.eof:
            self._next_member(inflate.unused_data)
        return out

    def _next_member(self, rest: bytes) -> None:
        while len(rest) < len(GZIP_MAGIC) and (more := self._raw.read(IN_CHUNK)):
            rest += more
        if rest.startswith(GZIP_MAGIC):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._pending = rest
        else:
            self._done = True


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left > 0 and (chunk := stream.read(left)):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
