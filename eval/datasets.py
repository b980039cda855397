"""Benchmark loaders: BEIR directories and SQuAD-style JSON files.

Both formats load into one :class:`Benchmark`: the corpus as :class:`~policyqa.corpus.models.Document`
records, the evaluated queries, graded document-level qrels, reference answers, answer spans
(character offsets into a gold document, used for chunk-level relevance) and the set of
questions that have no answer.

A file that cannot be read raises :class:`BenchmarkFormatError`, whose message names the file,
the line (JSON Lines, TSV and JSON syntax errors) or the field path (inside a JSON document).

BEIR layout (``DIR/``)::

    corpus.jsonl    {"_id": str, "title": str (optional), "text": str}
    queries.jsonl   {"_id": str, "text": str}
    qrels.tsv       header "query-id  corpus-id  score", then one judgement a line
                    (or qrels/test.tsv)
    answers.jsonl   optional: {"_id": query id, "answers": [str, ...],
                    "corpus-id": str (optional), "answer_start": int | [int, ...] (optional)}

Only queries that have at least one qrels line are evaluated, in the order of ``queries.jsonl``.

SQuAD v1.1/v2 (CMRC 2018, DRCD, DuReader-robust): every paragraph becomes a document (title: its
article's title; id: the paragraph's own ``id`` when it has one, else a hash of title and
context), every question is a query whose gold document is its paragraph, its answers are the
references, and a question with ``is_impossible`` or no answers is kept as a no-answer case.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from policyqa.corpus.models import Document, stable_id

__all__ = [
    "Benchmark",
    "BenchmarkFormat",
    "BenchmarkFormatError",
    "Span",
    "detect_format",
    "load_beir",
    "load_benchmark",
    "load_squad",
]

BenchmarkFormat = Literal["beir", "squad"]

#: ``(doc_id, start, end)``: a gold answer's character offsets in a document's text.
Span = tuple[str, int, int]

QRELS_HEADER = ("query-id", "corpus-id", "score")


class BenchmarkFormatError(ValueError):
    """A benchmark file is missing or malformed.

    ``str(error)`` reads ``FILE:LINE: field 'FIELD': MESSAGE`` with the parts that are known.
    """

    def __init__(
        self, message: str, *, file: Path | str, line: int | None = None, field: str | None = None
    ) -> None:
        self.message = message
        self.file = str(file)
        self.line = line
        self.field = field
        where = self.file if line is None else f"{self.file}:{line}"
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{message}")


@dataclass(slots=True)
class Benchmark:
    """A question set over a corpus, ready to evaluate.

    ``queries`` holds the evaluated queries in file order; ``qrels`` maps each of them to its
    relevant documents (grade > 0 is relevant). ``answers`` holds reference answer strings,
    ``answer_spans`` where they occur in gold documents, ``no_answer`` the questions whose correct
    answer is "no answer". ``corpus_name`` names the benchmark whose corpus this is (one index
    serves every split of it). ``notes`` collects non-fatal oddities found while loading (e.g. an
    ``answer_start`` that had to be corrected).
    """

    name: str
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)
    answer_spans: dict[str, list[Span]] = field(default_factory=dict)
    no_answer: set[str] = field(default_factory=set)
    format: BenchmarkFormat = "beir"
    source: str = ""
    notes: list[str] = field(default_factory=list)
    #: The name of the whole benchmark a split or renamed one came from (its index is shared).
    corpus_name: str = ""

    @property
    def has_chunk_gold(self) -> bool:
        """Whether any query has an answer span, which chunk-level scoring needs."""
        return any(self.answer_spans.values())

    @property
    def has_answers(self) -> bool:
        """Whether any query has reference answers or is a no-answer case."""
        return bool(self.no_answer) or any(self.answers.values())

    def doc_by_id(self) -> dict[str, Document]:
        """The corpus keyed by document id."""
        return {doc.id: doc for doc in self.documents}

    def corpus_hash(self) -> str:
        """A sha1 over every document's id, title and text, in order: the cache key of the corpus."""
        h = hashlib.sha1()
        for doc in self.documents:
            for part in (doc.id, doc.title, doc.text):
                h.update(part.encode("utf-8"))
                h.update(b"\x1f")
            h.update(b"\x1e")
        return h.hexdigest()

    def limited(self, n: int | None) -> Benchmark:
        """The same benchmark with only its first ``n`` queries (file order); the corpus is kept whole."""
        if n is None or n >= len(self.queries):
            return self
        if n < 1:
            raise ValueError(f"limit must be at least 1, got {n}")
        keep = list(self.queries)[:n]
        kept = set(keep)
        return replace(
            self,
            queries={q: self.queries[q] for q in keep},
            qrels={q: self.qrels[q] for q in keep},
            answers={q: v for q, v in self.answers.items() if q in kept},
            answer_spans={q: v for q, v in self.answer_spans.items() if q in kept},
            no_answer={q for q in self.no_answer if q in kept},
            notes=list(self.notes),
        )


