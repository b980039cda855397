"""OCR of page images, offline: rapidocr's PP-OCR ONNX models on ONNX Runtime, cached by image.

:class:`OcrReader` reads page images (a scanned PDF's pages rendered by pypdfium2, or the frames
of a ``.png``/``.jpg``/``.tif`` file) into :class:`OcrPage` objects:

- the engine (:class:`RapidOcrEngine`: the PP-OCRv6 detection and recognition models and the
  line-direction classifier that ship inside the ``rapidocr`` wheel; nothing is downloaded) is
  loaded once per process, on the first page that needs it, and shared by every reader;
- the lines it reads are put in reading order (:func:`policyqa.corpus.layout.reading_order`:
  columns, then lines);
- each page's result is cached by a hash of the page image's pixels (and the engine's name) under
  ``<cache_dir>/ocr/``, so indexing the same scan again reads nothing twice;
- a page whose recognition confidence (the character-weighted mean score of its lines) is below
  ``min_confidence`` is reported (:attr:`OcrPage.low_confidence`);
- a progress bar counts the pages (``Settings.progress``).

Settings: ``ocr`` (on/off), ``ocr_dpi`` (rendering resolution of PDF pages),
``ocr_min_confidence``; the cache lives under ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .layout import Box
from .pages import PageLine, placed_lines

if TYPE_CHECKING:
    from PIL.Image import Image
    from rapidocr import RapidOCR

    from policyqa.settings import Settings

__all__ = [
    "MAX_IMAGE_SIDE",
    "OcrCache",
    "OcrEngine",
    "OcrPage",
    "OcrReader",
    "RapidOcrEngine",
    "image_key",
    "ocr_available",
]

logger = logging.getLogger(__name__)

#: Longer sides are scaled down to this many pixels before OCR (a 600-dpi A4 scan is 7,000).
MAX_IMAGE_SIDE = 3000


class OcrEngine(Protocol):
    """What reads the text lines off one page image."""

    @property
    def name(self) -> str:
        """Names the engine and its models (part of the cache key)."""
        ...

    def read(self, image: Image) -> list[Box]:
        """The text boxes of ``image`` (pixel coordinates, any order)."""
        ...


def ocr_available() -> str | None:
    """Why OCR cannot run here (a package missing), or None."""
    try:
        import pypdfium2  # noqa: F401
        import rapidocr  # noqa: F401
    except ImportError as exc:
        return f"OCR needs the rapidocr and pypdfium2 packages ({exc.name} is not installed)"
    return None


_ENGINE_LOCK = threading.Lock()
#: Loaded engines not in use, by engine name: a thread takes one and gives it back, so there are
#: never more than the most pages ever read at once.
_FREE_ENGINES: dict[str, list[RapidOCR]] = {}


class RapidOcrEngine:
    """rapidocr with the models its wheel ships (PP-OCRv6 small det/rec, PP-OCRv4 cls).

    Cheap to construct; the ONNX sessions are created on the first :meth:`read` and kept for the
    process, one set for each page read at once. Each session runs on one core: on the 2 cores
    of this project's machine, one single-threaded session a page at a time costs 2.7 CPU-seconds
    a dense page against 4.0 for one two-threaded session (the threads wait on each other when
    the cores are busy), so :class:`OcrReader` reads pages in parallel instead. Detection runs on
    the image scaled to at most ``det_side`` pixels on its longer side (a page of body text needs
    no more; recognition reads the lines at their own resolution).
    """

    def __init__(self, det_side: int = 960) -> None:
        self.det_side = det_side

    @property
    def name(self) -> str:
        from importlib.metadata import version

        return f"rapidocr-{version('rapidocr')}-ppocrv6-small-det{self.det_side}"

    def _take(self) -> RapidOCR:
        with _ENGINE_LOCK:
            free = _FREE_ENGINES.setdefault(self.name, [])
            if free:
                return free.pop()
        from rapidocr import RapidOCR

        logger.info("loading the OCR models (rapidocr, PP-OCRv6 small)")
        engine = RapidOCR(
            params={
                "Global.log_level": "warning",
                "Det.limit_type": "max",
                "Det.limit_side_len": self.det_side,
                "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        return engine

    def loaded(self) -> int:
        """How many sets of sessions of this engine are loaded and free (the most pages read at once)."""
        with _ENGINE_LOCK:
            return len(_FREE_ENGINES.get(self.name, []))

    def _give_back(self, engine: RapidOCR) -> None:
        with _ENGINE_LOCK:
            _FREE_ENGINES.setdefault(self.name, []).append(engine)

    def read(self, image: Image) -> list[Box]:
        import numpy as np
        from rapidocr.utils.output import RapidOCROutput

        engine = self._take()
        try:
            result = engine(np.asarray(image.convert("RGB")))
        finally:
            self._give_back(engine)
        if (
            not isinstance(result, RapidOCROutput)
            or result.boxes is None
            or not result.txts
            or not result.scores
        ):
            return []
        out: list[Box] = []
        for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            xs = [float(p[0]) for p in quad]
            ys = [float(p[1]) for p in quad]
            out.append(Box(str(text), min(xs), min(ys), max(xs), max(ys), float(score)))
        return out


@dataclass(frozen=True, slots=True)
class OcrPage:
    """What OCR read off one page: its lines in reading order and their confidence."""

    lines: tuple[PageLine, ...]
    confidence: float
    low_confidence: bool = False

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def _page_of(boxes: Sequence[Box], min_confidence: float) -> OcrPage:
    lines = tuple(line for _top, line in placed_lines(boxes))
    chars = sum(len(b.text) for b in boxes)
    confidence = sum(b.score * len(b.text) for b in boxes) / chars if chars else 0.0
    return OcrPage(lines, round(confidence, 4), bool(lines) and confidence < min_confidence)


def image_key(image: Image, engine: str) -> str:
    """The cache key of a page image: a hash of its pixels, size and mode, and the engine."""
    h = hashlib.sha256()
    h.update(f"{engine}\x1f{image.mode}\x1f{image.size[0]}x{image.size[1]}\x1f".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class OcrCache:
    """OCR results on disk, one small JSON file per page image (``<dir>/ab/abcdef….json``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[Box] | None:
        path = self._path(key)
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            return [Box(str(r[0]), *(float(v) for v in r[1:6])) for r in rows]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, IndexError):
            logger.warning("ignoring an unreadable OCR cache entry %s", path.name)
            return None

    def put(self, key: str, boxes: Sequence[Box]) -> None:
        path = self._path(key)
        rows = [[b.text, b.x0, b.top, b.x1, b.bottom, b.score] for b in boxes]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(rows, f, ensure_ascii=False)
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("cannot write the OCR cache (%s): pages will be read again next time", exc)


