"""Word 97–2003 ``.doc`` and WPS ``.wps`` through a converter; refused with the package to install.

``data/notice.doc`` was written for these tests by LibreOffice 7.4 (``soffice --convert-to doc``)
from a ``.docx`` that python-docx made of the text below: a 版头, a table with a cell merged
down two rows, and a 版记. The converter tests skip, with the reason, when the converter is not
installed (``.ci/run`` installs antiword).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from policyqa.corpus import word
from policyqa.corpus.encoding import UnreadableFileError
from policyqa.corpus.loaders import load_path, load_paths

DOC = Path(__file__).resolve().parent / "data" / "notice.doc"

BODY = [
    "关于做好稳岗返还工作的通知",
    "各区、市人力资源和社会保障局：",
    "为支持企业稳定就业岗位，现将稳岗返还标准通知如下。",
]
TAIL = ["青岛市人力资源和社会保障局", "2024年3月1日"]


def _only(monkeypatch: pytest.MonkeyPatch, name: str | None) -> None:
    found = word.converters()
    if name is not None and not found[name]:
        pytest.skip(f"{name} is not installed here (Debian: apt-get install {name})")
    monkeypatch.setattr(word, "converters", lambda: {k: (v if k == name else None) for k, v in found.items()})


def _check_official(doc) -> None:  # type: ignore[no-untyped-def]
    assert doc.title == "关于做好稳岗返还工作的通知"
    assert (doc.meta.issuer, doc.meta.doc_number, doc.meta.date) == (
        "青岛市人力资源和社会保障局",
        "青人社发〔2024〕5号",
        "2024-03-01",
    )
    assert doc.meta.extra["cc"] == "市财政局。"
    assert doc.meta.extra["printed_date"] == "2024-03-02"


def test_doc_through_antiword(monkeypatch: pytest.MonkeyPatch) -> None:
    _only(monkeypatch, "antiword")
    (doc,) = load_path(DOC)
    assert doc.text.split("\n") == [
        *BODY,
        "项目: 稳岗返还 | 标准: 50% | 上限: 3万元",
        "标准: 30% | 上限: 1万元",  # antiword shows a cell merged down as an empty one
        *TAIL,
    ]
    assert doc.meta.extra["converted_by"] == "antiword"
    _check_official(doc)


def test_doc_through_libreoffice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _only(monkeypatch, "libreoffice")
    shutil.copyfile(DOC, tmp_path / "通知.doc")
    shutil.copyfile(DOC, tmp_path / "通知.wps")  # Kingsoft WPS files are the same binary format
    report = load_paths([tmp_path])
    assert report.errors == []
    assert len(report.documents) == 2
    for doc in report.documents:
        assert doc.text.split("\n") == [
            *BODY,
            "项目: 稳岗返还 | 标准: 50% | 上限: 3万元",
            "项目: 稳岗返还 | 标准: 30% | 上限: 1万元",
            *TAIL,
        ]
        assert doc.meta.extra["converted_by"] == "libreoffice"
        _check_official(doc)
    assert sorted(Path(d.meta.source or "").name for d in report.documents) == ["通知.doc", "通知.wps"]


def test_without_a_converter_the_reason_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _only(monkeypatch, None)
    shutil.copyfile(DOC, tmp_path / "a.doc")
    shutil.copyfile(DOC, tmp_path / "b.wps")
    (tmp_path / "c.txt").write_text("第一条 其余的文件照常索引。", encoding="utf-8")
    report = load_paths([tmp_path])
    assert [d.text for d in report.documents] == ["第一条 其余的文件照常索引。"]
    assert sorted((Path(p).name, r) for p, r in report.errors) == [
        (
            "a.doc",
            "converter missing: a .doc file is read through a converter; install antiword "
            "(or libreoffice-writer-nogui) (Debian: apt-get install antiword)",
        ),
        (
            "b.wps",
            "converter missing: a .wps file is read through a converter; install libreoffice-writer-nogui "
            "(Debian: apt-get install libreoffice-writer-nogui)",
        ),
    ]


def test_a_docx_that_is_really_a_doc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _only(monkeypatch, "antiword")
    shutil.copyfile(DOC, tmp_path / "notice.docx")
    (doc,) = load_path(tmp_path / "notice.docx")
    assert doc.text.split("\n")[:3] == BODY


def test_a_doc_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "a.doc").write_text("只是一段文字", encoding="utf-8")
    with pytest.raises(
        UnreadableFileError, match=r"not a Word 97–2003 or WPS file \(no OLE header\) although named .doc"
    ):
        list(load_path(tmp_path / "a.doc"))
