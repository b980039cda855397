"""The service layer shared by the HTTP API and the chat page.

:class:`QAService` owns the open index (an :class:`~policyqa.index.base.OpenIndex`) of one index
directory, with its :class:`~policyqa.qa.QAPipeline`, and everything both front ends do with it:
search, ask (through a bounded answer queue, :mod:`policyqa.workqueue`), list/show/add/delete
documents, health and statistics. It is safe to call from many threads at once:

- Readers *lease* the current index for the length of one call (:meth:`QAService.index`).
- Writers (adds, deletes) are serialised by a lock (and, across processes, by the index
  directory's file lock). A write builds a complete new generation on disk, opens it, and only
  then swaps it in; a reader therefore sees either the old index or the new one, never a
  half-written one. The old index is closed when its last lease ends.
- An index changed by another process (``policyqa index --add …`` while the server runs) is
  noticed within :data:`RELOAD_CHECK_SECONDS` and loaded the same way.

With ``settings.backend == "milvus"`` the index is the Milvus collections
(:class:`policyqa.index.milvus.MilvusIndex`, opened through the same pipeline functions): a
write changes them in place and is visible at once, to this and every other process, so there
is nothing to reload; Milvus errors while serving answer as "not ready" (HTTP 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from policyqa import __version__, pipeline
from policyqa.conversation import contextualize
from policyqa.corpus.models import Chunk, Document
from policyqa.corpus.ocr import OcrReader
from policyqa.corpus.originals import ORIGINALS_DIR, OriginalStore
from policyqa.corpus.uploads import FileStatus, NewDocument, UploadedFile, read_uploads
from policyqa.index.base import OpenIndex
from policyqa.index.dense import PassageEncoder
from policyqa.index.encoder import encoder_for
from policyqa.index.milvus import is_milvus_error, milvus_error_line
from policyqa.qa import QAPipeline
from policyqa.retriever.base import Filters, Hit
from policyqa.settings import Settings
from policyqa.workqueue import ServiceBusyError, WorkQueue

if TYPE_CHECKING:
    from policyqa.answer.types import Answer

__all__ = [
    "RELOAD_CHECK_SECONDS",
    "AskOptions",
    "AskResult",
    "DocumentNotFoundError",
    "DocumentView",
    "NothingIndexedError",
    "QAService",
    "SearchResult",
    "ServiceBusyError",
    "ServiceNotReadyError",
    "ServiceState",
    "WriteResult",
]

logger = logging.getLogger(__name__)

#: How often (at most) a read checks whether another process switched the index generation.
RELOAD_CHECK_SECONDS = 2.0


class ServiceState(StrEnum):
    """Where the service is in its life."""

    STARTING = "starting"  # warm-up not begun
    LOADING = "loading"  # opening the index (loading the model)
    BUILDING = "building"  # no index yet: building the demo corpus index
    READY = "ready"
    FAILED = "failed"  # warm-up failed; health() says why
    CLOSED = "closed"


class ServiceNotReadyError(RuntimeError):
    """The index is not loaded (yet, or any more); the message says why."""


class NothingIndexedError(ValueError):
    """No file or document of a write could be indexed; ``files`` says why for each."""

    def __init__(self, files: list[FileStatus]) -> None:
        reasons = "; ".join(f"{f.name}: {f.reason}" for f in files if f.reason)
        super().__init__(f"nothing to index: {reasons or 'no documents given'}")
        self.files = files


class DocumentNotFoundError(KeyError):
    """No document with the given id in the index."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "document not found"


# -- records ----------------------------------------------------------------------------------
class AskOptions(TypedDict, total=False):
    """How to ask (every option has a default): the citations wanted, metadata filters, the
    earlier questions of the conversation (oldest first), the retrieval mode (bm25, dense or
    hybrid), and whether to keep every passage's score breakdown."""

    top_k: int
    filters: Filters | None
    history: Sequence[str]
    mode: str
    explain: bool


@dataclass(slots=True, frozen=True)
class SearchResult:
    """Ranked passages for one query."""

    query: str
    mode: str
    top_k: int
    hits: list[Hit]
    took_ms: float
    index_version: str


@dataclass(slots=True, frozen=True)
class AskResult:
    """An answer and how it was reached: ``searched`` is the question as searched (for a
    follow-up, with the context of the earlier question)."""

    question: str
    searched: str
    answer: Answer
    took_ms: float
    index_version: str


