"""Bytes to text: BOMs first, then UTF-8, then charset-normalizer's guess when it is confident."""

from __future__ import annotations

import codecs

# Same rule as git and grep: a NUL byte near the start means binary.
BINARY_SNIFF_BYTES = 8192
# charset-normalizer's "chaos" is the share of the decoded text that looks like garbage; above this we
# would rather skip the file than index mojibake.
MAX_DETECTION_CHAOS = 0.1

BINARY = "binary file"
UNDETECTED_ENCODING = "not valid UTF-8 and encoding could not be detected"

_BOMS = (  # UTF-32 first: its little-endian BOM begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_bytes(data: bytes) -> tuple[str | None, str, str]:
    """(text, encoding, "") when the bytes decode, else (None, "", reason)."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig", ""
        except UnicodeDecodeError:
            pass  # a stray BOM on a non-UTF-8 file: let detection decide
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
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None, "", UNDETECTED_ENCODING
    matches = from_bytes(data)
    best = matches.best()
    if best is None or best.chaos > MAX_DETECTION_CHAOS:
        return None, "", UNDETECTED_ENCODING
    # Single-byte Western text often scores the same under several code pages; charset-normalizer then
    # picks by its own order (cp1250 first, turning è into č). Windows-1252 is by far the most common
    # of them, so it wins ties.
    for match in matches:
        if match.encoding == "cp1252" and (match.chaos, match.coherence) == (best.chaos, best.coherence):
            best = match
    try:
        return data.decode(best.encoding), best.encoding, ""
    except (UnicodeDecodeError, LookupError):
        return None, "", UNDETECTED_ENCODING
