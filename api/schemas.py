"""Request and response models of the HTTP API.

Every field carries a description: they are what ``/openapi.json`` and the docs page at
``/docs`` show. Request models forbid unknown fields, so a misspelt option is a 422 rather
than silently ignored. Limits that depend on the settings (``max_query_chars``,
``max_top_k``) are checked by the routes and written into the OpenAPI schema by
:func:`policyqa.api.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from policyqa.answer.types import ConfidenceBand
from policyqa.corpus.models import DOC_ID_MAX_CHARS, DOC_ID_PATTERN
from policyqa.corpus.uploads import FileStatus
from policyqa.retriever.base import Filters

__all__ = [
    "AskRequest",
    "AskResponse",
    "ChunkOut",
    "CitationOut",
    "DocumentDetail",
    "DocumentIn",
    "DocumentList",
    "DocumentSummary",
    "DocumentsIn",
    "ErrorItem",
    "ErrorResponse",
    "FileStatusOut",
    "FiltersIn",
    "HealthResponse",
    "HitOut",
    "ModelInfo",
    "SearchMode",
    "SearchRequest",
    "SearchResponse",
    "StatsResponse",
    "WriteResponse",
    "public_name",
]


# Text rules are stated as patterns, so that the schema says exactly what is accepted. Whitespace
# is spelt out (not \s, whose meaning differs between the ECMA regexes of JSON Schema and the
# Rust regexes pydantic runs): the characters Python's str.isspace() and Unicode count, and BOM.
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
#: No NUL characters. (Lone surrogates pydantic rejects itself, for any constrained string.)
NO_NUL = r"^[^\x00]*$"
#: No NUL characters, and at least one that is not whitespace.
NOT_BLANK = rf"^[^\x00]*[^\x00{_WS}][^\x00]*$"
#: A short label (filter value, metadata field): trimmed, 1–200 characters.
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NOT_BLANK)
]
#: A query or question: trimmed, not empty (the upper limit is the ``max_query_chars`` setting).
QueryText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=NOT_BLANK)]


def _date_as_text(value: object) -> object:
    if not isinstance(value, str | dt.date):
        raise ValueError("expected a date as text, YYYY-MM-DD")
    return value


#: A date given as text, YYYY-MM-DD (a number is not taken as a timestamp).
DateText = Annotated[dt.date, BeforeValidator(_date_as_text)]


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not true/false")
    return value


_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def public_name(value: str | None) -> str | None:
    """A source or a model name as a client sees it: a URL or a name as it is, a server file path
    (a source from an index built before sources were stored relative to what was indexed, a
    model given by its local path) by its last part only."""
    if value is None:
        return None
    text = value.strip()
    if text.lower().startswith("file:"):
        text = "/" + text[5:].lstrip("/")
    if text.startswith(("/", "\\", "~")) or _DRIVE.match(text):
        return PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name
    return value


#: A source or model name in a response: never a server path (see :func:`public_name`).
PublicName = Annotated[str | None, AfterValidator(public_name)]

#: An integer; true/false are not taken as 1/0 (a float with no fraction is, as JSON Schema says).
Count = Annotated[int, BeforeValidator(_not_a_bool)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchMode(StrEnum):
    """How passages are ranked."""

    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


# -- filters ----------------------------------------------------------------------------------
class FiltersIn(_Request):
    """Metadata filters, applied before the top-k cut. Fields combine with AND; several values
    of one field are alternatives (OR)."""

    issuer: list[Label] = Field(
        default_factory=list,
        max_length=20,
        description="Issuing body (发文机关): a document passes when its issuer contains one of these, "
        "e.g. '海关' matches 青岛海关.",
        examples=[["国务院"]],
    )
    doc_type: list[Label] = Field(
        default_factory=list,
        max_length=20,
        description="Document type contained in the document's type, e.g. 通知, 意见, 办法, 新闻.",
    )
    region: list[Label] = Field(
        default_factory=list,
        max_length=20,
        description="Region contained in the document's region, e.g. 青岛.",
    )
    doc_ids: list[Label] = Field(
        default_factory=list, max_length=100, description="Only these documents (by id)."
    )
    date_from: DateText | None = Field(
        None,
        description="Earliest document date, inclusive (YYYY-MM-DD). Documents without a date never "
        "pass a date filter.",
    )
    date_to: DateText | None = Field(None, description="Latest document date, inclusive (YYYY-MM-DD).")

    @model_validator(mode="after")
    def _check_dates(self) -> FiltersIn:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from ({self.date_from}) is after date_to ({self.date_to})")
        return self

    def to_filters(self) -> Filters:
        return Filters(
            issuer=tuple(self.issuer),
            doc_type=tuple(self.doc_type),
            region=tuple(self.region),
            date_from=self.date_from,
            date_to=self.date_to,
            doc_ids=tuple(self.doc_ids),
        )


# -- search -----------------------------------------------------------------------------------
class SearchRequest(_Request):
    """A search: ranked passages for a query."""

    query: QueryText = Field(
        description="Question or keywords (Chinese or English). Leading/trailing spaces are trimmed; "
        "empty or longer than the server's limit (max_query_chars, 500 by default) gives 422.",
        examples=["一般纳税人季度销售额多少可以免征增值税"],
    )
    mode: SearchMode = Field(
        SearchMode.HYBRID,
        description="Ranking: 'hybrid' (BM25 and dense fused), 'bm25' (lexical) or 'dense' (embeddings).",
    )
    top_k: Count = Field(
        10, ge=1, description="Number of passages to return (at most the server's max_top_k, 100 by default)."
    )
    filters: FiltersIn | None = Field(None, description="Metadata filters; none: the whole index.")


class HitOut(BaseModel):
    """One ranked passage, with what is needed to cite it."""

    rank: int = Field(description="1-based rank in this result list.")
    score: float = Field(description="Score of the final ranking stage (higher is better).")
    doc_id: str = Field(description="Id of the document the passage comes from.")
    chunk_id: str = Field(description="Id of the passage (chunk).")
    text: str = Field(description="The passage text, verbatim from the document.")
    start: int = Field(description="Character offset of the passage in the document text.")
    end: int = Field(description="Character offset just past the passage: text == document.text[start:end].")
    title: str = Field(description="Document title.")
    doc_number: str | None = Field(description="发文字号 (document number), e.g. 国发〔2024〕3号, if known.")
    issuer: str | None = Field(description="发文机关 (issuing body), if known.")
    date: str | None = Field(description="Document date (YYYY-MM-DD), if known.")
    heading: str = Field(description="Structural path of the passage, e.g. '第二章 总则 > 第十条'.")
    doc_type: str | None = Field(description="Document type (通知, 意见, 法律, 新闻 …), if known.")
    region: str | None = Field(description="Region the document belongs to, if known.")
    source: PublicName = Field(description="Where the document came from (file name or URL).")
    page: int | None = Field(
        None, description="Page the passage starts on (PDF, scans, OFD); null when not paged."
    )
    scores: dict[str, float] = Field(
        description="Score of every stage that saw the passage: bm25, dense, fused, rerank; with "
        "the default reranker also sentence (the best sentence's similarity to the question)."
    )
    ranks: dict[str, int] = Field(description="1-based rank the passage had in each stage.")


class SearchResponse(BaseModel):
    """Ranked passages for a query."""

    query: str = Field(description="The query as searched (trimmed).")
    mode: SearchMode = Field(description="The ranking used.")
    top_k: int = Field(description="The number of passages asked for.")
    took_ms: float = Field(description="Search time in milliseconds (server side, without HTTP).")
    index_version: str = Field(description="Index generation that answered, e.g. gen-000003.")
    hits: list[HitOut] = Field(
        description="The passages, best first (fewer than top_k when filters leave fewer)."
    )


# -- ask --------------------------------------------------------------------------------------
class AskRequest(_Request):
    """A question to answer with an extracted span and its sources."""

    question: QueryText = Field(
        description="The question. Empty or longer than the server's limit (max_query_chars) gives 422.",
        examples=["青岛港2023年完成货物吞吐量多少？"],
    )
    mode: SearchMode = Field(
        SearchMode.HYBRID,
        description="Retrieval that finds the candidate passages (then reranked): hybrid, bm25 or dense.",
    )
    top_k: Count = Field(
        5,
        ge=1,
        description="Most citations returned, best first (the answer itself is looked for in the top "
        "answer_passages passages, a server setting; at most the server's max_top_k).",
    )
    filters: FiltersIn | None = Field(None, description="Metadata filters; none: the whole index.")
    history: list[Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]] = Field(
        default_factory=list,
        max_length=10,
        description="Earlier questions of the same conversation, oldest first. A follow-up that "
        "refers back to them (这/该/其/上述…, '…呢？', or a very short question) is searched in "
        "the context of the latest one.",
    )
    explain: StrictBool = Field(False, description="Include the reader's scoring details in 'explanation'.")


class CitationOut(BaseModel):
    """A numbered source of an answer."""

    number: int = Field(description="1-based citation number, as shown next to the answer.")
    doc_id: str = Field(description="Id of the cited document.")
    chunk_id: str = Field(description="Id of the cited passage.")
    title: str = Field(description="Document title.")
    issuer: str | None = Field(description="发文机关 (issuing body), if known.")
    doc_number: str | None = Field(description="发文字号 (document number), if known.")
    date: str | None = Field(description="Document date (YYYY-MM-DD), if known.")
    heading: str = Field(description="Structural path of the passage in its document.")
    snippet: str = Field(
        description="The cited passage, shortened around the answer sentence ('…' marks a cut)."
    )
    start: int = Field(description="Character offset of the passage in the document text.")
    end: int = Field(description="Character offset just past the passage in the document text.")
    score: float = Field(description="Score of the passage in the final (rerank) stage.")
    source: PublicName = Field(None, description="File name or URL the document came from.")
    page: int | None = Field(
        None, description="Page the passage starts on (PDF, scans, OFD); null when not paged."
    )
    holds_answer: bool = Field(description="True for the citation the answer was extracted from.")


class AskResponse(BaseModel):
    """An extracted answer with its citations (the fields of ``policyqa ask --json`` and a few more)."""

    question: str = Field(description="The question as asked (trimmed).")
    searched_as: str = Field(
        description="What was searched: the question, or for a follow-up the topic question and the "
        "follow-up together."
    )
    answer: str = Field(
        description="The extracted answer, verbatim from the document: text[start:end]. Empty when no_answer."
    )
    no_answer: bool = Field(
        description="True when no passage answers the question confidently; citations then list the "
        "closest passages."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated confidence of the answer, 0–1.")
    confidence_label: ConfidenceBand = Field(
        description="Confidence band: high (≥ 0.7), medium (≥ 0.4), low, or none (no answer)."
    )
    answer_type: str = Field(
        description="What the answer is: sentence, or the amount, date, organization or place a "
        "多少/何时/哪个部门/哪里 question asks for; none for no answer."
    )
    doc_id: str | None = Field(description="Document the answer comes from.")
    chunk_id: str | None = Field(description="Passage the answer comes from.")
    start: int | None = Field(description="Character offset of the answer in its document's text.")
    end: int | None = Field(description="Character offset just past the answer in its document's text.")
    sentence: str = Field(description="The sentence that holds the answer (equal to answer for a sentence).")
    sentence_start: int | None = Field(description="Offset of that sentence in the document text.")
    sentence_end: int | None = Field(description="Offset just past that sentence.")
    citation: int | None = Field(description="Number of the citation the answer comes from.")
    citations: list[CitationOut] = Field(description="Numbered sources, best first.")
    timings_ms: dict[str, float] = Field(description="Time per stage (retrieve_rerank, answer) in ms.")
    took_ms: float = Field(description="Answer time in milliseconds (server side, without HTTP).")
    index_version: str = Field(description="Index generation that answered.")
    explanation: list[dict[str, Any]] | None = Field(
        None,
        description="With explain: every passage considered, with its per-stage scores and ranks.",
    )


# -- documents --------------------------------------------------------------------------------
class DocumentSummary(BaseModel):
    """A document in a listing."""

    id: str = Field(description="Document id.")
    title: str = Field(description="Title.")
    issuer: str | None = Field(description="发文机关 (issuing body), if known.")
    doc_number: str | None = Field(description="发文字号 (document number), if known.")
    date: str | None = Field(description="Date (YYYY-MM-DD), if known.")
    doc_type: str | None = Field(description="Document type, if known.")
    region: str | None = Field(description="Region, if known.")
    source: PublicName = Field(description="File name or URL the document came from.")
    chunks: int = Field(description="Number of passages (chunks) indexed.")
    chars: int = Field(description="Length of the text in characters.")


class DocumentList(BaseModel):
    """One page of the indexed documents, in index order."""

    total: int = Field(description="Number of documents in the index.")
    offset: int = Field(description="Position of the first document of this page.")
    limit: int = Field(description="Page size asked for.")
    documents: list[DocumentSummary] = Field(description="The documents of this page.")


class ChunkOut(BaseModel):
    """A passage of a document."""

    id: str = Field(description="Chunk id.")
    ordinal: int = Field(description="0-based position of the chunk in its document.")
    start: int = Field(description="Character offset of the chunk in the document text.")
    end: int = Field(description="Character offset just past the chunk.")
    heading: str = Field(description="Structural path, e.g. '第二章 总则 > 第十条'.")
    text: str = Field(description="The chunk text: document.text[start:end].")


class DocumentDetail(BaseModel):
    """A document with its metadata, text and chunks."""

    id: str = Field(description="Document id.")
    title: str = Field(description="Title.")
    issuer: str | None = Field(description="发文机关 (issuing body), if known.")
    doc_number: str | None = Field(description="发文字号 (document number), if known.")
    date: str | None = Field(description="Date (YYYY-MM-DD), if known.")
    doc_type: str | None = Field(description="Document type, if known.")
    region: str | None = Field(description="Region, if known.")
    source: PublicName = Field(description="File name or URL the document came from.")
    extra: dict[str, Any] = Field(description="Further metadata the source gave.")
    text: str = Field(description="The full text as indexed.")
    chunks: list[ChunkOut] = Field(description="The passages the text was split into, in order.")


#: A document id: path-like segments (``a/b/c``), none empty, '.' or '..'; no backslash or control
#: character (so that ``/documents/{id}`` reaches it).
DocIdText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=DOC_ID_MAX_CHARS, pattern=DOC_ID_PATTERN
    ),
]


class DocumentIn(_Request):
    """A document given as JSON. Metadata left out is extracted from the text where it says so."""

    id: DocIdText | None = Field(
        None,
        description="Document id (an existing id is replaced): path-like segments joined by single "
        "'/' (e.g. 'law/2024/3'), none empty, '.' or '..', no backslash or control character. "
        "Default: derived from title and text, so posting the same document twice replaces it.",
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=NO_NUL)] = Field(
        "", description="Title; default: the text's title line."
    )
    text: Annotated[str, StringConstraints(min_length=1, pattern=NOT_BLANK)] = Field(
        description="The full text (plain text; '#' heading lines and 第X章/第X条 structure are recognised)."
    )
    issuer: Label | None = Field(None, description="发文机关 (issuing body).")
    doc_number: Label | None = Field(None, description="发文字号 (document number), e.g. 国发〔2024〕3号.")
    date: DateText | None = Field(None, description="Document date (YYYY-MM-DD).")
    doc_type: Label | None = Field(None, description="Document type, e.g. 通知, 意见.")
    region: Label | None = Field(None, description="Region, e.g. 青岛.")
    source: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=NO_NUL)] | None
    ) = Field(None, description="Where the document comes from (URL or name).")


class DocumentsIn(_Request):
    """Documents to index, as JSON (``Content-Type: application/json``)."""

    documents: list[DocumentIn] = Field(
        min_length=1, max_length=100, description="The documents (1–100 per request)."
    )


class FileStatusOut(BaseModel):
    """What happened to one uploaded file or JSON document."""

    name: str = Field(description="The file name as stored (sanitised), or the document's title/id.")
    status: Literal["indexed", "rejected"] = Field(description="indexed, or rejected (see reason).")
    reason: str | None = Field(description="Why it was rejected.")
    documents: list[dict[str, Any]] = Field(
        description="Documents it gave: {id, title, replaced} (replaced: the id existed before)."
    )
    warnings: list[str] = Field(description="Problems that did not stop it (e.g. skipped jsonl lines).")

    @classmethod
    def of(cls, status: FileStatus) -> FileStatusOut:
        return cls(
            name=status.name,
            status="indexed" if status.status == "indexed" else "rejected",
            reason=status.reason,
            documents=status.documents,
            warnings=status.warnings,
        )


class WriteResponse(BaseModel):
    """The outcome of an add or delete."""

    files: list[FileStatusOut] = Field(description="Per file (or JSON document) status, in request order.")
    added: list[str] = Field(description="Ids of documents new to the index.")
    replaced: list[str] = Field(description="Ids of documents that replaced an existing one.")
    removed: list[str] = Field(description="Ids of documents removed.")
    documents: int = Field(description="Documents in the index afterwards.")
    chunks: int = Field(description="Chunks in the index afterwards.")
    index_version: str = Field(description="The index generation now served.")
    took_ms: float = Field(description="Time the write took in milliseconds.")


# -- health and stats -------------------------------------------------------------------------
class HealthResponse(BaseModel):
    """Liveness and readiness."""

    status: Literal["ok", "starting", "loading", "building", "failed", "closed"] = Field(
        description="ok: ready to answer; starting/loading/building: not yet; failed: the index "
        "could not be loaded (detail says why)."
    )
    ready: bool = Field(description="True once the index is loaded (the status code is then 200, else 503).")
    detail: str | None = Field(description="Why the service is not ready.")
    index_version: str | None = Field(description="Index generation served.")
    documents: int | None = Field(description="Documents in the index.")
    uptime_s: float = Field(description="Seconds since the service started.")


class ModelInfo(BaseModel):
    """The dense model the index was built with."""

    name: PublicName = Field(None, description="Model name.")
    model_id: PublicName = Field(None, description="Exact model id (name and weights digest).")
    dim: int | None = Field(None, description="Embedding dimension.")


class AnswerQueueStats(BaseModel):
    """The answer queue's state (back-pressure of /ask and the chat page)."""

    workers: int = Field(description="Answers computed at once.")
    running: int = Field(description="Answers being computed now.")
    waiting: int = Field(description="Questions waiting for a worker now.")
    max_waiting: int = Field(description="Most questions that may wait.")
    max_wait_s: float = Field(description="Longest expected wait admitted, in seconds.")
    served: int = Field(description="Answers computed since the start.")
    refused: int = Field(description="Questions refused at once (503) since the start.")
    expired: int = Field(description="Questions that missed their deadline or waited too long (503).")
    run_time_s: float = Field(description="Median time of the recent answers, in seconds.")


