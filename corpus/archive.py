"""Zip containers (``.docx``) checked before a parser inflates them: no decompression bombs.

A parser such as python-docx inflates a part whole and builds its XML tree in memory, so a
677 KB file that inflates to 190 MB costs gigabytes. :func:`zip_bomb_reason` inflates every
member first, as a stream (64 KiB at a time, nothing kept), counting the bytes it actually
produces, not the sizes the zip headers claim, and stops at the first limit passed:

- more than ``max_unpacked`` bytes in all (:data:`MAX_UNPACKED_BYTES`);
- a member inflating more than ``max_ratio``-fold (:data:`MAX_RATIO`) once past 1 MiB (text XML
  inflates 5–20-fold, a bomb hundreds- to thousands-fold);
- more than :data:`MAX_MEMBERS` members, or a member whose stream or checksum does not match its
  header (a header that lies about a size).

The check costs a fraction of a second for a real document and stops a bomb after at most
``max_unpacked`` bytes of work, with constant memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

__all__ = ["MAX_MEMBERS", "MAX_RATIO", "MAX_UNPACKED_BYTES", "zip_bomb_reason"]

#: Bytes all members of one container may inflate to.
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
#: Largest inflation ratio of one member past :data:`_RATIO_FROM` bytes.
MAX_RATIO = 100
#: Most members one container may have.
MAX_MEMBERS = 10_000
_RATIO_FROM = 1024 * 1024
_CHUNK = 64 * 1024


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


def zip_bomb_reason(
    source: Path | bytes,
    *,
    max_unpacked: int = MAX_UNPACKED_BYTES,
    max_ratio: int = MAX_RATIO,
) -> str | None:
    """Why the zip container ``source`` (a path or its bytes) must not be inflated by a parser,
    or None when it inflates within the limits (see the module docstring)."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    total = 0
    try:
        with zipfile.ZipFile(handle) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                return f"the archive has {len(members)} members, over the limit of {MAX_MEMBERS}"
            for info in members:
                if info.is_dir():
                    continue
                produced = 0
                with zf.open(info) as stream:
                    while chunk := stream.read(_CHUNK):
                        produced += len(chunk)
                        total += len(chunk)
                        if total > max_unpacked:
                            return (
                                f"a decompression bomb: it inflates to more than {_mib(max_unpacked)} "
                                f"(stopped in {info.filename!r})"
                            )
                        if produced > _RATIO_FROM and produced > max_ratio * max(info.compress_size, 1):
                            return (
                                f"a decompression bomb: {info.filename!r} inflates more than {max_ratio}-fold "
                                f"({info.compress_size} bytes to over {produced})"
                            )
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as exc:
        return f"a corrupt zip archive ({exc})"
    return None
