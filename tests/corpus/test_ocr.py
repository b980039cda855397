"""Scans and images: OCR page by page, cached by page image, low confidence reported, reasons.

Most tests drive the loader with a scripted engine (fast, exact); the ``real`` ones run rapidocr's
shipped models on pages rendered with the system's CJK font (a few seconds a page on 2 cores)
and skip with the reason when the font is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from policyqa.corpus.layout import Box
from policyqa.corpus.loaders import load_path, load_paths
from policyqa.corpus.ocr import OcrReader, RapidOcrEngine, ocr_available
from policyqa.eval.bench.ocr import character_error_rate, find_cjk_font, render_page, scan_pdf
from policyqa.settings import Settings
from tests.corpus.pdfs import lines_page, merge_pdfs, write_pdf


class ScriptedEngine:
    """Answers each page image with the boxes scripted for its grey level (pages are blank)."""

    name = "scripted-1"

    def __init__(self, pages: dict[int, list[Box]]) -> None:
        self.pages = pages
        self.calls = 0

    def read(self, image: Image.Image) -> list[Box]:
        self.calls += 1
        level = image.convert("L").getpixel((0, 0))
        assert isinstance(level, int)
        return self.pages[level]


def _line(text: str, row: int, score: float = 0.99, x: float = 100) -> Box:
    return Box(text, x, 100 + 40 * row, x + 30 * len(text), 130 + 40 * row, score)


def _blank_pdf(path: Path, levels: list[int]) -> None:
    scan_pdf([Image.new("L", (620, 877), level) for level in levels], path)


SCRIPT = {
    250: [
        _line("青岛市商务局文件", 0, x=200),
        _line("青商发〔2024〕6号", 1, x=220),
        _line("关于支持企业参展的通知", 2, x=180),
        _line("各区市商务主管部门：", 3),
        _line("对企业参加境外重点展会的，按照展位", 4, x=160),
        _line("费的50%给予补贴。", 5),
        _line("— 1 —", 12, x=280),
    ],
    240: [_line("字迹模糊的一行", 0, score=0.42), _line("— 2 —", 12, x=280)],
}


def test_a_scanned_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    _blank_pdf(path, [250, 240])
    engine = ScriptedEngine(SCRIPT)
    (doc,) = load_path(path, ocr=OcrReader(engine))
    assert doc.text.split("\n") == [
        "关于支持企业参展的通知",
        "各区市商务主管部门：",
        "对企业参加境外重点展会的，按照展位费的50%给予补贴。",
        "字迹模糊的一行",
    ]
    assert (doc.meta.issuer, doc.meta.doc_number) == ("青岛市商务局", "青商发〔2024〕6号")
    assert doc.meta.extra["ocr_pages"] == [1, 2]
    assert doc.meta.extra["low_confidence_pages"] == [2]
    assert doc.meta.extra["page_starts"] == [0, 51]


def test_low_confidence_pages_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    _blank_pdf(path, [250, 240])
    report = load_paths([tmp_path], ocr=OcrReader(ScriptedEngine(SCRIPT)))
    assert len(report.documents) == 1
    assert report.warnings == [
        (
            f"{tmp_path.name}/scan.pdf",
            f"OCR read page(s) 2 with low confidence (mean {report.documents[0].meta.extra['ocr_confidence']})",
        )
    ]


def test_ocr_results_are_cached_by_page_image(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    _blank_pdf(path, [250, 240])
    first = ScriptedEngine(SCRIPT)
    reader = OcrReader(first, cache_dir=tmp_path / "cache")
    (doc,) = load_path(path, ocr=reader)
    assert (first.calls, reader.stats) == (2, {"read": 2, "cached": 0})
    again = ScriptedEngine(SCRIPT)
    reader = OcrReader(again, cache_dir=tmp_path / "cache")
    (doc2,) = load_path(path, ocr=reader)
    assert (again.calls, reader.stats) == (0, {"read": 0, "cached": 2})
    assert doc2.text == doc.text


def test_mixed_pdf_keeps_its_text_layer(tmp_path: Path) -> None:
    text_part, scan_part, path = tmp_path / "a.pdf", tmp_path / "b.pdf", tmp_path / "mixed.pdf"
    write_pdf(text_part, [lines_page(["第一条 为了规范管理，制定本办法。"])])
    _blank_pdf(scan_part, [240])
    merge_pdfs(path, [text_part, scan_part])
    engine = ScriptedEngine({240: [_line("第二条 本办法自公布之日起施行。", 0)]})
    (doc,) = load_path(path, ocr=OcrReader(engine, min_confidence=0.0))
    assert doc.text.split("\n") == ["第一条 为了规范管理，制定本办法。", "第二条 本办法自公布之日起施行。"]
    assert (engine.calls, doc.meta.extra["ocr_pages"], doc.meta.extra["low_confidence_pages"]) == (1, [2], [])
    (no_ocr,) = load_path(path)
    assert no_ocr.text == "第一条 为了规范管理，制定本办法。"
    assert no_ocr.meta.extra["pages_without_text"] == [2]


def test_each_bad_file_gets_its_reason_and_the_rest_is_indexed(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    write_pdf(tmp_path / "good.pdf", [lines_page(["第一条 为了规范管理，制定本办法。"])])
    _blank_pdf(tmp_path / "scan.pdf", [250])
    Image.new("L", (40, 40), 255).save(tmp_path / "photo.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\nnothing here")
    writer = PdfWriter(clone_from=str(tmp_path / "good.pdf"))
    writer.encrypt(user_password="secret", algorithm="AES-128")
    with (tmp_path / "locked.pdf").open("wb") as f:
        writer.write(f)
    report = load_paths([tmp_path])
    assert [d.meta.source for d in report.documents] == [f"{tmp_path.name}/good.pdf"]
    reasons = {Path(p).name: r for p, r in report.errors}
    assert reasons["locked.pdf"] == "encrypted: the PDF needs a password to open"
    assert reasons["scan.pdf"] == (
        "no extractable text: 1 page(s) without a text layer (a scan) and OCR is off "
        "(set POLICYQA_OCR=true to read scans)"
    )
    assert (
        reasons["photo.png"]
        == "an image: its text needs OCR and OCR is off (set POLICYQA_OCR=true to read scans)"
    )
    assert reasons["broken.jpg"] == "not a readable image (corrupt, or not an image of its type)"
    assert reasons["broken.pdf"].startswith("not a readable PDF")
    assert sorted(reasons) == ["broken.jpg", "broken.pdf", "locked.pdf", "photo.png", "scan.pdf"]
    assert all("\n" not in r and str(tmp_path) not in r for r in reasons.values())


def test_pages_read_at_once_stay_in_order(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    levels = [250, 240, 230, 220, 210]
    _blank_pdf(path, levels)
    words = ["总则", "申请条件", "补贴标准", "办理流程", "附则"]  # not alike: no running header
    engine = ScriptedEngine(
        {level: [_line(f"第{i + 1}条 {words[i]}。", 0)] for i, level in enumerate(levels)}
    )
    reader = OcrReader(engine, cache_dir=tmp_path / "cache", workers=2)
    (doc,) = load_path(path, ocr=reader)
    assert doc.text.split("\n") == [f"第{i + 1}条 {w}。" for i, w in enumerate(words)]
    assert (engine.calls, reader.stats, doc.meta.extra["ocr_pages"]) == (
        5,
        {"read": 5, "cached": 0},
        [1, 2, 3, 4, 5],
    )


def test_reader_from_settings(tmp_path: Path) -> None:
    assert OcrReader.from_settings(Settings(ocr=False)) is None
    reader = OcrReader.from_settings(
        Settings(ocr=True, cache_dir=tmp_path, ocr_dpi=200, progress=False, ocr_workers=3)
    )
    assert reader is not None
    assert (reader.dpi, reader.show_progress, reader.cache is not None, reader.workers) == (
        200,
        False,
        True,
        3,
    )
    assert reader.cache.directory == tmp_path / "ocr"  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# the real engine


@pytest.fixture(scope="module")
def font():  # type: ignore[no-untyped-def]
    if ocr_available() is not None:
        pytest.skip(str(ocr_available()))
    found = find_cjk_font(32)
    if found is None:
        pytest.skip("no CJK font on this machine (apt-get install fonts-noto-cjk)")
    return found


PAGE = [
    "青岛市人民政府关于促进外贸稳规模优结构的通知",
    "各区、市人民政府，市政府各部门：",
    "\u3000\u3000对外贸企业的融资需求给予优先支持，降低企业综合融资",
    "成本，扩大出口信用保险覆盖面，支持企业开拓多元市场。",
]


def test_real_ocr_reads_a_scan_and_an_image(tmp_path: Path, font) -> None:  # type: ignore[no-untyped-def]
    page = render_page(PAGE, font, footer="— 1 —", rotation=0.6, noise=10, blur=0.5, seed=1, centered=(0,))
    scan_pdf([page], tmp_path / "scan.pdf")
    page.save(tmp_path / "scan.png")
    reader = OcrReader(RapidOcrEngine(), cache_dir=tmp_path / "cache")
    report = load_paths([tmp_path], ocr=reader)
    assert report.errors == []
    by_name = {Path(d.meta.source or "").name: d for d in report.documents}
    for doc in by_name.values():
        assert doc.text.split("\n") == [
            "青岛市人民政府关于促进外贸稳规模优结构的通知",
            "各区、市人民政府，市政府各部门：",
            "对外贸企业的融资需求给予优先支持，降低企业综合融资成本，扩大出口信用保险覆盖面，支持企业开拓多元市场。",
        ]
        assert doc.title == "青岛市人民政府关于促进外贸稳规模优结构的通知"
        assert doc.meta.extra["ocr_confidence"] > 0.9
    assert sorted(by_name) == ["scan.pdf", "scan.png"]
    assert character_error_rate("".join(PAGE), by_name["scan.pdf"].text) == 0.0


def test_engines_are_loaded_once_per_page_read_at_once(tmp_path: Path, font) -> None:  # type: ignore[no-untyped-def]
    page = render_page(["第一条 为了规范管理，制定本办法。"], font)
    engine = RapidOcrEngine()
    for _ in range(3):  # three readers, each with its own pool of threads
        reader = OcrReader(engine, workers=2)
        assert [p.text for p in reader.read_all([page, page], total=2, desc="x")] == [
            "第一条为了规范管理，制定本办法。"  # one box: OCR reads no space
        ] * 2
    assert 1 <= engine.loaded() <= 2