# --------------------------------------------------------------------------------------------
# helpers


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise BenchmarkFormatError("file not found", file=path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BenchmarkFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from exc
    except OSError as exc:
        raise BenchmarkFormatError(f"cannot be read: {exc.strerror or exc}", file=path) from exc


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSON Lines file."""
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", file=path, line=lineno
            ) from exc
        if not isinstance(obj, dict):
            raise BenchmarkFormatError(
                f"expected a JSON object, got {type(obj).__name__}", file=path, line=lineno
            )
        yield lineno, obj


def _id_field(obj: dict[str, Any], name: str, *, file: Path, line: int | None = None, where: str = "") -> str:
    """A required id: a non-empty string, or an integer (turned into its decimal string)."""
    label = f"{where}{name}"
    if name not in obj:
        raise BenchmarkFormatError("missing", file=file, line=line, field=label)
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BenchmarkFormatError(
            f"expected a string id, got {type(value).__name__}", file=file, line=line, field=label
        )
    text = str(value).strip()
    if not text:
        raise BenchmarkFormatError("empty id", file=file, line=line, field=label)
    return text


def _str_field(
    obj: dict[str, Any],
    name: str,
    *,
    file: Path,
    line: int | None = None,
    where: str = "",
    required: bool = True,
    allow_empty: bool = False,
) -> str:
    label = f"{where}{name}"
    if name not in obj or obj[name] is None:
        if required:
            raise BenchmarkFormatError("missing", file=file, line=line, field=label)
        return ""
    value = obj[name]
    if not isinstance(value, str):
        raise BenchmarkFormatError(
            f"expected a string, got {type(value).__name__}", file=file, line=line, field=label
        )
    if not allow_empty and not value.strip():
        raise BenchmarkFormatError("empty", file=file, line=line, field=label)
    return value


def _locate(text: str, answer: str, start: int | None) -> int | None:
    """Where ``answer`` occurs in ``text``: at ``start`` when it is right there, else the occurrence
    nearest to ``start`` (first when ``start`` is None); None when it does not occur."""
    if not answer:
        return None
    if start is not None and start >= 0 and text[start : start + len(answer)] == answer:
        return start
    found: list[int] = []
    pos = text.find(answer)
    while pos >= 0:
        found.append(pos)
        pos = text.find(answer, pos + 1)
    if not found:
        return None
    if start is None:
        return found[0]
    return min(found, key=lambda p: (abs(p - start), p))


# --------------------------------------------------------------------------------------------
# BEIR


def _find_qrels(root: Path) -> Path:
    for candidate in (root / "qrels.tsv", root / "qrels" / "test.tsv"):
        if candidate.is_file():
            return candidate
    raise BenchmarkFormatError("no qrels: expected qrels.tsv or qrels/test.tsv", file=root)


def _read_qrels(path: Path, queries: dict[str, str], doc_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    rows = list(enumerate(_read_text(path).splitlines(), start=1))
    rows = [(n, line) for n, line in rows if line.strip()]
    if not rows:
        raise BenchmarkFormatError(
            "empty file: expected the header 'query-id corpus-id score'", file=path, line=1
        )
    header_no, header = rows[0]
    if tuple(header.split()) != QRELS_HEADER:
        raise BenchmarkFormatError(
            f"expected the header 'query-id<TAB>corpus-id<TAB>score', got {header.strip()!r}",
            file=path,
            line=header_no,
        )
    names = QRELS_HEADER
    for lineno, line in rows[1:]:
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p.strip() for p in parts]
        if len(parts) != 3:
            raise BenchmarkFormatError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(parts)}",
                file=path,
                line=lineno,
            )
        qid, did, raw_score = parts
        for name, value in zip(names[:2], (qid, did), strict=True):
            if not value:
                raise BenchmarkFormatError("empty", file=path, line=lineno, field=name)
        try:
            score = int(raw_score)
        except ValueError:
            try:
                as_float = float(raw_score)
            except ValueError:
                as_float = float("nan")
            if not as_float.is_integer():
                raise BenchmarkFormatError(
                    f"expected an integer relevance grade, got {raw_score!r}",
                    file=path,
                    line=lineno,
                    field="score",
                ) from None
            score = int(as_float)
        if qid not in queries:
            raise BenchmarkFormatError(
                f"query {qid!r} is not in queries.jsonl", file=path, line=lineno, field="query-id"
            )
        if did not in doc_ids:
            raise BenchmarkFormatError(
                f"document {did!r} is not in corpus.jsonl", file=path, line=lineno, field="corpus-id"
            )
        qrels.setdefault(qid, {})[did] = score
    return qrels


def load_beir(path: str | Path, *, name: str | None = None) -> Benchmark:
    """Load a BEIR-layout benchmark directory (see the module docstring).

    :param path: the directory holding ``corpus.jsonl``, ``queries.jsonl`` and the qrels.
    :param name: the benchmark's name; the directory name by default.
    :raises BenchmarkFormatError: a file is missing or malformed.
    """
    root = Path(path)
    if not root.is_dir():
        raise BenchmarkFormatError("not a directory (a BEIR benchmark is a directory)", file=root)

    corpus_path = root / "corpus.jsonl"
    documents: list[Document] = []
    seen_docs: dict[str, int] = {}
    for lineno, obj in _iter_jsonl(corpus_path):
        did = _id_field(obj, "_id", file=corpus_path, line=lineno)
        if did in seen_docs:
            raise BenchmarkFormatError(
                f"duplicate document id {did!r} (first on line {seen_docs[did]})",
                file=corpus_path,
                line=lineno,
                field="_id",
            )
        seen_docs[did] = lineno
        title = _str_field(obj, "title", file=corpus_path, line=lineno, required=False, allow_empty=True)
        text = _str_field(obj, "text", file=corpus_path, line=lineno)
        documents.append(Document(id=did, title=title.strip(), text=text))
    if not documents:
        raise BenchmarkFormatError("no documents", file=corpus_path)

    queries_path = root / "queries.jsonl"
    all_queries: dict[str, str] = {}
    seen_queries: dict[str, int] = {}
    for lineno, obj in _iter_jsonl(queries_path):
        qid = _id_field(obj, "_id", file=queries_path, line=lineno)
        if qid in seen_queries:
            raise BenchmarkFormatError(
                f"duplicate query id {qid!r} (first on line {seen_queries[qid]})",
                file=queries_path,
                line=lineno,
                field="_id",
            )
        seen_queries[qid] = lineno
        all_queries[qid] = _str_field(obj, "text", file=queries_path, line=lineno).strip()

    qrels_path = _find_qrels(root)
    raw_qrels = _read_qrels(qrels_path, all_queries, set(seen_docs))
    queries = {q: t for q, t in all_queries.items() if q in raw_qrels}
    qrels = {q: raw_qrels[q] for q in queries}
    if not queries:
        raise BenchmarkFormatError("no judged queries", file=qrels_path)

    bench = Benchmark(
        name=name or root.resolve().name,
        documents=documents,
        queries=queries,
        qrels=qrels,
        format="beir",
        source=str(root),
    )
    unjudged = len(all_queries) - len(queries)
    if unjudged:
        bench.notes.append(f"{unjudged} queries of queries.jsonl have no qrels and are not evaluated")

    answers_path = root / "answers.jsonl"
    if answers_path.exists():
        _read_beir_answers(answers_path, bench)
    return bench


def _read_beir_answers(path: Path, bench: Benchmark) -> None:
    docs = bench.doc_by_id()
    corrected = missing = 0
    for lineno, obj in _iter_jsonl(path):
        qid = _id_field(obj, "_id", file=path, line=lineno)
        if qid not in bench.queries:
            continue  # an answer for a query that is not evaluated
        raw_answers = obj.get("answers")
        if not isinstance(raw_answers, list) or not all(isinstance(a, str) for a in raw_answers):
            raise BenchmarkFormatError("expected a list of strings", file=path, line=lineno, field="answers")
        answers = [a for a in raw_answers if a.strip()]
        if not answers:
            bench.no_answer.add(qid)
            bench.answers[qid] = []
            continue
        bench.answers[qid] = answers

        doc_id: str | None
        if obj.get("corpus-id") is not None:
            doc_id = _id_field(obj, "corpus-id", file=path, line=lineno)
            if doc_id not in docs:
                raise BenchmarkFormatError(
                    f"document {doc_id!r} is not in corpus.jsonl", file=path, line=lineno, field="corpus-id"
                )
        else:
            gold = [d for d, g in bench.qrels[qid].items() if g > 0]
            doc_id = gold[0] if len(gold) == 1 else None
        raw_start = obj.get("answer_start")
        starts: list[int | None]
        if raw_start is None:
            starts = [None] * len(answers)
        elif isinstance(raw_start, int) and not isinstance(raw_start, bool):
            starts = [raw_start] + [None] * (len(answers) - 1)
        elif isinstance(raw_start, list) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in raw_start
        ):
            starts = [*raw_start, *([None] * max(0, len(answers) - len(raw_start)))]
        else:
            raise BenchmarkFormatError(
                "expected an integer or a list of integers", file=path, line=lineno, field="answer_start"
            )
        if doc_id is None:
            continue
        text = docs[doc_id].text
        spans: list[Span] = []
        for answer, start in zip(answers, starts, strict=False):
            pos = _locate(text, answer, start)
            if pos is None:
                missing += 1
                continue
            if start is not None and pos != start:
                corrected += 1
            span = (doc_id, pos, pos + len(answer))
            if span not in spans:
                spans.append(span)
        if spans:
            bench.answer_spans[qid] = spans
    if corrected:
        bench.notes.append(f"{path.name}: {corrected} answer_start values did not match and were re-located")
    if missing:
        bench.notes.append(f"{path.name}: {missing} answers do not occur in their gold document (no span)")


# --------------------------------------------------------------------------------------------
# SQuAD


def _expect(value: Any, kind: type | tuple[type, ...], *, file: Path, field: str) -> Any:
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        got = "nothing" if value is None else type(value).__name__
        raise BenchmarkFormatError(f"expected {names}, got {got}", file=file, field=field)
    return value


def load_squad(path: str | Path, *, name: str | None = None) -> Benchmark:
    """Load a SQuAD v1.1/v2-format JSON file (CMRC 2018, DRCD, DuReader-robust style).

    :param path: the JSON file.
    :param name: the benchmark's name; the file's stem by default.
    :raises BenchmarkFormatError: the file is missing, not JSON, or lacks a required field
        (the message gives the field's path, e.g. ``data[3].paragraphs[0].qas[2].question``).
    """
    file = Path(path)
    raw = _read_text(file)
    try:
        top = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno
        ) from exc
    _expect(top, dict, file=file, field="(top level)")
    articles = _expect(top.get("data"), list, file=file, field="data")

    documents: list[Document] = []
    doc_index: dict[str, int] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    bench = Benchmark(
        name=name or file.stem,
        documents=documents,
        queries=queries,
        qrels=qrels,
        format="squad",
        source=str(file),
    )
    corrected = missing = 0
    for ai, article in enumerate(articles):
        where_a = f"data[{ai}]"
        _expect(article, dict, file=file, field=where_a)
        title = article.get("title")
        title = title.strip() if isinstance(title, str) else ""
        paragraphs = _expect(article.get("paragraphs"), list, file=file, field=f"{where_a}.paragraphs")
        for pi, paragraph in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{pi}]"
            _expect(paragraph, dict, file=file, field=where_p)
            context = _str_field(paragraph, "context", file=file, where=f"{where_p}.")
            if paragraph.get("id") is not None:
                doc_id = _id_field(paragraph, "id", file=file, where=f"{where_p}.")
            else:
                doc_id = stable_id(title, context)
            if doc_id in doc_index:
                if documents[doc_index[doc_id]].text != context:
                    raise BenchmarkFormatError(
                        f"duplicate paragraph id {doc_id!r} with a different context",
                        file=file,
                        field=f"{where_p}.id",
                    )
            else:
                doc_index[doc_id] = len(documents)
                documents.append(Document(id=doc_id, title=title, text=context))
            qas = _expect(paragraph.get("qas", []), list, file=file, field=f"{where_p}.qas")
            for qi, qa in enumerate(qas):
                where_q = f"{where_p}.qas[{qi}]."
                _expect(qa, dict, file=file, field=where_q.rstrip("."))
                qid = _id_field(qa, "id", file=file, where=where_q)
                if qid in queries:
                    raise BenchmarkFormatError(
                        f"duplicate question id {qid!r}", file=file, field=f"{where_q}id"
                    )
                queries[qid] = _str_field(qa, "question", file=file, where=where_q).strip()
                qrels[qid] = {doc_id: 1}
                raw_answers = _expect(qa.get("answers", []), list, file=file, field=f"{where_q}answers")
                refs: list[str] = []
                spans: list[Span] = []
                for ni, ans in enumerate(raw_answers):
                    where_n = f"{where_q}answers[{ni}]."
                    _expect(ans, dict, file=file, field=where_n.rstrip("."))
                    text = _str_field(ans, "text", file=file, where=where_n, allow_empty=True)
                    if not text.strip():
                        continue
                    start = ans.get("answer_start")
                    if start is not None and (isinstance(start, bool) or not isinstance(start, int)):
                        raise BenchmarkFormatError(
                            f"expected an integer, got {type(start).__name__}",
                            file=file,
                            field=f"{where_n}answer_start",
                        )
                    if text not in refs:
                        refs.append(text)
                    pos = _locate(context, text, start)
                    if pos is None:
                        missing += 1
                        continue
                    if start is not None and pos != start:
                        corrected += 1
                    span = (doc_id, pos, pos + len(text))
                    if span not in spans:
                        spans.append(span)
                impossible = bool(qa.get("is_impossible", False))
                if impossible or not refs:
                    bench.no_answer.add(qid)
                    bench.answers[qid] = []
                else:
                    bench.answers[qid] = refs
                    if spans:
                        bench.answer_spans[qid] = spans
    if not documents:
        raise BenchmarkFormatError("no paragraphs", file=file, field="data")
    if not queries:
        raise BenchmarkFormatError("no questions", file=file, field="data")
    if corrected:
        bench.notes.append(f"{file.name}: {corrected} answer_start values did not match and were re-located")
    if missing:
        bench.notes.append(f"{file.name}: {missing} answers do not occur in their paragraph (no span)")
    return bench


# --------------------------------------------------------------------------------------------
# autodetection


def detect_format(path: str | Path) -> BenchmarkFormat:
    """``beir`` for a directory with ``corpus.jsonl``, ``squad`` for a ``.json`` file (or a
    directory holding exactly one).

    :raises BenchmarkFormatError: neither applies.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "corpus.jsonl").is_file():
            return "beir"
        if len(list(p.glob("*.json"))) == 1:
            return "squad"
        raise BenchmarkFormatError(
            "not a benchmark: expected a BEIR directory (corpus.jsonl, queries.jsonl, qrels.tsv) "
            "or a SQuAD-style .json file",
            file=p,
        )
    if p.is_file():
        if p.suffix.lower() == ".json":
            return "squad"
        raise BenchmarkFormatError("cannot tell the format of this file; pass --format squad or beir", file=p)
    raise BenchmarkFormatError("no such file or directory", file=p)


def load_benchmark(path: str | Path, format: BenchmarkFormat | None = None) -> Benchmark:
    """Load a benchmark in either format; ``format=None`` detects it (see :func:`detect_format`).

    A SQuAD benchmark may also be given as a directory that holds exactly one ``.json`` file.
    """
    p = Path(path)
    fmt = format or detect_format(p)
    if fmt == "beir":
        return load_beir(p)
    if fmt == "squad":
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if len(found) != 1:
                raise BenchmarkFormatError(
                    f"expected exactly one .json file in the directory, found {len(found)}", file=p
                )
            p = found[0]
        return load_squad(p)
    raise ValueError(f"unknown benchmark format {fmt!r}: choose 'beir' or 'squad'")
