"""Bytes to text: BOMs first, then UTF-8, then (with evidence) a detected code page, else Windows-1252.

Order of trust:

1. a byte order mark (UTF-8, UTF-16, UTF-32);
2. strict UTF-8;
3. charset-normalizer's guess, but only on enough bytes, with little "chaos", and only for a code page
   people really write text in (on a few bytes it happily reports UTF-16 or EBCDIC for Latin-1 words);
4. "UTF-8 where valid, every other byte as Windows-1252": plain cp1252 for a Western single-byte
   file, and the right text for a UTF-8 file with a few stray Latin-1 bytes (concatenated logs, hand
   edits);
5. if that still reads as control characters, the file is not text we can trust: skip it.
"""

from __future__ import annotations

import codecs
import unicodedata

# Same rule as git and grep: a NUL byte near the start means binary.
BINARY_SNIFF_BYTES = 8192
# charset-normalizer's "chaos" is the share of the decoded text that looks like garbage; above this we
# would rather not trust its guess.
MAX_DETECTION_CHAOS = 0.1
# Below this many bytes charset-normalizer's guesses are noise ("café" in Latin-1 came out as UTF-16-BE,
# "Größe" as EBCDIC cp037); from about 64 bytes of real text it named every code page we tried.
MIN_DETECTION_BYTES = 64
# Text has (almost) no control characters; random or binary bytes decoded as cp1252 have about 10 %.
# A little slack keeps old DOS files (a trailing Ctrl-Z) and logs with a few ANSI escapes.
MAX_CONTROL_SHARE = 0.01

BINARY = "binary file"
UNDETECTED_ENCODING = (
    "not valid UTF-8 and encoding could not be detected: convert it to UTF-8 (iconv -f ENCODING -t UTF-8)"
)
WESTERN = "cp1252"
MIXED = "utf-8+cp1252"  # metadata["encoding"] of a UTF-8 file with stray single-byte characters

_BOMS = (  # UTF-32 first: its little-endian BOM begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Code pages a detected guess may name: the ones text is actually written in. Left out on purpose: UTF-16/32
# without a BOM, UTF-7, EBCDIC (cp037, cp500, cp1026, …), Mac and DOS pages, and other rarities that
# charset-normalizer offers for short inputs. Names as charset-normalizer spells them.
PLAUSIBLE_CODECS = frozenset(
    {f"cp125{i}" for i in range(9)}
    | {f"iso8859_{i}" for i in (1, 2, 4, 5, 6, 7, 8, 9, 13, 15, 16)}
    | {"latin_1", "koi8_r", "koi8_u", "cp866", "cp874", "tis_620"}
    | {"cp932", "shift_jis", "shift_jis_2004", "euc_jp", "euc_jis_2004", "iso2022_jp"}
    | {"gb2312", "gbk", "gb18030", "cp936", "big5", "big5hkscs", "cp950", "euc_kr", "cp949"}
)

# Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; Latin-1 maps them to C1 controls, which
# the control-character test then counts against the file.
_CP1252 = tuple(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))


def decode_bytes(data: bytes) -> tuple[str | None, str, str]:
    """(text, encoding, "") when the bytes decode, else (None, "", reason). Never raises."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig", ""
        except UnicodeDecodeError:
            data = data[len(codecs.BOM_UTF8) :]  # a stray BOM on a non-UTF-8 file says nothing more
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding, ""  # the codec strips the BOM itself
            except UnicodeDecodeError:
                name = encoding.upper()
                return None, "", f"invalid {name}: starts with a {name} byte order mark but does not decode"
    # Checked after the BOMs: UTF-16 text is full of NUL bytes.
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        return None, "", BINARY
    try:
        return data.decode("utf-8"), "utf-8", ""
    except UnicodeDecodeError:
        pass
    text, multibyte, invalid = utf8_then_cp1252(data)
    if multibyte > invalid:
        # More valid UTF-8 sequences than stray bytes: a UTF-8 file with a few foreign bytes, which no
        # single code page describes, so no detector is asked.
        encoding = MIXED
    else:
        # Mostly bytes that are not UTF-8: a single-byte (or legacy multi-byte) file, in which a valid
        # UTF-8 pair is a coincidence. Every byte is read alike.
        text, encoding = "".join(_CP1252[b] for b in data), WESTERN
        detected = _detect(data, text)
        if detected is not None:
            return detected
    if not plausible_text(text):
        return None, "", UNDETECTED_ENCODING
    return text, encoding, ""


def utf8_then_cp1252(data: bytes) -> tuple[str, int, int]:
    """(text, valid non-ASCII UTF-8 characters, bytes that were not UTF-8 and were read as cp1252)."""
    parts: list[str] = []
    multibyte = invalid = 0
    position = 0
    while position < len(data):
        rest = data[position:]
        try:
            valid, bad, position = rest.decode("utf-8"), b"", len(data)
        except UnicodeDecodeError as error:
            valid, bad = rest[: error.start].decode("utf-8"), rest[error.start : error.end]
            position += error.end
        multibyte += sum(1 for char in valid if ord(char) > 0x7F)
        invalid += len(bad)
        parts.append(valid)
        parts.append("".join(_CP1252[b] for b in bad))
    return "".join(parts), multibyte, invalid


def plausible_text(text: str) -> bool:
    """Whether decoded text reads as text: next to no control characters besides whitespace."""
    if not text:
        return True
    controls = sum(1 for char in text if char not in "\t\n\r\f\v" and unicodedata.category(char) == "Cc")
    return controls <= MAX_CONTROL_SHARE * len(text)


def _detect(data: bytes, western: str) -> tuple[str, str, str] | None:
    """charset-normalizer's guess when it can be trusted, else None. ``western``: the cp1252 reading."""
    if len(data) < MIN_DETECTION_BYTES:
        return None
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    try:
        matches = from_bytes(data)
        best = matches.best()
        if best is None or best.chaos > MAX_DETECTION_CHAOS or best.encoding not in PLAUSIBLE_CODECS:
            return None
        # Western text often scores the same under several code pages, and charset-normalizer then picks
        # by its own order (cp1250 first, turning è into č): Windows-1252, by far the most common of
        # them, wins every tie, and a guess that reads exactly like cp1252 is reported as cp1252.
        for match in matches:
            if match.encoding == WESTERN and match.chaos <= best.chaos and match.coherence >= best.coherence:
                return None
        text = data.decode(best.encoding)
    except Exception:  # noqa: BLE001 - a detector failure must not lose the file: fall back instead
        return None
    if text == western or not plausible_text(text):
        return None
    return text, best.encoding, ""
