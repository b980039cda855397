"""Zip containers are inflated as a stream with hard limits before a parser sees them
(hardening issue, finding 3: a 677 KB .docx that unpacks to 190 MB drove the server to 7.8 GB)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from policyqa.corpus.archive import zip_bomb_reason
from policyqa.corpus.encoding import UnreadableFileError
from policyqa.corpus.loaders import load_docx, load_paths
from policyqa.eval.bench.abuse import write_docx_bomb

_PARA = "<w:p><w:r><w:t>稳岗返还政策继续实施，补贴标准为百分之五十。</w:t></w:r></w:p>"
_DOC_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
)
_DOC_TAIL = "</w:body></w:document>"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_real_document_passes() -> None:
    assert zip_bomb_reason(_zip({"word/document.xml": (_DOC_HEAD + _PARA * 50 + _DOC_TAIL).encode()})) is None


def test_total_inflated_size_is_counted_not_read_from_the_headers() -> None:
    data = _zip({"a.xml": bytes(range(256)) * 4000, "b.xml": bytes(range(256)) * 4000})  # 2 × 1,024,000
    reason = zip_bomb_reason(data, max_unpacked=1_500_000, max_ratio=10**9)
    assert reason is not None and "inflates to more than" in reason and "'b.xml'" in reason
    assert zip_bomb_reason(data, max_unpacked=3_000_000, max_ratio=10**9) is None


def test_a_member_inflating_more_than_the_ratio_is_refused() -> None:
    data = _zip({"word/document.xml": b"0" * (3 * 1024 * 1024)})  # about 1000-fold
    reason = zip_bomb_reason(data)
    assert reason is not None and "inflates more than 100-fold" in reason
    assert zip_bomb_reason(data, max_ratio=10_000) is None


def test_headers_that_lie_about_the_size_make_it_corrupt_not_inflated() -> None:
    data = bytearray(_zip({"word/document.xml": b"<x>" + b"0" * 500_000 + b"</x>"}))
    # the central directory and the local header claim 1,000 bytes inflated
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 1000)
    struct.pack_into("<I", data, 22, 1000)
    reason = zip_bomb_reason(bytes(data))
    assert reason is not None and reason.startswith("a corrupt zip archive")


def test_not_a_zip_is_corrupt() -> None:
    reason = zip_bomb_reason(b"PK\x03\x04 not really")
    assert reason is not None and "corrupt" in reason


def test_load_docx_refuses_a_bomb_with_its_reason(tmp_path: Path) -> None:
    bomb = write_docx_bomb(tmp_path / "bomb.docx", 20)
    assert bomb.stat().st_size < 400_000
    with pytest.raises(UnreadableFileError, match="decompression bomb"):
        load_docx(bomb)
    # in a folder, the bomb is skipped with its reason and the rest is indexed
    (tmp_path / "ok.txt").write_text("关于稳岗返还的通知\n补贴标准为百分之五十。", encoding="utf-8")
    report = load_paths(tmp_path)
    assert [d.title for d in report.documents] == ["关于稳岗返还的通知"]
    assert len(report.errors) == 1 and "decompression bomb" in report.errors[0][1]


_MEASURE = """
import json, resource, sys, time
from policyqa.corpus.loaders import load_docx
from policyqa.corpus.encoding import UnreadableFileError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    load_docx(sys.argv[1])
    outcome = "loaded"
except UnreadableFileError as exc:
    outcome = exc.reason
took = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": took, "rss_growth_kb": after - before}))
"""


def test_a_190_mb_bomb_is_refused_in_seconds_with_little_memory(tmp_path: Path) -> None:
    """The issue's target: refused in under 5 s, RSS growth under 200 MB (in a fresh process)."""
    bomb = write_docx_bomb(tmp_path / "bomb.docx", 190)
    assert bomb.stat().st_size < 2_000_000
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(bomb)], capture_output=True, text=True, timeout=120, check=True
    )
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    assert "decompression bomb" in measured["outcome"]
    assert measured["seconds"] < 5.0
    assert measured["rss_growth_kb"] < 200 * 1024
