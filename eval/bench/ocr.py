"""OCR benchmark: a question set's documents as scanned pages, read back by policyqa's OCR.

``python -m policyqa.eval.bench.ocr ../shared/data/bench/ncpqa-dev --docs 60 --out eval/results/ocr-ncpqa-dev``

1. Picks ``--docs`` gold documents of the benchmark (a seeded sample of those some question
   is about), lays each out as A4 pages (``--chars-per-line`` by ``--lines-per-page``, 公文
   style: paragraphs indented two characters, a ``— N —`` page number at the foot), renders them
   at 150 dpi with a CJK font and makes them look scanned: a slight rotation (±``--max-rotation``
   degrees), grain (Gaussian noise), a little blur, JPEG compression; the pages of a document are
   written as one image-only PDF.
2. Reads every page with a fresh :class:`~policyqa.corpus.ocr.OcrReader` (no cached results, one
   page per core at once, as indexing does) and reports the **character error rate** (edit
   distance over the page's characters, whitespace ignored) and **pages/s** (wall time of the OCR
   alone; CPU seconds per page and the load average beside it, as the machine may be shared).
3. Loads the scanned PDFs through the real loader (:func:`~policyqa.corpus.pdf.load_pdf`, OCR
   results now from the cache) and evaluates retrieval (``--systems``, MRR@10 at document level)
   on the whole corpus twice: as text, and with the sampled documents replaced by their OCR'd
   version, on the questions about the sampled documents.

Results go to ``OUT.json`` / ``OUT.md`` with the command, the commit and the machine.
:func:`render_page`, :func:`layout_pages`, :func:`scan_pdf` and :func:`find_cjk_font` are the
renderer the corpus tests build their scanned fixtures with.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from policyqa.eval.report import md_table, module_command, write_result_pair
from policyqa.eval.runner import git_state, machine_facts

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont

__all__ = [
    "character_error_rate",
    "edit_distance",
    "find_cjk_font",
    "layout_pages",
    "main",
    "render_page",
    "scan_pdf",
]

logger = logging.getLogger(__name__)

#: A4 at 150 dpi, in pixels.
PAGE_SIZE = (1240, 1754)
_FONT_GLOBS = ("NotoSansCJK-Regular.ttc", "NotoSerifCJK-Regular.ttc", "wqy-zenhei.ttc", "wqy-microhei.ttc")
_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")


def find_cjk_font(size: int = 30) -> FreeTypeFont | None:
    """A Simplified-Chinese font of the system (Debian ``fonts-noto-cjk`` or WenQuanYi), or None."""
    from PIL import ImageFont

    for name in _FONT_GLOBS:
        for root in _FONT_DIRS:
            for path in sorted(root.rglob(name)) if root.is_dir() else []:
                fallback = None
                for index in range(10):
                    try:
                        font = ImageFont.truetype(str(path), size, index=index)
                    except OSError:
                        break
                    fallback = fallback or font
                    if "SC" in " ".join(part or "" for part in font.getname()):
                        return font
                if fallback is not None:
                    return fallback
    return None


def layout_pages(text: str, chars_per_line: int = 30, lines_per_page: int = 26) -> list[list[str]]:
    """``text`` as pages of lines: each paragraph (a line of ``text``, or a run after a space in a
    text without line breaks) indented by two full-width spaces and wrapped."""
    paragraphs = [p.strip() for p in text.replace("\u3000", " ").split("\n") if p.strip()]
    if len(paragraphs) == 1:
        paragraphs = [p for p in paragraphs[0].split(" ") if p]
    lines: list[str] = []
    for paragraph in paragraphs:
        rest = "\u3000\u3000" + paragraph
        while rest:
            lines.append(rest[:chars_per_line])
            rest = rest[chars_per_line:]
    return [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)] or [[]]


def render_page(
    lines: Sequence[str],
    font: FreeTypeFont,
    *,
    footer: str = "",
    rotation: float = 0.0,
    noise: float = 0.0,
    blur: float = 0.0,
    seed: int = 0,
    centered: Sequence[int] = (),
) -> Image:
    """One A4 page (150 dpi, grey) with ``lines`` from the top margin (those numbered in
    ``centered`` centred, as a title is) and ``footer`` centred at the foot; ``rotation`` degrees,
    Gaussian ``noise`` (grey levels) and ``blur`` make it a scan."""
    from PIL import Image as PilImage
    from PIL import ImageDraw, ImageFilter

    page = PilImage.new("L", PAGE_SIZE, 255)
    draw = ImageDraw.Draw(page)
    size = int(getattr(font, "size", 30))
    y = 160
    for i, line in enumerate(lines):
        x = (PAGE_SIZE[0] - draw.textlength(line, font=font)) / 2 if i in centered else 150
        draw.text((x, y), line, font=font, fill=0)
        y += int(size * 1.75)
    if footer:
        width = draw.textlength(footer, font=font)
        draw.text(((PAGE_SIZE[0] - width) / 2, PAGE_SIZE[1] - 140), footer, font=font, fill=0)
    if rotation:
        page = page.rotate(rotation, resample=PilImage.Resampling.BICUBIC, fillcolor=255)
    if blur:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        rng = np.random.default_rng(seed)
        pixels = np.asarray(page, dtype=np.float32) + rng.normal(0.0, noise, (PAGE_SIZE[1], PAGE_SIZE[0]))
        page = PilImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    return page


def scan_pdf(pages: Sequence[Image], path: Path, *, quality: int = 75) -> None:
    """Write ``pages`` as an image-only PDF (JPEG-compressed, 150 dpi), as a scanner does."""
    first, *rest = pages
    first.save(path, "PDF", save_all=True, append_images=rest, resolution=150.0, quality=quality)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance of ``a`` and ``b`` (numpy, one row at a time)."""
    if not a or not b:
        return len(a) or len(b)
    codes_b = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    row = np.arange(len(b) + 1, dtype=np.int64)
    offsets = np.arange(len(b) + 1, dtype=np.int64)
    for i, ch in enumerate(a, start=1):
        cost = (codes_b != ord(ch)).astype(np.int64)
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)  # deletion, substitution
        # insertion: new[j] = min over k <= j of new[k] + (j - k)
        row = np.minimum.accumulate(new - offsets) + offsets
    return int(row[-1])


