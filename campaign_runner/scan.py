"""The byte pass over a CSV file: which encoding fits all of it, and what no CSV may contain.

One streaming pass in chunks (memory stays flat) decides the encoding and finds, with their
line numbers: a byte that fits no candidate encoding, a file that mixes UTF-8 with another
encoding (reading it either way would garble part of it), NUL bytes (UTF-16 or binary, never
a text CSV), a quote in the middle of an unquoted cell, and lines or files over the limits.
Every check is a C-speed bytes operation per chunk; nothing is done per row.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import BinaryIO

CHUNK_BYTES = 1 << 20
MAX_LINE_BYTES = 4 * CHUNK_BYTES  # 4 MiB: a line longer than this is not a CSV record

# A UTF-8 multi-byte sequence: in a file that is otherwise not UTF-8, proof of a mixture.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_FALLBACK = "cp1252"  # what spreadsheets on Windows export when not UTF-8


class FileFault(ValueError):
    """Something in the bytes that makes the file unreadable as a CSV, at a line (1-based)."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line


def _stray_quote(delimiter: str) -> re.Pattern[bytes]:
    """A quote with an ordinary character on each side: inside an unquoted cell (`Jo"ao`,
    ` "Silva, Jr"`), or text after a closing quote. A well-formed cell's quotes are at its
    edges or doubled. The literal quote comes first so the search runs at C speed."""
    others = re.escape(delimiter.encode()) + rb'"\r\n'
    return re.compile(rb'"(?<=[^' + others + rb']")(?=[^' + others + rb"])")


@dataclass
class _Position:
    """Where the scan is: bytes read, lines finished, and the length of the current line."""

    newline: bytes = b"\n"
    offset: int = 0
    lines_before: int = 0
    line_bytes: int = 0

    def line_of(self, chunk: bytes, index: int) -> int:
        """The 1-based line of byte INDEX of CHUNK (the chunk being scanned)."""
        return self.lines_before + chunk.count(self.newline, 0, index) + 1

    def advance(self, chunk: bytes) -> None:
        """Move past CHUNK, refusing a line longer than MAX_LINE_BYTES."""
        first = chunk.find(self.newline)
        if first == -1:
            self.line_bytes += len(chunk)
        elif self.line_bytes + first > MAX_LINE_BYTES:
            raise FileFault(self.lines_before + 1, f"line is over {MAX_LINE_BYTES:,} bytes")
        else:
            self.line_bytes = len(chunk) - chunk.rfind(self.newline) - 1
        if self.line_bytes > MAX_LINE_BYTES:
            raise FileFault(
                self.lines_before + 1, f"a line is over {MAX_LINE_BYTES:,} bytes: not a CSV?"
            )
        self.offset += len(chunk)
        self.lines_before += chunk.count(self.newline)


@dataclass
class ByteScan:
    """What the byte pass concluded: the encoding to read the file in, and any warnings."""

    encoding: str
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, raw: BinaryIO, declared: str | None, delimiter: str, max_bytes: int) -> ByteScan:
        """Scan RAW to its end (DECLARED: the encoding the campaign names, else detect)."""
        head = raw.read(CHUNK_BYTES)
        if head.startswith(_UTF16_BOMS):
            raise FileFault(1, 'is UTF-16 text; save it as "CSV UTF-8" instead')
        newline = b"\r" if b"\r" in head and b"\n" not in head else b"\n"
        fit = _EncodingFit(declared)
        where = _Position(newline)
        stray = _stray_quote(delimiter)
        chunk, tail = head, b""
        while chunk:
            _check_chunk(chunk, tail, where, stray)
            fit.feed(chunk, where)
            where.advance(chunk)
            if where.offset > max_bytes:
                raise FileFault(None, f"is over {max_bytes:,} bytes")
            tail = chunk[-2:]
            chunk = raw.read(CHUNK_BYTES)
        return cls(*fit.conclude(where))


def _check_chunk(chunk: bytes, tail: bytes, where: _Position, stray: re.Pattern[bytes]) -> None:
    nul = chunk.find(b"\x00")
    if nul != -1:
        raise FileFault(
            where.line_of(chunk, nul),
            "holds a NUL byte: this is not a text CSV (a UTF-16 or binary file?); "
            'save it as "CSV UTF-8"',
        )
    # TAIL (the previous chunk's last bytes) lets a quote on a chunk's edge see its neighbours.
    window = tail + chunk
    match = stray.search(window, len(tail) - 1 if tail else 0)
    if match:
        index = match.start() - len(tail)
        line = where.line_of(chunk, max(index, 0))  # the edge byte is on the same line
        raise FileFault(
            line,
            "a quote in the middle of a cell; quote the whole cell and double the quotes "
            'inside it ("Jo""ao" for Jo"ao), or remove the quote',
        )


