"""``POLICYQA_BACKEND=milvus`` selects the Milvus backend for the CLI and the service.

Milvus Lite on temp files (no URI: ``<index_dir>-milvus.db`` beside the index directory), the
fixture corpus and the hashing encoder. The same corpus indexed by the embedded backend through
the same commands gives the reference answers.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyqa import pipeline
from policyqa.cli import main
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, milvus_settings, use_hashing_encoder

if importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None:
    pytest.skip(
        "pymilvus and milvus-lite are not installed (pip install pymilvus milvus-lite)",
        allow_module_level=True,
    )

from fastapi.testclient import TestClient

from policyqa.api.app import create_app
from policyqa.service import QAService

FIXTURE = Path(__file__).parents[1] / "data" / "policy_fixture.jsonl"
QUESTIONS = (
    "小型微利企业所得税优惠政策执行到什么时候？",
    "市南区一季度计划落地多少个重点项目？",
    "疫情期间中小微企业房租怎么减免？",
    "什么是行政许可？",
)
API_KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _env(mp: pytest.MonkeyPatch, root: Path, backend: str, dim: int = 256, **extra: str) -> None:
    """The settings of a CLI run, as a user sets them: environment variables."""
    values = {
        "POLICYQA_BACKEND": backend,
        "POLICYQA_CACHE_DIR": str(root / "cache"),
        "POLICYQA_CHUNK_MAX_CHARS": "120",
        "POLICYQA_MILVUS_DENSE_INDEX": "FLAT",
        "POLICYQA_ANSWER_MIN_CONFIDENCE": "0",
        **extra,
    }
    for name, value in values.items():
        mp.setenv(name, value)
    use_hashing_encoder(mp, dim)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The fixture corpus indexed by ``policyqa index`` twice: embedded and in Milvus Lite."""
    root = tmp_path_factory.mktemp("backends")
    with pytest.MonkeyPatch.context() as mp:
        for backend in ("embedded", "milvus"):
            _env(mp, root, backend)
            assert main(["index", str(FIXTURE), "--index", str(root / backend), "--no-progress"]) == 0
    yield root


def _search(capsys: pytest.CaptureFixture[str], root: Path, backend: str, query: str, mode: str) -> list[str]:
    code, out, err = _run(
        capsys, "search", query, "--index", str(root / backend), "--mode", mode, "--json", "--top-k", "5"
    )
    assert code == 0, err
    return [h["chunk_id"] for h in json.loads(out)["hits"]]


def _ask(capsys: pytest.CaptureFixture[str], root: Path, backend: str, question: str) -> dict[str, object]:
    code, out, err = _run(capsys, "ask", question, "--index", str(root / backend), "--json")
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


# -- CLI ----------------------------------------------------------------------------------------


