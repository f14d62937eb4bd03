"""The byte pass: which encoding fits a whole file, and the faults it finds, with their line."""

from __future__ import annotations

import io

import pytest

from campaign_runner.scan import CHUNK_BYTES, MAX_LINE_BYTES, ByteScan, FileFault

CP1252_WARNING = "not UTF-8; read as Windows-1252 (set recipients.encoding to say so)"
# Most of a chunk of plain lines, so what follows straddles or passes a chunk's edge.
FILLER = b"+5511948489500,Ana\n" * (CHUNK_BYTES // 19)


def scan(raw: bytes, declared: str | None = None, delimiter: str = ",", limit: int = 10**9):
    return ByteScan.of(io.BytesIO(raw), declared, delimiter, limit)


@pytest.mark.parametrize(
    "raw, declared, encoding, warnings",
    [
        (b"phone\n1\n", None, "utf-8-sig", []),
        ("phone,name\n1,José\n".encode(), None, "utf-8-sig", []),
        (b"\xef\xbb\xbfphone\n", None, "utf-8-sig", []),
        (b"phone,name\n1,Jos\xe9\n", None, "cp1252", [CP1252_WARNING]),
        (FILLER + b"1,Jo\xe3o\n", None, "cp1252", [CP1252_WARNING]),
        (b"phone,name\n1,Jos\xe9\n", "cp1252", "cp1252", []),
        (b"phone\r1,Jos\xe9\r", None, "cp1252", [CP1252_WARNING]),
        ("ação\n".encode() * 3, "utf-8-sig", "utf-8-sig", []),
    ],
)
def test_the_encoding_that_fits(raw, declared, encoding, warnings):
    result = scan(raw, declared)
    assert (result.encoding, result.warnings) == (encoding, warnings)


@pytest.mark.parametrize(
    "raw, declared, delimiter, line, message",
    [
        ("a\nJosé\n".encode() + b"Jo\xe3o\n", None, ",", 3, "byte 0xE3 is not UTF-8, but line 2"),
        (b"a\nJo\xe3o\n" + "José\n".encode(), None, ",", 2, "byte 0xE3 is not UTF-8, but line 3"),
        (
            "a\nJosé\n".encode() + FILLER + b"Jo\xe3o\n",
            None,
            ",",
            3 + FILLER.count(b"\n"),
            "but line 2 is UTF-8",
        ),
        (b"a\n" + FILLER + b"x\x81\n", None, ",", 2 + FILLER.count(b"\n"), "byte 0x81 fits"),
        ("a\nJosé\n".encode(), "cp1252", ",", 2, "recipients.encoding says cp1252"),
        (b"a\nb\n\xe9\n", "utf-8-sig", ",", 3, "byte 0xE9 is not UTF-8, as recipients"),
        (b"a\nJos\xc3", "utf-8-sig", ",", 2, "byte 0xC3 is not UTF-8"),  # cut short at the end
        (b"a\nb\x00\n", None, ",", 2, "holds a NUL byte"),
        (b"\xff\xfea\x00", None, ",", 1, "is UTF-16 text"),
        (b'a\nx,Jo"ao\n', None, ",", 2, "a quote in the middle of a cell"),
        (b'a\nx;Jo"ao\n', None, ";", 2, "a quote in the middle of a cell"),
        (b"a\n" + b"x" * (MAX_LINE_BYTES + 10), None, ",", 2, "is over"),
    ],
)
def test_faults_with_their_line(raw, declared, delimiter, line, message):
    with pytest.raises(FileFault) as caught:
        scan(raw, declared, delimiter)
    assert caught.value.line == line
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "raw, delimiter",
    [
        (b'a,b\n"O""Brien",x\n', ","),
        (b'a,b\n"x, y","1\n2"\n', ","),
        (b'a;b\n"x; y";"say ""hi"""\n', ";"),
    ],
)
def test_well_formed_quotes_are_not_faults(raw, delimiter):
    assert scan(raw, delimiter=delimiter).encoding == "utf-8-sig"


def test_a_stray_quote_on_a_chunks_edge_is_found():
    raw = b"a\n" + b"x" * (CHUNK_BYTES - 3) + b'"y\n'  # the quote is the chunk's last byte
    with pytest.raises(FileFault) as caught:
        scan(raw)
    assert caught.value.line == 2


def test_a_file_over_the_size_limit_is_refused():
    with pytest.raises(FileFault, match="is over 100 bytes"):
        scan(b"phone\n" * (CHUNK_BYTES // 3), limit=100)