class _Candidate:
    """One encoding the file might be in, and the first place it stopped fitting."""

    def __init__(self, name: str):
        self.name = name
        self.decoder = codecs.getincrementaldecoder(name)()
        self.bad: tuple[int, int] | None = None  # (line, byte) of the first misfit

    @property
    def fits(self) -> bool:
        """True while every byte fed so far decoded."""
        return self.bad is None

    def feed(self, chunk: bytes, where: _Position) -> int | None:
        """Decode CHUNK; return the index in it of the first byte that does not fit, if any."""
        if self.bad is not None:
            return None
        try:
            self.decoder.decode(chunk)
        except UnicodeDecodeError as error:
            pending = len(error.object) - len(chunk)  # bytes held over from the last chunk
            index = max(error.start - pending, 0)
            self.bad = (where.line_of(chunk, index), chunk[index])
            return index
        return None

    def end(self, where: _Position) -> None:
        """The file ended: a multi-byte character cut short does not fit either."""
        if self.bad is None:
            pending = self.decoder.getstate()[0]
            try:
                self.decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.bad = (where.lines_before + 1, pending[0] if pending else 0)

    def fault(self, what: str) -> FileFault:
        """The misfit as a located fault."""
        line, byte = self.bad or (None, 0)
        return FileFault(line, f"byte 0x{byte:02X} {what}")


class _EncodingFit:
    """UTF-8 against the other candidate (the declared encoding, else Windows-1252), chunk by
    chunk, remembering where each first stopped fitting and where UTF-8 text first appears."""

    def __init__(self, declared: str | None):
        self.declared = declared
        self.utf8 = _Candidate("utf-8")
        self.other = None if declared == "utf-8-sig" else _Candidate(declared or _FALLBACK)
        self.utf8_text: int | None = None  # line of the first valid multi-byte character

    def feed(self, chunk: bytes, where: _Position) -> None:
        """Decode CHUNK in each candidate still in the running."""
        if self.utf8.fits:
            bad = self.utf8.feed(chunk, where)
            self._note_utf8_text(chunk, where, bad)
        else:
            self._note_utf8_text(chunk, where, 0)
        # Detecting, the fallback matters only once UTF-8 failed; the bytes before were UTF-8
        # and, unless they were plain ASCII (which it reads alike), the file is mixed anyway.
        if self.other is not None and (self.declared or not self.utf8.fits):
            self.other.feed(chunk, where)

    def _note_utf8_text(self, chunk: bytes, where: _Position, bad: int | None) -> None:
        """Note the first UTF-8 text: CHUNK decoded as UTF-8 up to BAD (None: all of it)."""
        if self.utf8_text is not None:
            return
        before = chunk if bad is None else chunk[:bad]
        if not before.isascii():  # it decoded as UTF-8, so it holds UTF-8 text
            found = _NON_ASCII.search(before)
            self.utf8_text = where.line_of(chunk, found.start()) if found else None
        elif bad is not None:  # a valid sequence after the bad byte is UTF-8 text too
            found = _UTF8_SEQUENCE.search(chunk, bad)
            self.utf8_text = where.line_of(chunk, found.start()) if found else None

    def conclude(self, where: _Position) -> tuple[str, list[str]]:
        """The encoding that fits the whole file, with a warning when it was guessed."""
        self.utf8.end(where)
        if self.other is not None:
            self.other.end(where)
        if self.declared == "utf-8-sig":
            if not self.utf8.fits:
                raise self.utf8.fault("is not UTF-8, as recipients.encoding says")
            return "utf-8-sig", []
        if self.declared is not None:
            return self._declared_other()
        return self._detected()

    def _declared_other(self) -> tuple[str, list[str]]:
        assert self.other is not None
        if not self.other.fits:
            raise self.other.fault(f"cannot be read as {self.declared}")
        if self.utf8.fits and self.utf8_text is not None:
            raise FileFault(
                self.utf8_text,
                f"recipients.encoding says {self.declared} but the file is UTF-8 "
                "(this line would be garbled); remove recipients.encoding",
            )
        return str(self.declared), []

    def _detected(self) -> tuple[str, list[str]]:
        if self.utf8.fits:
            return "utf-8-sig", []
        if self.utf8_text is not None:
            raise self.utf8.fault(
                f"is not UTF-8, but line {self.utf8_text} is UTF-8 text: the file mixes "
                "encodings and reading it either way would garble some names; "
                'save it again as "CSV UTF-8"'
            )
        assert self.other is not None
        if not self.other.fits:
            raise self.other.fault(
                'fits neither UTF-8 nor Windows-1252; save the file as "CSV UTF-8"'
            )
        warning = "not UTF-8; read as Windows-1252 (set recipients.encoding to say so)"
        return _FALLBACK, [warning]