@dataclass(slots=True, frozen=True)
class DocumentView:
    """A stored document with its chunks."""

    document: Document
    chunks: list[Chunk]


@dataclass(slots=True, frozen=True)
class WriteResult:
    """The outcome of an add or delete: per-file status and the index after it."""

    files: list[FileStatus]
    added: list[str]
    replaced: list[str]
    removed: list[str]
    documents: int
    chunks: int
    index_version: str
    took_ms: float


# -- the service ------------------------------------------------------------------------------
class _Lease:
    """An open index, the number of calls using it, and its query pipeline (warmed on first use)."""

    __slots__ = ("_lock", "_warm", "index", "pipeline", "refs", "retired")

    def __init__(self, index: OpenIndex, settings: Settings) -> None:
        self.index = index
        self.refs = 0
        self.retired = False
        self.pipeline = QAPipeline(index, settings)
        self._warm = False
        self._lock = threading.Lock()

    def warmed(self) -> QAPipeline:
        """The query pipeline with its answer models loaded (once)."""
        with self._lock:
            if not self._warm:
                self.pipeline.warm_up()
                self._warm = True
            return self.pipeline


class QAService:
    """Search, answers and document management over one index directory (see the module doc).

    :param settings: the settings (``index_dir`` names the index).
    :param encoder: the dense encoder to use; None loads the one the index was built with.
    :param build_demo: build the demo corpus index when there is none (default: the
        ``build_demo_if_missing`` setting).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        encoder: PassageEncoder | None = None,
        build_demo: bool | None = None,
    ) -> None:
        self.settings = settings
        self.index_dir = Path(settings.index_dir).expanduser()
        self.originals = OriginalStore(self.index_dir / ORIGINALS_DIR)
        self._encoder = encoder
        self._build_demo = settings.build_demo_if_missing if build_demo is None else build_demo
        self._lock = threading.Lock()  # guards _current, leases and state
        self._write_lock = threading.Lock()  # one writer at a time (in this process)
        self._current: _Lease | None = None
        self._state = ServiceState.STARTING
        self._error: str | None = None
        self._started = time.monotonic()
        self._last_check = 0.0
        self._warm_thread: threading.Thread | None = None
        self._closed = False
        #: the answers' back-pressure: a bounded queue with admission control (policyqa.workqueue)
        self.answers = WorkQueue(
            workers=settings.ask_concurrency,
            max_waiting=settings.ask_queue_size,
            max_wait_s=settings.ask_queue_timeout_s,
            name="answer",
            nice=settings.ask_worker_nice,
        )

    # -- life -----------------------------------------------------------------------------------
    @property
    def state(self) -> ServiceState:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is ServiceState.READY

    def warm_up(self) -> None:
        """Open the index (building the demo index first when there is none and that is
        configured) and load the models. Idempotent; raises what went wrong, which
        :meth:`health` reports too."""
        with self._write_lock:
            if self._current is not None:
                return
            if self._closed:
                return
            try:
                index = self._open_or_build()
            except Exception as exc:
                self._state = ServiceState.FAILED
                self._error = str(exc) or type(exc).__name__
                logger.error("the index could not be loaded: %s", self._error)
                raise
            if self._closed:  # shut down while loading
                index.close()
                self._state = ServiceState.CLOSED
                return
            self._swap(index)
            self._state = ServiceState.READY
            self._error = None
            logger.info(
                "index %s ready: %s, %d documents, %d chunks",
                self.index_dir,
                index.version,
                index.store.count_documents(),
                index.store.count_chunks(),
            )
            lease = self._current
        # the answer models (reranker, span model, reader) load now rather than on the first
        # question; searches are served meanwhile, and a failure here is retried by /ask
        try:
            if lease is not None:
                lease.warmed()
        except Exception as exc:
            logger.warning("answer models not loaded at start-up (%s): /ask loads them", exc)

    def start_warm_up(self) -> threading.Thread:
        """Run :meth:`warm_up` in a background thread (the server answers meanwhile)."""
        with self._lock:
            if self._warm_thread is None:
                self._warm_thread = threading.Thread(
                    target=self._warm_up_logged, name="policyqa-warm-up", daemon=True
                )
                self._warm_thread.start()
            return self._warm_thread

    def _warm_up_logged(self) -> None:
        with contextlib.suppress(Exception):  # recorded in the state and logged by warm_up
            self.warm_up()

    def _open_or_build(self) -> OpenIndex:
        if self._build_demo and not pipeline.index_exists(self.index_dir, self.settings):
            self._state = ServiceState.BUILDING
            self._build_demo_index()
        self._state = ServiceState.LOADING
        # no index: raises IndexNotFoundError (or MilvusBackendError) with the remedy
        index = pipeline.open_index(self.index_dir, self.settings, encoder=self._encoder)
        self._encoder = index.encoder
        return index

    def _build_demo_index(self) -> None:
        from policyqa.corpus.demo import load_demo

        documents = load_demo()
        logger.info(
            "no index at %s: building the demo corpus index (%d documents) first",
            self.index_dir,
            len(documents),
        )
        if self._encoder is None:
            self._encoder = encoder_for(self.settings)
        manifest = pipeline.build_index(
            documents,
            self.index_dir,
            self.settings,
            show_progress=self.settings.progress,
            encoder=self._encoder,
        )
        logger.info(
            "demo index built: %d documents, %d chunks in %.1fs",
            manifest["counts"]["documents"],
            manifest["counts"]["chunks"],
            manifest["build_seconds"],
        )

    def close(self) -> None:
        """Close the index (at once if idle, else when the last running call ends)."""
        self.answers.close()
        with self._lock:
            lease, self._current = self._current, None
            self._closed = True
            self._state = ServiceState.CLOSED
            if lease is not None:
                self._retire(lease)

    # -- leases -----------------------------------------------------------------------------
    def _swap(self, index: OpenIndex) -> None:
        with self._lock:
            old, self._current = self._current, _Lease(index, self.settings)
            if old is not None:
                self._retire(old)

    @staticmethod
    def _retire(lease: _Lease) -> None:
        # call with self._lock held
        lease.retired = True
        if lease.refs == 0:
            lease.index.close()

    @contextlib.contextmanager
    def _leased(self) -> Iterator[_Lease]:
        self._maybe_reload()
        with self._lock:
            lease = self._current
            if lease is None:
                raise ServiceNotReadyError(self._not_ready_reason())
            lease.refs += 1
        try:
            yield lease
        except Exception as exc:
            if is_milvus_error(exc):
                raise ServiceNotReadyError(f"Milvus is unavailable: {milvus_error_line(exc)}") from exc
            raise
        finally:
            with self._lock:
                lease.refs -= 1
                if lease.retired and lease.refs == 0:
                    lease.index.close()

    @contextlib.contextmanager
    def index(self) -> Iterator[OpenIndex]:
        """Lease the current index for the length of the ``with`` block."""
        with self._leased() as lease:
            yield lease.index

    def _not_ready_reason(self) -> str:
        if self._state is ServiceState.FAILED:
            return f"the index could not be loaded: {self._error}"
        if self._state is ServiceState.BUILDING:
            return "the demo corpus index is being built; try again shortly"
        if self._state is ServiceState.CLOSED:
            return "the service is shutting down"
        return "the index is loading; try again shortly"

    def _maybe_reload(self) -> None:
        """Load a generation another process made current (checked every few seconds)."""
        if self.settings.backend == "milvus":
            return  # the collections change in place: every write is visible at once
        now = time.monotonic()
        lease = self._current
        if lease is None or now - self._last_check < RELOAD_CHECK_SECONDS:
            return
        self._last_check = now
        try:
            live = (self.index_dir / "CURRENT").read_text(encoding="utf-8").strip()
        except OSError:
            return
        if live == lease.index.version:
            return
        if not self._write_lock.acquire(blocking=False):
            return  # a write of ours is under way and will swap in its own generation
        try:
            current = self._current
            if current is None or live == current.index.version:
                return
            logger.info("the index at %s changed on disk (%s): reloading", self.index_dir, live)
            self._swap(pipeline.open_index(self.index_dir, self.settings, encoder=self._encoder))
        except Exception:
            logger.exception("reloading the changed index failed; still serving the previous one")
        finally:
            self._write_lock.release()

    # -- reading ----------------------------------------------------------------------------
    def search(
        self, query: str, *, mode: str = "hybrid", top_k: int | None = None, filters: Filters | None = None
    ) -> SearchResult:
        """Rank passages for ``query``; raises ``ValueError`` for an empty query or a bad mode."""
        k = self.settings.top_k if top_k is None else top_k
        with self._leased() as lease:
            retriever = lease.pipeline.retriever(mode)
            t0 = time.perf_counter()
            hits = retriever.search(query, top_k=k, filters=filters)
            took = (time.perf_counter() - t0) * 1000
            return SearchResult(query.strip(), mode, k, hits, took, lease.index.version)

    def ask(self, question: str, **options: Unpack[AskOptions]) -> AskResult:
        """The extracted answer to ``question`` with numbered citations
        (:meth:`policyqa.qa.QAPipeline.ask`), computed through the answer queue
        (:attr:`answers`) within ``ask_deadline_s``; ``options`` are :class:`AskOptions`.

        A follow-up question is asked in the context of the ``history`` (see
        :func:`~policyqa.conversation.contextualize`). Raises ``ValueError`` for an empty
        question or an unknown mode, :class:`ServiceBusyError` when the queue is full or the
        deadline passes.
        """
        return self.answers.run(self._answer, question, deadline_s=self.settings.ask_deadline_s, **options)

    async def ask_async(self, question: str, **options: Unpack[AskOptions]) -> AskResult:
        """:meth:`ask` for an event loop: waiting for the queue holds no thread."""
        future = self.answers.submit(self._answer, question, **options)
        deadline = self.settings.ask_deadline_s
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=deadline)
        except TimeoutError:
            future.cancel()
            raise self.answers.deadline_error(deadline) from None

    def _answer(
        self,
        question: str,
        *,
        top_k: int = 5,
        filters: Filters | None = None,
        history: Sequence[str] = (),
        mode: str = "hybrid",
        explain: bool = False,
    ) -> AskResult:
        """Answer now, on the calling thread (an answer-queue worker)."""
        searched = contextualize(question, history, self.settings.max_query_chars)
        with self._leased() as lease:
            qa = lease.warmed()
            t0 = time.perf_counter()
            answer = qa.ask(searched, mode=mode, top_k=top_k, filters=filters, explain=explain)
            took = (time.perf_counter() - t0) * 1000
            return AskResult(question.strip(), searched, answer, took, lease.index.version)

    def list_documents(self, offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
        """``(total, rows)``: one page of the documents in index order."""
        with self.index() as index:
            return index.store.count_documents(), index.store.list_documents(offset=offset, limit=limit)

    def get_document(self, doc_id: str) -> DocumentView:
        """A document and its chunks; raises :class:`DocumentNotFoundError`."""
        with self.index() as index:
            document = index.store.get_document(doc_id)
            if document is None:
                raise DocumentNotFoundError(f"no document with id {doc_id!r} in the index")
            return DocumentView(document, index.store.chunks_of(doc_id))

    def original(self, doc_id: str) -> tuple[Path, str, str]:
        """``(kept file, its key, the name to give it)`` of the file a document was read from;
        raises :class:`DocumentNotFoundError` when there is no such document or no file kept."""
        document = self.get_document(doc_id).document
        key = document.meta.extra.get("original")
        path = self.originals.path_of(key)
        if path is None or not isinstance(key, str):
            raise DocumentNotFoundError(f"no original file is kept for document {doc_id!r}")
        name = Path(document.meta.source or "").name or key
        return path, key, name

    def facets(self) -> dict[str, list[str]]:
        """Distinct issuers and document types in the index (for filter menus)."""
        with self.index() as index:
            total = index.store.count_documents()
            rows = index.store.list_documents(offset=0, limit=max(total, 1))
        issuers = sorted({r["issuer"] for r in rows if r.get("issuer")})
        types = sorted({r["doc_type"] for r in rows if r.get("doc_type")})
        return {"issuer": issuers, "doc_type": types}

    def health(self) -> dict[str, Any]:
        """Liveness and readiness: ``ready`` is true once the index is loaded."""
        out: dict[str, Any] = {
            "status": "ok" if self.ready else self._state.value,
            "ready": self.ready,
            "detail": None if self.ready else self._not_ready_reason(),
            "index_version": None,
            "documents": None,
            "uptime_s": round(time.monotonic() - self._started, 3),
        }
        if self.ready:
            try:
                with self.index() as index:
                    out["index_version"] = index.version
                    out["documents"] = index.store.count_documents()
            except ServiceNotReadyError as exc:
                if self.ready:  # the index answers no more (Milvus gone away)
                    out.update(status="failed", ready=False, detail=str(exc))
        return out

    def stats(self) -> dict[str, Any]:
        """Counts, model and index version of the served index."""
        with self.index() as index:
            m = index.manifest
            return {
                "documents": index.store.count_documents(),
                "chunks": index.store.count_chunks(),
                "index_version": index.version,
                "index_format": m.get("format"),
                "index_created": m.get("created"),
                "fingerprint": m.get("fingerprint"),
                "built_by": m.get("policyqa_version"),
                "policyqa_version": __version__,
                "model": dict(m.get("model") or {}),
                "encoder_backend": str(self.settings.encoder_backend),
                "tokenizer": dict(m.get("tokenizer") or {}),
                "chunking": dict(m.get("chunking") or {}),
                "last_change": dict(m.get("last_change") or {}),
            }

    # -- writing ----------------------------------------------------------------------------
    def add_documents(self, documents: Sequence[NewDocument]) -> WriteResult:
        """Index documents given as data (an existing id is replaced)."""
        statuses: list[FileStatus] = []
        docs: list[Document] = []
        for new in documents:
            doc = new.to_document()
            statuses.append(FileStatus(name=doc.title or doc.id, status="indexed"))
            docs.append(doc)
        return self._write(docs, [[d] for d in docs], statuses)

    def add_files(self, files: Sequence[UploadedFile]) -> WriteResult:
        """Index uploaded files; each gets a status, and a bad file does not stop the others.

        The client's file names never reach the file system (see
        :func:`policyqa.corpus.uploads.read_uploads`).
        """
        statuses, per_file = read_uploads(
            files, ocr=OcrReader.from_settings(self.settings), originals=self.originals
        )
        return self._write([d for docs in per_file for d in docs], per_file, statuses)

    def _write(
        self, docs: list[Document], per_file: list[list[Document]], statuses: list[FileStatus]
    ) -> WriteResult:
        t0 = time.perf_counter()
        owner: dict[str, int] = {}  # document id -> the file whose version is kept (the last)
        for n, file_docs in enumerate(per_file):
            for d in file_docs:
                first = owner.get(d.id)
                if first is not None and first != n:
                    statuses[first].warnings.append(
                        f"document {d.id!r} is replaced by the one from {statuses[n].name}"
                    )
                owner[d.id] = n
        unique = list({d.id: d for d in docs}.values())
        if not unique:
            raise NothingIndexedError(statuses)
        with self._write_lock:
            with self.index() as index:
                existing = {d.id for d in unique if index.store.has_document(d.id)}
            pipeline.add_documents(
                unique, self.index_dir, self.settings, show_progress=False, encoder=self._encoder
            )
            new_index = pipeline.open_index(self.index_dir, self.settings, encoder=self._encoder)
            self._swap(new_index)
        for n, (status, file_docs) in enumerate(zip(statuses, per_file, strict=True)):
            status.documents = [
                {"id": d.id, "title": d.title, "replaced": d.id in existing}
                for d in file_docs
                if owner[d.id] == n
            ]
        ids = [d.id for d in unique]
        return WriteResult(
            files=statuses,
            added=[i for i in ids if i not in existing],
            replaced=[i for i in ids if i in existing],
            removed=[],
            documents=new_index.store.count_documents(),
            chunks=new_index.store.count_chunks(),
            index_version=new_index.version,
            took_ms=(time.perf_counter() - t0) * 1000,
        )

    def delete_document(self, doc_id: str) -> WriteResult:
        """Remove a document; raises :class:`DocumentNotFoundError` when there is none."""
        t0 = time.perf_counter()
        with self._write_lock:
            with self.index() as index:
                if not index.store.has_document(doc_id):
                    raise DocumentNotFoundError(f"no document with id {doc_id!r} in the index")
            try:
                pipeline.delete_documents([doc_id], self.index_dir, self.settings, encoder=self._encoder)
            except KeyError as exc:  # deleted by another process meanwhile
                raise DocumentNotFoundError(str(exc.args[0])) from None
            new_index = pipeline.open_index(self.index_dir, self.settings, encoder=self._encoder)
            self._swap(new_index)
        return WriteResult(
            files=[],
            added=[],
            replaced=[],
            removed=[doc_id],
            documents=new_index.store.count_documents(),
            chunks=new_index.store.count_chunks(),
            index_version=new_index.version,
            took_ms=(time.perf_counter() - t0) * 1000,
        )