def _squeeze(text: str) -> str:
    return "".join(text.split()).replace("\u3000", "")


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over the reference's characters, whitespace ignored on both sides."""
    ref, hyp = _squeeze(reference), _squeeze(hypothesis)
    return edit_distance(ref, hyp) / max(1, len(ref))


# --------------------------------------------------------------------------------------------
# the benchmark


def _sample_docs(bench: Any, n: int, seed: int) -> list[Any]:
    gold = {d for rel in bench.qrels.values() for d, grade in rel.items() if grade > 0}
    docs = [d for d in bench.documents if d.id in gold and d.text.strip()]
    random.Random(seed).shuffle(docs)
    return docs[:n]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from policyqa.corpus.models import Document
    from policyqa.corpus.ocr import OcrReader
    from policyqa.corpus.pdf import load_pdf
    from policyqa.eval.datasets import load_beir
    from policyqa.eval.runner import run_benchmark
    from policyqa.settings import Settings

    font = find_cjk_font(args.font_size)
    if font is None:
        raise SystemExit("no CJK font found: apt-get install fonts-noto-cjk")
    bench = load_beir(args.benchmark)
    sample = _sample_docs(bench, args.docs, args.seed)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="policyqa-ocr-bench-"))
    cache = work / "ocr-cache"
    workers = args.workers or min(4, os.cpu_count() or 1)
    reader = OcrReader(cache_dir=cache, dpi=150, show_progress=False, workers=workers)
    errors = chars = 0
    page_cers: list[float] = []
    ocr_wall = ocr_cpu = 0.0
    n_pages = 0
    pdfs: dict[str, Path] = {}
    import pypdfium2 as pdfium
    from tqdm.auto import tqdm

    with tqdm(total=len(sample), desc="scan + OCR", unit="doc", disable=not args.progress) as bar:
        for k, doc in enumerate(sample):
            images = []
            for number, lines in enumerate(
                layout_pages(doc.text, args.chars_per_line, args.lines_per_page), 1
            ):
                image = render_page(
                    lines,
                    font,
                    footer=f"— {number} —",
                    rotation=rng.uniform(-args.max_rotation, args.max_rotation),
                    noise=args.noise,
                    blur=0.6,
                    seed=args.seed * 100_003 + k * 101 + number,
                )
                images.append((lines, image))
            path = work / f"{k:04d}.pdf"
            scan_pdf([im for _l, im in images], path)
            pdfs[doc.id] = path
            # read the pages as the loader does (pypdfium2 at the reader's dpi, ``workers`` pages
            # at once), timing the OCR alone; the loader below then finds them in the cache
            pdf = pdfium.PdfDocument(str(path))
            rendered = []
            for number in range(len(images)):
                pdf_page = pdf[number]
                rendered.append(pdf_page.render(scale=reader.dpi / 72, grayscale=True).to_pil())
                pdf_page.close()
            pdf.close()
            t0, c0 = time.perf_counter(), time.process_time()
            pages = list(reader.read_all(rendered, total=len(rendered), desc=path.name, progress=False))
            ocr_wall += time.perf_counter() - t0
            ocr_cpu += time.process_time() - c0
            for (lines, _image), page in zip(images, pages, strict=True):
                ref = _squeeze("".join(lines))
                distance = edit_distance(ref, _squeeze(page.text))
                errors += distance
                chars += len(ref)
                page_cers.append(distance / max(1, len(ref)))
                n_pages += 1
            bar.update(1)
    # the real loader on the scanned PDFs (render → OCR through the cache → text)
    t0 = time.perf_counter()
    loader = OcrReader(cache_dir=cache, dpi=150, show_progress=False)
    ocr_docs: dict[str, Document] = {}
    for doc_id, path in pdfs.items():
        loaded = load_pdf(path, ocr=loader)
        ocr_docs[doc_id] = Document(id=doc_id, title="", text=loaded.text)
    load_s = time.perf_counter() - t0
    doc_cer = sum(character_error_rate(d.text, ocr_docs[d.id].text) for d in sample) / max(1, len(sample))
    sampled = {d.id for d in sample}
    questions = [q for q, rel in bench.qrels.items() if any(d in sampled for d, g in rel.items() if g > 0)]
    subset = replace(
        bench,
        queries={q: bench.queries[q] for q in questions},
        qrels={q: bench.qrels[q] for q in questions},
        answers={},
        answer_spans={},
        no_answer=set(),
    )
    scanned = replace(
        subset,
        name=f"{bench.name}-ocr",
        corpus_name=f"{bench.name}-ocr-{args.docs}-{args.seed}",
        documents=[ocr_docs.get(d.id, d) for d in bench.documents],
    )
    settings = Settings(progress=args.progress)
    systems = [s for s in args.systems.split(",") if s]
    retrieval: dict[str, dict[str, float]] = {}
    for label, which in (("text", subset), ("ocr", scanned)):
        result = run_benchmark(which, settings, systems=systems, level="doc", show_progress=args.progress)
        retrieval[label] = {name: round(s.metrics["mrr@10"], 4) for name, s in result.systems.items()}
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "benchmark": bench.name,
        "documents_scanned": len(sample),
        "pages": n_pages,
        "characters": chars,
        "questions": len(questions),
        "corpus_documents": len(bench.documents),
        "cer": round(errors / max(1, chars), 4),
        "cer_page_median": round(float(np.median(page_cers)), 4) if page_cers else None,
        "cer_page_p90": round(float(np.quantile(page_cers, 0.9)), 4) if page_cers else None,
        "cer_document_after_loading": round(doc_cer, 4),
        "ocr_pages_per_s": round(n_pages / ocr_wall, 3) if ocr_wall else None,
        "ocr_cpu_s_per_page": round(ocr_cpu / max(1, n_pages), 3),
        "load_from_cache_s": round(load_s, 1),
        "mrr@10": retrieval,
        "scan": {
            "dpi": 150,
            "font_size_px": args.font_size,
            "chars_per_line": args.chars_per_line,
            "lines_per_page": args.lines_per_page,
            "max_rotation_deg": args.max_rotation,
            "noise_sigma": args.noise,
            "blur_px": 0.6,
            "jpeg_quality": 75,
            "seed": args.seed,
        },
        "engine": reader.engine.name,
        "ocr_workers": workers,
        "load_average_1m": round(load[0], 2),
        "load_average_15m": round(load[2], 2),
    }


