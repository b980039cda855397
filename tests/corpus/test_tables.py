"""Tables become rows with their headers: DOCX (gridSpan, vMerge) and text-layer PDF tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyqa.corpus.chunker import Chunker
from policyqa.corpus.loaders import load_path
from policyqa.corpus.tables import GridCell, table_lines
from tests.corpus.pdfs import Page, grid_rules, lines_page, write_pdf


def test_rows_get_their_headers() -> None:
    head = [GridCell("项目"), GridCell("标准"), GridCell("期限")]
    rows = [GridCell("稳岗返还"), GridCell("50%"), GridCell("2024年底")]
    assert table_lines([head, rows]) == ["项目: 稳岗返还 | 标准: 50% | 期限: 2024年底"]


def test_merged_cells_once_per_row_never_twice_in_a_row() -> None:
    head = [GridCell("项目"), GridCell("标准"), GridCell("上限")]
    kind = GridCell("社保补贴")  # merged down over two rows
    wide = GridCell("按实际缴费的50%")  # merged across two columns
    same_a, same_b = GridCell("50%"), GridCell("50%")  # two cells that merely hold the same text
    grid = [head, [kind, wide, wide], [kind, same_a, same_b], [GridCell(""), None, GridCell("1万元")]]
    assert table_lines(grid) == [
        "项目: 社保补贴 | 标准: 按实际缴费的50%",
        "项目: 社保补贴 | 标准: 50% | 上限: 50%",
        "上限: 1万元",
    ]


def test_one_row_has_no_header_and_a_header_merged_down_is_not_data() -> None:
    assert table_lines([[GridCell("甲"), GridCell("乙")]]) == ["甲 | 乙"]
    title = GridCell("项目")
    assert table_lines([[title, GridCell("金额")], [title, GridCell("3万元")]]) == ["金额: 3万元"]
    assert table_lines([]) == []


def _docx_table(path: Path) -> None:
    docx = pytest.importorskip("docx")
    d = docx.Document()
    d.add_paragraph("关于印发稳岗返还标准的通知")
    table = d.add_table(rows=4, cols=3)
    for i, text in enumerate(["项目", "标准", "上限"]):
        table.cell(0, i).text = text
    kind = table.cell(1, 0).merge(table.cell(2, 0))  # vertical merge (vMerge)
    kind.text = "稳岗返还"
    wide = table.cell(1, 1).merge(table.cell(1, 2))  # horizontal merge (gridSpan)
    wide.text = "上年度失业保险费的50%"
    table.cell(2, 1).text = "30%"
    table.cell(2, 2).text = "30%"
    table.cell(3, 0).text = "技能补贴"
    table.cell(3, 1).text = "1500元"
    table.cell(3, 2).text = "每人每年一次"
    d.add_paragraph("本通知自印发之日起施行。")
    d.save(str(path))


def test_docx_table_with_merged_cells(tmp_path: Path) -> None:
    path = tmp_path / "table.docx"
    _docx_table(path)
    (doc,) = load_path(path)
    assert doc.text.split("\n") == [
        "关于印发稳岗返还标准的通知",
        "项目: 稳岗返还 | 标准: 上年度失业保险费的50%",
        "项目: 稳岗返还 | 标准: 30% | 上限: 30%",
        "项目: 技能补贴 | 标准: 1500元 | 上限: 每人每年一次",
        "本通知自印发之日起施行。",
    ]


def test_a_row_is_never_cut_by_the_chunker(tmp_path: Path) -> None:
    path = tmp_path / "table.docx"
    _docx_table(path)
    (doc,) = load_path(path)
    rows = [line for line in doc.text.split("\n") if " | " in line]
    for chunk in Chunker(max_chars=60, overlap_chars=0, min_chars=0).split(doc):
        for row in rows:
            start = doc.text.index(row)
            end = start + len(row)
            inside = chunk.start < end and start < chunk.end
            assert not inside or (chunk.start <= start and end <= chunk.end), (chunk.text, row)


def test_pdf_table_rows_with_headers_in_place(tmp_path: Path) -> None:
    xs, ys = [60, 200, 330, 460], [200, 225, 250, 275]
    merged = [(60, 250, 200, 250)]  # no rule between rows 2 and 3 in the first column
    page = lines_page(["关于公布补贴标准的通知", "各有关单位：现将补贴标准公布如下。"], top=60)
    cells = [
        (0, 0, "项目"),
        (1, 0, "标准"),
        (2, 0, "上限"),
        (0, 1, "稳岗返还"),
        (1, 1, "50%"),
        (2, 1, "3万元"),
        (1, 2, "30%"),
        (2, 2, "1万元"),
    ]
    for col, row, text in cells:
        page.texts.append((xs[col] + 4, ys[row] + 6, text, 12))
    page.rules.extend(grid_rules(xs, ys, skip=merged))
    page.texts.append((60, 320, "以上标准自发布之日起执行。", 12))
    path = tmp_path / "table.pdf"
    write_pdf(path, [page])
    (doc,) = load_path(path)
    assert doc.text.split("\n") == [
        "关于公布补贴标准的通知",
        "各有关单位：现将补贴标准公布如下。",
        "项目: 稳岗返还 | 标准: 50% | 上限: 3万元",
        "项目: 稳岗返还 | 标准: 30% | 上限: 1万元",
        "以上标准自发布之日起执行。",
    ]
    assert doc.meta.extra["tables"] == 1


def test_pdf_without_tables_keeps_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    write_pdf(path, [Page(texts=[(50, 60, "第一条 为了规范管理，制定本办法。", 12)])])
    (doc,) = load_path(path)
    assert doc.text == "第一条 为了规范管理，制定本办法。"
    assert "tables" not in doc.meta.extra
