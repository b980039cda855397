"""An index is a directory of generations, switched atomically.

::

    INDEX_DIR/
      CURRENT            name of the live generation, replaced atomically (os.replace)
      .lock              writers hold an exclusive flock on it
      gen-000007/
        manifest.json    format and policyqa versions, model, tokenizer, counts, build time
        store.sqlite     documents and chunks
        bm25/            BM25 postings in segments (hard-linked between generations) + params.json,
                         one row per chunk
        bm25_docs/       BM25 over whole documents (document context for hybrid fusion)
        dense/           faiss index, float16 embeddings + params.json

A writer builds a complete new generation in a temporary directory, renames it into place and
only then points ``CURRENT`` at it, so a crash at any moment leaves the previous generation
usable. The previous generation (the one ``CURRENT`` named) is kept, since readers may still
hold it; every other one is removed, including an orphan that a crashed writer renamed into
place but never made current.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "INDEX_FORMAT",
    "IndexLayout",
    "IndexNotFoundError",
    "IndexVersionError",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the on-disk layout or the meaning of stored data changes.
#: 4: stored BM25 terms include character bigrams (tokenizer version 2), and untitled documents'
#: chunks carry the title line of their text; a format-3 index would miss every bigram a query has.
INDEX_FORMAT = 4

_GEN_RE = re.compile(r"^gen-(\d{6})$")


class IndexNotFoundError(FileNotFoundError):
    """There is no index at the given directory."""


class IndexVersionError(RuntimeError):
    """The index was written by an incompatible version of policyqa."""


class IndexLayout:
    """Paths and the atomic switch of one index directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    def exists(self) -> bool:
        return self.current_file.is_file()

    def current(self) -> Path:
        """The live generation directory."""
        if not self.current_file.is_file():
            if self.root.exists() and any(self.root.iterdir()):
                raise IndexNotFoundError(
                    f"{self.root} is not a policyqa index (no CURRENT file); choose another --index "
                    "directory or remove it"
                )
            raise IndexNotFoundError(
                f"no index at {self.root}; build one first with `policyqa index [PATHS…] --index {self.root}`"
            )
        name = self.current_file.read_text(encoding="utf-8").strip()
        gen = self.root / name
        if not _GEN_RE.match(name) or not gen.is_dir():
            raise IndexNotFoundError(
                f"{self.root}/CURRENT points at a missing generation {name!r}; rebuild the index"
            )
        return gen

    def read_manifest(self, gen: Path | None = None) -> dict[str, Any]:
        gen = gen or self.current()
        path = gen / "manifest.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexVersionError(f"cannot read {path} ({exc}); rebuild the index") from exc
        fmt = manifest.get("format")
        if fmt != INDEX_FORMAT:
            raise IndexVersionError(
                f"the index at {self.root} has format {fmt} (written by policyqa "
                f"{manifest.get('policyqa_version', '?')}); this policyqa reads format {INDEX_FORMAT}. "
                f"Rebuild it with `policyqa index --index {self.root} …`"
            )
        return manifest

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Exclusive lock for writers (index builds, adds, deletes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _serving_name(self) -> str | None:
        """The name ``CURRENT`` holds now (None when there is none yet)."""
        try:
            return self.current_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _generations(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _GEN_RE.match(p.name))

    def new_workdir(self) -> Path:
        """A temporary directory inside the index root for a generation being built."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".building-", dir=self.root))

    def commit(self, workdir: Path) -> Path:
        """Move a finished generation into place and make it current (call under the lock)."""
        gens = self._generations()
        number = int(_GEN_RE.match(gens[-1].name).group(1)) + 1 if gens else 1  # type: ignore[union-attr]
        target = self.root / f"gen-{number:06d}"
        # the generation served until now (readers may still hold it); not simply the newest on
        # disk, which may be an orphan renamed into place by a writer that crashed before it
        # switched CURRENT
        serving = self._serving_name()
        _fsync_tree(workdir)
        os.rename(workdir, target)
        tmp = self.root / "CURRENT.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(target.name)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.current_file)
        _fsync_dir(self.root)
        for old in gens:  # every generation but the new one and the one served until now
            if old.name != serving:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.root.glob(".building-*"):
            if stale != workdir:
                shutil.rmtree(stale, ignore_errors=True)
        logger.info("index %s now serves %s", self.root, target.name)
        return target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))