class StatsResponse(BaseModel):
    """Counts, model and version of the served index."""

    documents: int = Field(description="Documents in the index.")
    chunks: int = Field(description="Chunks (passages) in the index.")
    index_version: str = Field(description="Index generation served, e.g. gen-000003.")
    index_format: int | None = Field(description="On-disk format number of the index.")
    index_created: str | None = Field(description="When this generation was written (ISO 8601, UTC).")
    fingerprint: str | None = Field(description="Hash of the settings the index was built with.")
    built_by: str | None = Field(description="policyqa version that wrote the index.")
    policyqa_version: str = Field(description="policyqa version serving it.")
    model: ModelInfo = Field(description="The dense model.")
    encoder_backend: str = Field(description="How the encoder runs: torch, onnx or onnx-int8.")
    tokenizer: dict[str, Any] = Field(description="Tokenizer configuration of the index.")
    chunking: dict[str, Any] = Field(description="Chunking configuration of the index.")
    last_change: dict[str, Any] = Field(
        description="What the last write changed (added/removed documents …)."
    )
    answer_queue: AnswerQueueStats = Field(description="The answer queue of /ask and the chat page.")


# -- errors -----------------------------------------------------------------------------------
class ErrorItem(BaseModel):
    """One problem with a request field."""

    loc: list[str | int] = Field(description="Where: e.g. ['body', 'query'].")
    msg: str = Field(description="What is wrong.")
    type: str = Field(description="Error kind, e.g. string_too_long, missing.")
    ctx: dict[str, Any] | None = Field(None, description="Details, e.g. {'max_length': 500}.")


class ErrorResponse(BaseModel):
    """Every error: a short code and a human reason (never a stack trace)."""

    error: str = Field(description="Error code, e.g. invalid_request, unauthorized, not_found.")
    detail: str = Field(description="What went wrong and, where possible, how to fix it.")
    errors: list[ErrorItem] | None = Field(None, description="Per-field problems (422 only).")
    files: list[FileStatusOut] | None = Field(
        None, description="Per-file status when no upload could be indexed."
    )
