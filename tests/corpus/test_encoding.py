"""read_text / decode_bytes: BOMs, strict UTF-8, GB18030, detection, binary rejection."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest

from policyqa.corpus.encoding import UnreadableFileError, decode_bytes, normalize_newlines, read_text

TEXT = (
    "国务院办公厅关于印发《促进外贸稳规模优结构》的通知\n国办发〔2023〕10号\n各省、自治区、直辖市人民政府："
)


def test_utf8(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(TEXT.encode("utf-8"))
    assert read_text(p) == TEXT


def test_utf8_bom_is_removed(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(codecs.BOM_UTF8 + TEXT.encode("utf-8"))
    text = read_text(p)
    assert text == TEXT
    assert not text.startswith("\ufeff")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_bom(tmp_path: Path, encoding: str) -> None:
    p = tmp_path / "a.txt"
    data = TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    p.write_bytes(data)
    assert read_text(p) == TEXT


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "gb2312"])
def test_gb_family(tmp_path: Path, encoding: str) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(TEXT.encode(encoding))
    assert read_text(p) == TEXT


def test_committed_gb18030_fixture(corpus_data: Path) -> None:
    raw = (corpus_data / "notice_gb18030.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = read_text(corpus_data / "notice_gb18030.txt")
    assert text.startswith("青岛市人民政府办公厅文件\n\n青政办字〔2023〕12号\n")
    assert "\r" not in text  # CRLF in the file
    assert "“船边直提”" in text


def test_gb18030_four_byte_characters(tmp_path: Path) -> None:
    # 𠀀 (U+20000) exists only as a GB18030 four-byte sequence; one rare character is fine
    text = "关于𠀀字的说明。" + "这是一段普通的政策文本。" * 5
    p = tmp_path / "a.txt"
    p.write_bytes(text.encode("gb18030"))
    assert read_text(p) == text


def test_newlines_normalised(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes("第一行\r\n第二行\r第三行\n".encode())
    assert read_text(p) == "第一行\n第二行\n第三行\n"
    # kept: JSON strings may hold them unescaped, a jsonl record must stay on its line
    assert normalize_newlines("a\u2028b\u2029c") == "a\u2028b\u2029c"


def test_empty_file_is_empty_text(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"")
    assert read_text(p) == ""


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_unreadable(tmp_path: Path, seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    p = tmp_path / "garbage.txt"
    p.write_bytes(data)
    with pytest.raises(UnreadableFileError) as info:
        read_text(p)
    assert info.value.path == str(p)
    assert info.value.reason
    assert str(p) in str(info.value)


def test_binary_with_nul_bytes_is_unreadable() -> None:
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    with pytest.raises(UnreadableFileError):
        decode_bytes(data, name="image.png")


def test_utf8_control_garbage_is_unreadable() -> None:
    data = ("\x01\x02\x03\x04abc" * 50).encode("utf-8")
    with pytest.raises(UnreadableFileError, match="binary"):
        decode_bytes(data)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "nope.txt")


def test_big5_falls_back_to_detection(tmp_path: Path) -> None:
    # Big5 is neither UTF-8 nor (plausible) GB18030: charset-normalizer should get it
    text = "臺灣地區政府採購法施行細則，經行政院核定後公布施行。" * 8
    p = tmp_path / "big5.txt"
    p.write_bytes(text.encode("big5"))
    decoded = read_text(p)
    assert "政府採購法施行細則" in decoded