def test_index_builds_milvus_collections_and_info_describes_them(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (root / "milvus-milvus.db").exists()  # Milvus Lite beside the index directory
    assert not (root / "milvus" / "CURRENT").exists()  # and no embedded index
    _env(monkeypatch, root, "milvus")
    code, out, err = _run(capsys, "info", "--index", str(root / "milvus"))
    assert code == 0, err
    info = json.loads(out)
    assert info["backend"] == "milvus" and info["collection"] == "policyqa"
    assert info["counts"]["documents"] == 10 and info["counts"]["chunks"] > 10
    assert info["dim"] == 256 and info["bm25_fields"] == ["words", "bigrams"]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_json_like_embedded(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    for question in QUESTIONS:
        _env(monkeypatch, root, "embedded")
        a = _search(capsys, root, "embedded", question, mode)
        _env(monkeypatch, root, "milvus")
        b = _search(capsys, root, "milvus", question, mode)
        if mode == "hybrid":  # BM25 differs in detail (Lucene idf, two fields): the same top chunk
            assert a[0] == b[0] and set(a) & set(b), question
        else:
            assert a == b, question


def test_ask_json_gives_the_embedded_answers(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = {
        json.loads(line)["id"]: json.loads(line)["text"] for line in FIXTURE.read_text("utf-8").splitlines()
    }
    for question in QUESTIONS:
        _env(monkeypatch, root, "embedded")
        a = _ask(capsys, root, "embedded", question)
        _env(monkeypatch, root, "milvus")
        b = _ask(capsys, root, "milvus", question)
        keys = ("answer", "no_answer", "doc_id", "start", "end")
        assert {k: b[k] for k in keys} == {k: a[k] for k in keys}, question
        assert not b["no_answer"] and b["answer"]
        start, end = b["start"], b["end"]
        assert isinstance(start, int) and isinstance(end, int)
        assert texts[str(b["doc_id"])][start:end] == b["answer"]  # the citation verifies


def test_delete_and_add_on_milvus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, tmp_path, "milvus")
    index = str(tmp_path / "index")
    assert _run(capsys, "index", str(FIXTURE), "--index", index, "--no-progress")[0] == 0
    code, out, err = _run(capsys, "delete", "d03", "--index", index)
    assert code == 0, err
    assert "9 documents" in out
    hits = _run(capsys, "search", "青岛海关贸易便利化", "--index", index, "--json", "--top-k", "20")[1]
    assert "d03" not in {h["doc_id"] for h in json.loads(hits)["hits"]}
    code, _, err = _run(capsys, "delete", "d03", "--index", index)
    assert code == 2 and "no document with id d03" in err
    # --add puts it back (only its chunks are new); the rest stays
    code, out, err = _run(capsys, "index", str(FIXTURE), "--index", index, "--add", "--no-progress")
    assert code == 0, err
    assert "10 documents" in out and "milvus" in out
    hits = _run(capsys, "search", "青岛海关贸易便利化", "--index", index, "--json")[1]
    assert json.loads(hits)["hits"][0]["doc_id"] == "d03"


def test_cli_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = str(tmp_path / "index")
    # an unreachable server
    _env(
        monkeypatch,
        tmp_path,
        "milvus",
        POLICYQA_MILVUS_URI="http://127.0.0.1:1",
        POLICYQA_MILVUS_TOKEN="u:secret",
    )
    for argv in (("search", "海关", "--index", index), ("ask", "海关？", "--index", index), ("info",)):
        code, _, err = _run(capsys, *argv)
        assert code == 1, argv
        assert err.count("\n") == 1 and "cannot connect to Milvus at http://127.0.0.1:1" in err
        assert "secret" not in err and "Traceback" not in err
    monkeypatch.delenv("POLICYQA_MILVUS_URI")
    # no collections yet
    code, _, err = _run(capsys, "search", "海关", "--index", index)
    assert code == 1 and "build them first" in err
    # collections of another dimension
    _env(monkeypatch, tmp_path, "milvus", dim=64)
    assert _run(capsys, "index", str(FIXTURE), "--index", index, "--no-progress")[0] == 0
    _env(monkeypatch, tmp_path, "milvus", dim=128)
    code, _, err = _run(capsys, "search", "海关", "--index", index)
    assert code == 1 and "64-dimensional" in err and "rebuild" in err


# -- the service --------------------------------------------------------------------------------


def _settings(root: Path, **extra: object) -> Settings:
    return milvus_settings(
        root, api_key=API_KEY, build_demo_if_missing=False, answer_min_confidence=0.0, **extra
    )


def test_service_on_milvus(tmp_path: Path) -> None:
    from policyqa.corpus.loaders import load_paths

    docs = load_paths([FIXTURE]).documents
    s = _settings(tmp_path)
    enc = HashingEncoder()
    pipeline.build_index(docs, s.index_dir, s, show_progress=False, encoder=enc)
    embedded = s.model_copy(update={"backend": "embedded", "index_dir": tmp_path / "embedded"})
    pipeline.build_index(docs, embedded.index_dir, embedded, show_progress=False, encoder=enc)
    svc = QAService(s, encoder=enc)
    svc.warm_up()
    ref = QAService(embedded, encoder=enc)
    ref.warm_up()
    try:
        with TestClient(create_app(s, svc, ui=False), raise_server_exceptions=False) as c:
            h = c.get("/health")
            assert h.status_code == 200 and h.json()["index_version"] == "milvus:policyqa"
            assert h.json()["documents"] == 10
            stats = c.get("/stats").json()
            assert stats["documents"] == 10 and stats["model"]["dim"] == 256
            hits = c.post("/search", json={"query": "稳岗返还", "top_k": 3}).json()["hits"]
            assert hits and hits[0]["doc_id"] == "d04"
            for question in QUESTIONS:
                a = c.post("/ask", json={"question": question, "top_k": 3}).json()
                expected = ref.ask(question, top_k=3).answer
                assert (a["answer"], a["doc_id"], a["start"]) == (
                    expected.text,
                    expected.doc_id,
                    expected.start,
                )
            # documents: list, get, add, replace, delete
            listed = c.get("/documents", params={"offset": 2, "limit": 3}).json()
            assert listed["total"] == 10
            assert [d["id"] for d in listed["documents"]] == [d.id for d in docs[2:5]]
            d = c.get("/documents/d04").json()
            assert d["title"] == docs[3].title and d["chunks"]
            assert "".join(ch["text"] for ch in d["chunks"][:1]) in docs[3].text
            new = {"id": "mine-1", "title": "海洋牧场补助", "text": "海洋牧场建设补助标准为每亩三百元。"}
            r = c.post("/documents", json={"documents": [new]}, headers=AUTH)
            assert r.status_code == 201, r.text
            assert r.json()["documents"] == 11 and r.json()["added"] == ["mine-1"]
            assert (
                c.post("/search", json={"query": "海洋牧场补助标准", "top_k": 1}).json()["hits"][0]["doc_id"]
                == "mine-1"
            )
            again = c.post("/documents", json={"documents": [new]}, headers=AUTH).json()
            assert again["replaced"] == ["mine-1"] and again["documents"] == 11
            r = c.delete("/documents/mine-1", headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json()["documents"] == 10
            assert c.get("/documents/mine-1").status_code == 404
            assert c.delete("/documents/mine-1", headers=AUTH).status_code == 404
    finally:
        svc.close()
        ref.close()


def test_service_health_503_when_milvus_is_unreachable(tmp_path: Path) -> None:
    s = _settings(tmp_path, milvus_uri="http://127.0.0.1:1")
    svc = QAService(s, encoder=HashingEncoder())
    with pytest.raises(Exception, match="cannot connect to Milvus"):
        svc.warm_up()
    try:
        with TestClient(create_app(s, svc, ui=False), raise_server_exceptions=False) as c:
            r = c.get("/health")
            assert r.status_code == 503
            assert r.json()["status"] == "failed" and "cannot connect to Milvus" in r.json()["detail"]
            assert c.post("/search", json={"query": "海关"}).status_code == 503
    finally:
        svc.close()


def test_service_answers_503_when_milvus_goes_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pymilvus import MilvusException

    from policyqa.corpus.loaders import load_paths

    s = _settings(tmp_path)
    enc = HashingEncoder()
    pipeline.build_index(
        load_paths([FIXTURE]).documents[:3], s.index_dir, s, show_progress=False, encoder=enc
    )
    svc = QAService(s, encoder=enc)
    svc.warm_up()
    try:
        with TestClient(create_app(s, svc, ui=False), raise_server_exceptions=False) as c:
            assert c.get("/health").status_code == 200
            with svc.index() as index:
                client = index.client  # type: ignore[union-attr]

            def gone(*args: object, **kwargs: object) -> None:
                raise MilvusException(message="Fail connecting to server")

            monkeypatch.setattr(client, "search", gone)
            monkeypatch.setattr(client, "query", gone)
            r = c.post("/search", json={"query": "海关"})
            assert r.status_code == 503 and "Milvus is unavailable" in r.json()["detail"]
            h = c.get("/health")
            assert h.status_code == 503 and h.json()["status"] == "failed"
            assert "Fail connecting to server" in h.json()["detail"]
    finally:
        svc.close()