def _fit(image: Image) -> Image:
    side = max(image.size)
    if side <= MAX_IMAGE_SIDE:
        return image
    scale = MAX_IMAGE_SIDE / side
    return image.resize((max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))))


class OcrReader:
    """Reads page images with an :class:`OcrEngine`, through the cache (see the module doc).

    ``stats`` counts the pages read by the engine and those found in the cache.
    """

    def __init__(
        self,
        engine: OcrEngine | None = None,
        *,
        cache_dir: Path | None = None,
        dpi: int = 150,
        min_confidence: float = 0.8,
        show_progress: bool = False,
        workers: int = 1,
    ) -> None:
        self.engine: OcrEngine = engine if engine is not None else RapidOcrEngine()
        self.cache = OcrCache(cache_dir) if cache_dir is not None else None
        self.dpi = dpi
        self.min_confidence = min_confidence
        self.show_progress = show_progress
        self.workers = max(1, workers)
        self.stats = {"read": 0, "cached": 0}

    @classmethod
    def from_settings(cls, settings: Settings) -> OcrReader | None:
        """The reader the settings ask for: None when ``settings.ocr`` is off."""
        if not settings.ocr:
            return None
        return cls(
            cache_dir=settings.ocr_cache_dir,
            dpi=settings.ocr_dpi,
            min_confidence=settings.ocr_min_confidence,
            show_progress=settings.progress,
            workers=settings.ocr_workers or min(4, os.cpu_count() or 1),
        )

    def read(self, image: Image) -> OcrPage:
        """One page image, from the cache when it was read before."""
        return next(self.read_all([image], total=1, desc="", progress=False))

    def _cached(self, image: Image) -> tuple[Image, str, list[Box] | None]:
        image = _fit(image)
        if self.cache is None:
            return image, "", None
        key = image_key(image, self.engine.name)
        return image, key, self.cache.get(key)

    def read_all(
        self, images: Iterable[Image], *, total: int, desc: str, progress: bool = True
    ) -> Iterator[OcrPage]:
        """Each image's page in order, ``workers`` pages read at once (pages are rendered a few
        at a time, not all first), with a progress bar of ``total`` pages named ``desc``."""
        from tqdm.auto import tqdm

        show = progress and self.show_progress
        with (
            tqdm(total=total, desc=f"OCR {desc}", unit="page", disable=not show) as bar,
            ThreadPoolExecutor(self.workers, thread_name_prefix="ocr") as pool,
        ):
            it = iter(images)
            while batch := [self._cached(image) for image in islice(it, self.workers)]:
                todo = [i for i, (_img, _key, boxes) in enumerate(batch) if boxes is None]
                found = dict(zip(todo, pool.map(self.engine.read, [batch[i][0] for i in todo]), strict=True))
                for i, (_img, key, boxes) in enumerate(batch):
                    if boxes is None:
                        boxes = found[i]
                        self.stats["read"] += 1
                        if self.cache is not None:
                            self.cache.put(key, boxes)
                    else:
                        self.stats["cached"] += 1
                    yield _page_of(boxes, self.min_confidence)
                    bar.update(1)
