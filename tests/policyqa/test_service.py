"""The service layer: index swaps under concurrent reads, reloads, warm-up, uploads' names, follow-ups."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from policyqa import pipeline
from policyqa import service as service_module
from policyqa.conversation import contextualize, is_follow_up
from policyqa.corpus.models import Document
from policyqa.corpus.uploads import NewDocument, safe_filename
from policyqa.pipeline import build_index
from policyqa.retriever.factory import retriever_for
from policyqa.service import QAService, ServiceNotReadyError, ServiceState
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents


def _settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cache_dir": root / "cache",
        "index_dir": root / "index",
        "progress": False,
        "chunk_max_chars": 120,
        "build_demo_if_missing": False,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="module")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("svc-index")
    s = _settings(root)
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=HashingEncoder())
    return root


@pytest.fixture
def svc(index_root: Path, tmp_path: Path) -> Any:
    shutil.copytree(index_root, tmp_path / "root")
    service = QAService(_settings(tmp_path / "root"), encoder=HashingEncoder())
    service.warm_up()
    yield service
    service.close()


def _is_closed(index: pipeline.Index) -> bool:
    try:
        index.store.count_documents()
    except sqlite3.ProgrammingError:
        return True
    return False


def test_readers_never_see_a_half_written_index(svc: QAService) -> None:
    """Searches and answers run while documents are added and deleted: every result is
    consistent with one generation, nothing fails, and replaced generations get closed."""
    errors: list[BaseException] = []
    seen: dict[str, pipeline.Index] = {}
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                with svc.index() as index:
                    seen[index.generation.name] = index
                    hits = retriever_for(index, "hybrid").search("稳岗返还 海洋牧场", top_k=8)
                    for h in hits:
                        doc = index.store.get_document(h.doc_id)
                        assert doc is not None and doc.text[h.start : h.end] == h.text
                    assert index.store.count_chunks() == index.bm25.size == index.dense.size
                svc.ask("海洋牧场补助标准是多少？", top_k=3)
                svc.search("稳岗返还", top_k=3)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(4):
            svc.add_documents(
                [NewDocument(id=f"extra-{i}", text=f"海洋牧场建设补助标准第{i}版：每亩{i}百元。")]
            )
            svc.delete_document(f"extra-{i}")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert errors == []
    assert svc.stats()["documents"] == 10
    with svc.index() as current:
        live = current.generation.name
    assert len(seen) >= 2
    assert all(_is_closed(index) for name, index in seen.items() if name != live)


def test_a_leased_index_stays_open_until_released(svc: QAService) -> None:
    with svc.index() as old:
        svc.add_documents([NewDocument(id="x1", text="临时文件的正文。")])
        assert not _is_closed(old) and old.store.count_documents() == 10
        with svc.index() as new:
            assert new is not old and new.store.count_documents() == 11
    assert _is_closed(old)


def test_writes_are_serialised(svc: QAService) -> None:
    results: list[Any] = []

    def add(i: int) -> None:
        results.append(svc.add_documents([NewDocument(id=f"w{i}", text=f"第{i}号文件的正文内容。")]))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    assert sorted(r.documents for r in results) == [11, 12, 13, 14]
    assert svc.stats()["documents"] == 14


def test_reloads_an_index_changed_by_another_process(svc: QAService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "RELOAD_CHECK_SECONDS", 0.0)
    doc = Document(id="outside", title="外部写入的文件", text="这份文件由命令行写入索引：深远海养殖。")
    pipeline.add_documents([doc], svc.index_dir, svc.settings, show_progress=False, encoder=HashingEncoder())
    time.sleep(0.01)
    hits = svc.search("深远海养殖", top_k=1).hits
    assert hits and hits[0].doc_id == "outside"


def test_warm_up_builds_the_demo_index_when_there_is_none(tmp_path: Path) -> None:
    service = QAService(_settings(tmp_path, build_demo_if_missing=True), encoder=HashingEncoder())
    assert service.state is ServiceState.STARTING and not service.ready
    with pytest.raises(ServiceNotReadyError, match="loading"):
        service.search("青岛")
    service.warm_up()
    assert service.ready and service.stats()["documents"] == 3
    assert {r["issuer"] for r in service.list_documents()[1]} == {"青岛日报"}
    service.close()
    with pytest.raises(ServiceNotReadyError, match="shutting down"):
        service.search("青岛")


def test_warm_up_failure_is_reported(tmp_path: Path) -> None:
    service = QAService(_settings(tmp_path), encoder=HashingEncoder())
    with pytest.raises(FileNotFoundError, match="no index at"):
        service.warm_up()
    assert service.state is ServiceState.FAILED
    health = service.health()
    assert health["ready"] is False and "no index at" in health["detail"]
    with pytest.raises(ServiceNotReadyError, match="could not be loaded"):
        service.search("税")


def test_ask_rejects_an_unknown_mode(svc: QAService) -> None:
    with pytest.raises(ValueError, match="unknown search mode"):
        svc.ask("稳岗返还比例？", mode="fuzzy")


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.txt", "report.txt"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "upload"),
        ("", "upload"),
        ("...pdf", "upload.pdf"),
        ("a\x00b\x1fc\u202e.txt", "a_b_c.txt"),
        ("名单 (2024)【终稿】.docx", "名单 (2024)【终稿】.docx"),
        ("x.tar.gz", "x.tar.gz"),
        ("evil.txt\n.exe", "evil.txt.exe"),
        ("a" * 500 + ".md", "a" * 117 + ".md"),
        ("文" * 100 + ".txt", "文" * 65 + ".txt"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe
    assert "/" not in safe_filename(name) and not safe_filename(name).startswith(".")
    assert len(safe_filename(name).encode()) <= 200


@pytest.mark.parametrize(
    ("question", "follow"),
    [
        ("青岛港2023年货物吞吐量是多少？", False),
        ("集装箱呢？", True),
        ("那外资呢", True),
        ("它的申请条件是什么？", True),
        ("上述政策什么时候截止？", True),
        ("还有哪些补贴？", True),
        ("期限？", True),
        ("中小微企业稳岗返还比例最高是多少？", False),
        ("", False),
    ],
)
def test_is_follow_up(question: str, follow: bool) -> None:
    assert is_follow_up(question) is follow


def test_contextualize_keeps_the_topic() -> None:
    topic = "中小微企业稳岗返还比例最高是多少？"
    assert contextualize("大型企业呢？", [topic]) == f"{topic} 大型企业呢？"
    assert contextualize("那个体工商户呢？", [topic, "大型企业呢？"]) == f"{topic} 那个体工商户呢？"
    assert contextualize("增值税小规模纳税人有什么优惠？", [topic]) == "增值税小规模纳税人有什么优惠？"
    assert contextualize("大型企业呢？", []) == "大型企业呢？"
    assert contextualize("大型企业呢？", ["x" * 50], max_chars=20) == "x" * 13 + " 大型企业呢？"


def test_close_during_warm_up_leaves_it_closed(tmp_path: Path) -> None:
    gate = threading.Event()

    class SlowEncoder(HashingEncoder):
        def warm_up(self) -> None:
            gate.wait(30)

    service = QAService(_settings(tmp_path, build_demo_if_missing=True), encoder=SlowEncoder())
    thread = service.start_warm_up()
    service.close()
    gate.set()
    thread.join(60)
    assert not service.ready and service.state is ServiceState.CLOSED
    with pytest.raises(ServiceNotReadyError):
        service.search("青岛")
