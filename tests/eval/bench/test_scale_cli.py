"""`policyqa bench-scale` is wired into the CLI and rejects bad input before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyqa.cli import main


def test_missing_corpus_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-scale", "--sizes", "10k", "--corpus", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_reuse_needs_a_workdir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-scale", "--reuse", "--corpus", str(tmp_path)]) == 2
    assert "--reuse needs --workdir" in capsys.readouterr().err


def test_sizes_are_parsed_with_suffixes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench-scale", "--sizes", "ten"])
    assert exc.value.code == 2
