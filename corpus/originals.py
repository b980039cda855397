"""The original files documents were read from, kept so that a citation can open them at its page.

:class:`OriginalStore` keeps a copy of each file under a name made of its content's SHA-256 and
its (lower-case) extension, e.g. ``3f…9a.pdf``, in one folder (beside the index: the same file
indexed twice is kept once). The key, not a path, is what a document records
(``meta.extra["original"]``), and :meth:`OriginalStore.path_of` only answers keys of that exact
form: nothing a client sends is ever joined to a path.

:func:`original_media_type` says how a kept file may be served: PDFs and images are shown in the
browser (a PDF opens at a page with ``#page=N``); every other type is a download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

__all__ = ["INLINE_MEDIA_TYPES", "ORIGINALS_DIR", "OriginalStore", "original_media_type"]

logger = logging.getLogger(__name__)

#: Types a browser may show in place (anything else is sent as a download).
INLINE_MEDIA_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
}
#: The folder of kept originals inside an index directory (beside its generations).
ORIGINALS_DIR = "originals"
_KEY = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,8}$")
_CHUNK = 1024 * 1024


def original_media_type(key: str) -> tuple[str, bool]:
    """``(media type, shown in place)`` of a kept file by its key's extension."""
    suffix = Path(key).suffix.lower()
    media = INLINE_MEDIA_TYPES.get(suffix)
    return (media, True) if media else ("application/octet-stream", False)


class OriginalStore:
    """Original files by content hash in ``directory`` (created on the first file kept)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def keep(self, path: Path) -> str | None:
        """Copy ``path`` into the store (once per content) and return its key; None when it
        cannot be kept (the document is indexed all the same, without an original to open)."""
        suffix = path.suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
            return None
        h = hashlib.sha256()
        try:
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            key = h.hexdigest() + suffix
            target = self.directory / key
            if not target.exists():
                self.directory.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
                os.close(fd)
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
        except OSError as exc:
            logger.warning("cannot keep the original of %s (%s)", path.name, exc.strerror or exc)
            return None
        return key

    def path_of(self, key: object) -> Path | None:
        """The kept file of ``key`` (a key :meth:`keep` gave), or None."""
        if not isinstance(key, str) or not _KEY.match(key):
            return None
        path = self.directory / key
        return path if path.is_file() else None
