"""Shared fixtures: settings in a temporary cache, the fixture corpus indexed with a hashing encoder."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyqa.index.base import OpenIndex
from policyqa.index.embedded import EmbeddedIndex as Index
from policyqa.pipeline import build_index, open_index
from policyqa.settings import Settings
from tests.helpers import HashingEncoder, fixture_documents, milvus_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Tests run offline: any attempt to open a non-loopback connection fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in {"127.0.0.1", "localhost", "::1"}
            and not host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach the network ({host}); tests must run offline")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        cache_dir=tmp_path / "cache", index_dir=tmp_path / "index", progress=False, chunk_max_chars=120
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (not present on this machine)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def fixture_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """The fixture corpus indexed once per module with the hashing encoder."""
    root = tmp_path_factory.mktemp("fixture-index")
    s = Settings(cache_dir=root / "cache", index_dir=root / "index", progress=False, chunk_max_chars=120)
    enc = HashingEncoder()
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=enc)
    index = open_index(s.index_dir, s, encoder=enc)
    yield index
    index.close()


#: The index backends every contract suite runs over.
BACKENDS = ("embedded", "milvus")


@pytest.fixture(scope="session", params=BACKENDS)
def backend_index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenIndex]:
    """The fixture corpus in each backend, opened: the embedded index, and Milvus Lite (a file
    beside the index directory, FLAT vectors); the same settings and the hashing encoder."""
    root = tmp_path_factory.mktemp(f"backend-{request.param}")
    s = (
        milvus_settings(root)
        if request.param == "milvus"
        else Settings(cache_dir=root / "cache", index_dir=root / "index", progress=False, chunk_max_chars=120)
    )
    enc = HashingEncoder()
    build_index(fixture_documents(), s.index_dir, s, show_progress=False, encoder=enc)
    index = open_index(s.index_dir, s, encoder=enc)
    yield index
    index.close()


# -- the tiny benchmarks (tests/eval/data), used by the suite's and the trainers' tests -------------
BENCH_DATA = Path(__file__).parent / "eval" / "data"


@pytest.fixture
def beir_copy(tmp_path: Path) -> Path:
    """A writable copy of the tiny BEIR benchmark."""
    target = tmp_path / "beir"
    target.mkdir()
    for f in (BENCH_DATA / "beir-tiny").iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


@pytest.fixture
def beir_tiny() -> Path:
    return BENCH_DATA / "beir-tiny"


@pytest.fixture
def squad_tiny() -> Path:
    return BENCH_DATA / "squad-tiny.json"
