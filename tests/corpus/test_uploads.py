"""Uploads of the new formats: checked by their first bytes, read with OCR, no server path shown."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from policyqa.corpus.layout import Box
from policyqa.corpus.ocr import OcrReader
from policyqa.corpus.uploads import UploadedFile, check_upload, read_uploads
from tests.corpus.ofds import lines, write_ofd

DOC = Path(__file__).resolve().parent / "data" / "notice.doc"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (60, 40), 250).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.png", b"GIF89a....", "not a .png image (its first bytes are not an image header of that type)"),
        (
            "a.jpg",
            b"\x89PNG\r\n\x1a\n",
            "not a .jpg image (its first bytes are not an image header of that type)",
        ),
        ("a.ofd", b"<xml/>", "not an .ofd file (not a zip archive)"),
        ("a.doc", b"just text", "not a .doc file (no Word 97\u20132003 / WPS header)"),
        ("a.wps", b"just text", "not a .wps file (no Word 97\u20132003 / WPS header)"),
        ("a.tif", b"II*\x00rest", None),
        ("a.doc", DOC.read_bytes(), None),
    ],
)
def test_new_types_are_checked_by_their_first_bytes(name: str, data: bytes, reason: str | None) -> None:
    assert check_upload(name, data) == reason


class _Engine:
    name = "scripted-upload"

    def read(self, image: Image.Image) -> list[Box]:
        return [Box("第一条 扫描件里的条文。", 10, 10, 200, 22, 0.5)]


def test_an_uploaded_scan_is_read_with_ocr_and_its_doubt_reported(tmp_path: Path) -> None:
    ofd = tmp_path / "n.ofd"
    write_ofd(ofd, [lines(["第一条 为了规范管理，制定本办法。"])])
    statuses, docs = read_uploads(
        [UploadedFile("扫描件.png", _png()), UploadedFile("办法.ofd", ofd.read_bytes())],
        ocr=OcrReader(_Engine()),
    )
    assert [(s.name, s.status, s.reason) for s in statuses] == [
        ("扫描件.png", "indexed", None),
        ("办法.ofd", "indexed", None),
    ]
    assert statuses[0].warnings == ["OCR read page(s) 1 with low confidence (mean 0.5)"]
    assert [d.text for file_docs in docs for d in file_docs] == [
        "第一条 扫描件里的条文。",
        "第一条 为了规范管理，制定本办法。",
    ]
    assert [d.meta.source for file_docs in docs for d in file_docs] == ["扫描件.png", "办法.ofd"]


def test_without_ocr_an_uploaded_image_is_refused_with_its_reason() -> None:
    statuses, docs = read_uploads([UploadedFile("scan.png", _png())])
    assert (statuses[0].status, statuses[0].reason) == (
        "rejected",
        "an image: its text needs OCR and OCR is off (set POLICYQA_OCR=true to read scans)",
    )
    assert docs == [[]]


def test_originals_are_kept_by_content_and_found_by_key_only(tmp_path: Path) -> None:
    from policyqa.corpus.loaders import load_paths
    from policyqa.corpus.originals import OriginalStore

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("第一条 正文。", encoding="utf-8")
    (tmp_path / "docs" / "b.txt").write_text("第一条 正文。", encoding="utf-8")  # the same content
    store = OriginalStore(tmp_path / "originals")
    report = load_paths([tmp_path / "docs"], originals=store)
    keys = {d.meta.extra["original"] for d in report.documents}
    assert len(keys) == 1 and len(report.documents) == 2
    (key,) = keys
    assert store.path_of(key) == tmp_path / "originals" / key
    assert store.path_of(key).read_text(encoding="utf-8") == "第一条 正文。"  # type: ignore[union-attr]
    for bad in ("../docs/a.txt", "/etc/passwd", key.upper(), key + "/x", None, 3):
        assert store.path_of(bad) is None
