"""Index generations: the atomic switch and what a commit keeps."""

from __future__ import annotations

from pathlib import Path

from policyqa.index.layout import IndexLayout


def _commit(layout: IndexLayout, marker: str) -> Path:
    work = layout.new_workdir()
    (work / "manifest.json").write_text(marker, encoding="utf-8")
    return layout.commit(work)


def test_commit_keeps_the_served_generation_and_the_new_one(tmp_path: Path) -> None:
    layout = IndexLayout(tmp_path / "idx")
    first = _commit(layout, "1")
    second = _commit(layout, "2")
    third = _commit(layout, "3")
    assert (first.name, second.name, third.name) == ("gen-000001", "gen-000002", "gen-000003")
    assert layout.current() == third
    assert sorted(p.name for p in layout.root.glob("gen-*")) == ["gen-000002", "gen-000003"]


def test_an_orphan_from_a_crash_is_removed_and_the_served_generation_kept(tmp_path: Path) -> None:
    """Regression (hardening issue, finding 6): after a crash between the rename of a new
    generation and the switch of CURRENT, the next write kept the orphan and deleted the
    generation being served."""
    layout = IndexLayout(tmp_path / "idx")
    _commit(layout, "1")
    served = _commit(layout, "2")
    orphan = layout.root / "gen-000003"  # renamed into place; the writer died before CURRENT
    orphan.mkdir()
    (orphan / "manifest.json").write_text("orphan", encoding="utf-8")
    assert layout.current() == served
    new = _commit(layout, "4")
    assert new.name == "gen-000004" and layout.current() == new
    assert served.is_dir() and (served / "manifest.json").read_text(encoding="utf-8") == "2"
    assert not orphan.exists()
    assert sorted(p.name for p in layout.root.glob("gen-*")) == ["gen-000002", "gen-000004"]