def render_markdown(report: dict[str, Any]) -> str:
    systems = sorted(report["mrr@10"]["text"])
    rows = [
        [
            str(report["documents_scanned"]),
            str(report["pages"]),
            f"{100 * report['cer']:.2f} %",
            f"{report['ocr_pages_per_s']}",
            f"{report['ocr_cpu_s_per_page']}",
            *(f"{report['mrr@10']['text'][s]:.4f} / {report['mrr@10']['ocr'][s]:.4f}" for s in systems),
        ]
    ]
    header = [
        "docs scanned",
        "pages",
        "CER",
        "OCR pages/s",
        "CPU s/page",
        *(f"MRR@10 {s} text / OCR" for s in systems),
    ]
    scan = report["scan"]
    return (
        f"# OCR benchmark: {report['benchmark']} as scanned pages\n\n"
        f"Command: `{report['command']}`  \nCommit: `{report['code'].get('commit', '?')}`"
        f" (modified: {', '.join(report['code'].get('modified', [])) or 'none'})  \n"
        f"Created: {report['created']} · {report['machine']['cpus']} CPUs · load average at the end "
        f"{report['load_average_1m']} (1 min), {report['load_average_15m']} (15 min) · engine `{report['engine']}`, {report['ocr_workers']} pages at once "
        "(one single-threaded session each)\n\n"
        + md_table(header, rows)
        + f"\n\nCER over {report['characters']:,} characters of the pages (whitespace ignored); per page median "
        f"{100 * (report['cer_page_median'] or 0):.2f} %, 90th percentile {100 * (report['cer_page_p90'] or 0):.2f} %; "
        f"per document after loading (furniture removed, lines joined): "
        f"{100 * report['cer_document_after_loading']:.2f} %.\n"
        f"MRR@10 on the {report['questions']} questions about the scanned documents, whole corpus of "
        f"{report['corpus_documents']} documents, the scanned ones as text vs as OCR'd.\n\n"
        f"Scans: A4 at {scan['dpi']} dpi, {scan['font_size_px']} px font, {scan['chars_per_line']} characters × "
        f"{scan['lines_per_page']} lines a page, rotation ±{scan['max_rotation_deg']}°, noise σ {scan['noise_sigma']}, "
        f"blur {scan['blur_px']} px, JPEG quality {scan['jpeg_quality']}, seed {scan['seed']}.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.eval.bench.ocr", description=__doc__.split("\n")[0]
    )
    parser.add_argument("benchmark", type=Path, help="a BEIR benchmark folder (ncpqa-dev)")
    parser.add_argument("--docs", type=int, default=60, help="gold documents to scan (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--systems", default="bm25,hybrid")
    parser.add_argument("--chars-per-line", type=int, default=30)
    parser.add_argument("--lines-per-page", type=int, default=26)
    parser.add_argument("--font-size", type=int, default=30)
    parser.add_argument("--max-rotation", type=float, default=1.0)
    parser.add_argument("--noise", type=float, default=12.0)
    parser.add_argument(
        "--workers", type=int, default=0, help="pages read at once (0: one per core, at most 4)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code = git_state()
    report = run(args)
    report.update(
        command=module_command("policyqa.eval.bench.ocr", argv),
        code=code,
        machine=machine_facts(),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    text = render_markdown(report)
    print(text)
    write_result_pair(args.out, report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
