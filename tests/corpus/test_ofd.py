"""OFD files (GB/T 33190): text in reading order, DocInfo metadata, pages, limits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from policyqa.corpus.encoding import UnreadableFileError
from policyqa.corpus.loaders import load_path, load_paths
from tests.corpus.ofds import lines, write_ofd

PAGE_1 = lines(
    [
        "青岛市人民政府公报",
        "青岛市人民政府文件",
        "青政发〔2024〕3号",
        "关于促进外贸稳规模优结构的通知",
        "各区、市人民政府，市政府各部门：",
        "\u3000\u3000为深入贯彻落实党中央、国务院关于稳外贸的决策部署，进",
    ]
) + [(100, 280, "— 1 —", 5.6)]
PAGE_2 = lines(
    [
        "青岛市人民政府公报",
        "一步促进我市外贸稳规模优结构，现就有关事项通知如下。",
        "青岛市人民政府",
        "2024年3月1日",
    ]
) + [(100, 280, "— 2 —", 5.6)]


def test_ofd_text_in_reading_order_with_its_metadata(tmp_path: Path) -> None:
    path = tmp_path / "notice.ofd"
    # objects stored out of reading order (the footer first, the body before the red head)
    write_ofd(
        path,
        [list(reversed(PAGE_1)), PAGE_2],
        title="关于促进外贸稳规模优结构的通知",
        author="青岛市人民政府办公厅",
        creation_date="2024-03-02",
    )
    (doc,) = load_path(path)
    assert doc.text.split("\n") == [
        "关于促进外贸稳规模优结构的通知",
        "各区、市人民政府，市政府各部门：",
        "为深入贯彻落实党中央、国务院关于稳外贸的决策部署，进一步促进我市外贸稳规模优结构，现就有关事项通知如下。",
        "青岛市人民政府",
        "2024年3月1日",
    ]
    assert doc.title == "关于促进外贸稳规模优结构的通知"
    assert (doc.meta.issuer, doc.meta.doc_number, doc.meta.date) == (
        "青岛市人民政府",
        "青政发〔2024〕3号",
        "2024-03-01",
    )
    assert doc.meta.extra["author"] == "青岛市人民政府办公厅"
    assert doc.meta.extra["created"] == "2024-03-02"
    assert doc.meta.extra["red_head"] == ["青岛市人民政府文件", "青政发〔2024〕3号"]
    starts = doc.meta.extra["page_starts"]
    assert doc.text[starts[1] :].startswith("一步促进")


def test_bad_ofd_files_get_their_reasons(tmp_path: Path) -> None:
    write_ofd(tmp_path / "good.ofd", [lines(["第一条 为了规范管理，制定本办法。"])])
    write_ofd(
        tmp_path / "locked.ofd",
        [lines(["第一条 看不见。"])],
        extra_members={"Doc_0/Encryptions.xml": b"<x/>"},
    )
    write_ofd(tmp_path / "images.ofd", [[]])
    (tmp_path / "broken.ofd").write_bytes(b"PK\x03\x04 not a zip at all")
    with zipfile.ZipFile(tmp_path / "nocontent.ofd", "w") as zf:
        zf.writestr("OFD.xml", "<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
    report = load_paths([tmp_path])
    assert [d.text for d in report.documents] == ["第一条 为了规范管理，制定本办法。"]
    reasons = {Path(p).name: r for p, r in report.errors}
    assert reasons["locked.ofd"] == "encrypted: the OFD file's content is encrypted"
    assert reasons["images.ofd"] == "no text in the OFD file (its pages hold images only: a scan)"
    assert reasons["broken.ofd"].startswith("not indexed: a corrupt zip archive")
    assert reasons["nocontent.ofd"].startswith("not a readable OFD file (")
    assert sorted(reasons) == ["broken.ofd", "images.ofd", "locked.ofd", "nocontent.ofd"]


def test_an_ofd_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.ofd"
    write_ofd(
        path, [lines(["第一条 正文。"])], extra_members={"Doc_0/Res/huge.xml": b"\0" * (3 * 1024 * 1024)}
    )
    with pytest.raises(UnreadableFileError, match="not indexed: a decompression bomb"):
        list(load_path(path))
