"""Reading text files of unknown encoding (Chinese government files are often GBK/GB18030).

:func:`read_text` tries, in order: a byte-order mark (UTF-8/16/32), strict UTF-8, GB18030 (a
superset of GBK and GB2312), and finally ``charset-normalizer``. Every result is checked for
plausibility (control characters, private-use code points, implausible GB18030 four-byte
sequences), so binary data raises :class:`UnreadableFileError` rather than turning into
mojibake that would then be indexed and cited. Newlines are normalised to ``\\n``.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path

__all__ = ["UnreadableFileError", "decode_bytes", "normalize_newlines", "read_text"]

logger = logging.getLogger(__name__)

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

#: Share of "bad" characters (controls, private use, unassigned, U+FFFD) a text may contain.
_MAX_BAD_RATIO = 0.01
#: Share of non-ASCII characters outside GBK a GB18030 decoding may contain.
_MAX_NON_GBK_RATIO = 0.05


class UnreadableFileError(Exception):
    """A file that cannot be turned into text (binary data, unknown encoding, broken format)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def normalize_newlines(text: str) -> str:
    """``\\r\\n`` and ``\\r`` become ``\\n``.

    U+2028/U+2029 are left alone: JSON strings may hold them unescaped, so turning them into
    ``\\n`` would split a jsonl record; the chunker treats them as whitespace.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


#: Characters that do not occur in real text: C0/C1 controls (bar tab, newlines, form feed,
#: escape), U+FFFD, surrogates and private-use code points.
_BAD_CHARS = re.compile(
    "[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x84\x86-\x9f\ufffd\ud800-\uf8ff\U000f0000-\U0010ffff]"
)


def _bad_ratio(text: str) -> float:
    """Share of characters that do not occur in real text."""
    if not text:
        return 0.0
    bad = sum(1 for _ in _BAD_CHARS.finditer(text))
    return bad / len(text)


def _non_gbk_ratio(text: str) -> float:
    """Share of non-ASCII characters that GBK cannot encode (GB18030 four-byte sequences)."""
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    if not non_ascii:
        return 0.0
    non_gbk = text.encode("gbk", errors="replace").count(b"?") - text.count("?")
    return non_gbk / non_ascii


def _plausible(text: str) -> bool:
    return _bad_ratio(text) <= _MAX_BAD_RATIO


def decode_bytes(data: bytes, *, name: str = "<bytes>") -> str:
    """Decode ``data`` (see the module doc for the order tried); newlines normalised to ``\\n``.

    Raises :class:`UnreadableFileError` (with ``name`` as its path) for binary data.
    """
    text = _decode(data, name)
    text = normalize_newlines(text)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _decode(data: bytes, name: str) -> str:
    if not data:
        return ""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(
                    name, f"byte-order mark says {encoding} but decoding failed: {exc}"
                ) from exc
            if not _plausible(text):
                raise UnreadableFileError(name, f"decoded as {encoding} (byte-order mark) but looks binary")
            return text

    has_nul = b"\x00" in data
    if not has_nul:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if _plausible(text):
                return text
            raise UnreadableFileError(name, "valid UTF-8 but full of control characters: looks binary")
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            pass
        else:
            if _plausible(text) and _non_gbk_ratio(text) <= _MAX_NON_GBK_RATIO:
                logger.debug("%s: decoded as GB18030", name)
                return text

    return _decode_detected(data, name)


def _decode_detected(data: bytes, name: str) -> str:
    """Last resort: ``charset-normalizer``'s best guess, if it is plausible text."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise UnreadableFileError(name, "not text: no character encoding fits (binary file?)")
    text = str(best)
    if not text.strip() or not _plausible(text) or best.chaos > 0.2:
        raise UnreadableFileError(
            name, f"not text: best encoding guess {best.encoding} gives garbage (binary file?)"
        )
    logger.info("%s: encoding detected as %s", name, best.encoding)
    return text


def read_text(path: str | Path) -> str:
    """The text of the file at ``path`` with its encoding detected and newlines normalised.

    Raises ``FileNotFoundError`` for a missing file and :class:`UnreadableFileError` for a file
    that is not text.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFileError(p, f"cannot read: {exc.strerror or exc}") from exc
    return decode_bytes(data, name=str(p))
