"""Retrievers over the Milvus backend (:mod:`policyqa.index.milvus`), same protocol and hits.

- :class:`MilvusBM25Retriever`: Milvus' built-in BM25 (sparse field produced by the BM25
  function over the jieba-analysed passage text) plus, with ``char_bigrams``, the BM25 of the
  passage's character bigrams (a second field and function): a chunk scores the sum of both.
- :class:`MilvusDenseRetriever`: inner product of the query embedding with the stored vectors.
- :class:`MilvusHybridRetriever`: ``rrf`` fusion runs **in Milvus** (``hybrid_search`` with an
  ``RRFRanker``; scores scaled by the weight 0.5 so they equal the embedded RRF scores) when both
  weights are equal and BM25 is one field (no bigrams: Milvus' rankers cannot sum two BM25
  lists into one before RRF); ``zscore``/``weighted`` (and the other RRF cases) fuse on the client
  exactly as :class:`policyqa.retriever.hybrid.HybridRetriever` does: candidates from both
  searches, both scores computed for every candidate (BM25 by a search restricted to the
  candidates, cosine from the stored vectors) and the document-level BM25 context from the
  documents collection.

:class:`~policyqa.retriever.base.Filters` become Milvus boolean expressions
(:func:`filter_expression`), applied inside every search before its cut. Ties are broken by
index order (document sequence, then chunk ordinal), as the embedded backend breaks them by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from policyqa.index.milvus import HIT_FIELDS, bigram_text, bm25_text, date_int, quote, string_list

from .base import Filters, Hit
from .common import check_query, check_top_k
from .fusion import DEFAULT_FUSION, FusionMode, FusionOptions, fuse, top_order

if TYPE_CHECKING:
    from policyqa.index.milvus import MilvusIndex

__all__ = [
    "MilvusBM25Retriever",
    "MilvusDenseRetriever",
    "MilvusHybridRetriever",
    "filter_expression",
]

#: Largest ``limit`` a Milvus search accepts.
MAX_LIMIT = 16_384
_LIKE_SPECIAL = ("%", "_", "\\")


def filter_expression(filters: Filters | None) -> tuple[str, bool]:
    """The Milvus boolean expression of ``filters`` and whether hits must be checked again.

    ``issuer``/``doc_type``/``region`` ("contains", alternatives OR-ed) become
    ``field like "%value%"``; the dates compare the integer ``date_int`` (``YYYYMMDD``; 0, no date,
    never passes); ``doc_ids`` becomes ``doc_id in [...]``. String values are quoted with
    backslash escapes. A value holding a LIKE wildcard (``%`` or ``_``) or a backslash cannot be
    matched literally everywhere (Milvus Lite has no LIKE escape): such characters are widened
    to ``_`` and the second result says to re-check hits with :meth:`Filters.matches`.
    """
    if filters is None or filters.is_empty():
        return "", False
    parts: list[str] = []
    recheck = False
    if filters.doc_ids:
        parts.append(f"doc_id in {string_list(list(filters.doc_ids))}")
    for name, wanted in (
        ("issuer", filters.issuer),
        ("doc_type", filters.doc_type),
        ("region", filters.region),
    ):
        if not wanted:
            continue
        alternatives = []
        for value in wanted:
            if any(ch in value for ch in _LIKE_SPECIAL):
                recheck = True
                for ch in _LIKE_SPECIAL:
                    value = value.replace(ch, "_")
            alternatives.append(f"{name} like {quote('%' + value + '%')}")
        parts.append("(" + " or ".join(alternatives) + ")")
    if filters.date_from or filters.date_to:
        parts.append("date_int > 0")
        if filters.date_from:
            parts.append(f"date_int >= {date_int(filters.date_from.isoformat())}")
        if filters.date_to:
            parts.append(f"date_int <= {date_int(filters.date_to.isoformat())}")
    return " and ".join(parts), recheck


def _entity(hit: Any) -> dict[str, Any]:
    ent = hit.get("entity") if isinstance(hit, dict) else None
    return dict(ent) if ent else dict(hit)


def _score(hit: Any, metric: str) -> float:
    d = float(hit["distance"])
    # Milvus returns BM25 scores as positive similarities; Milvus Lite as negative distances
    return abs(d) if metric == "BM25" else d


class _Candidates:
    """One ranked list from Milvus: entities by chunk id, in order, with scores."""

    def __init__(self, hits: Sequence[Any], metric: str) -> None:
        rows = []
        for h in hits:
            e = _entity(h)
            e.setdefault("chunk_id", h.get("id") if isinstance(h, dict) else None)
            rows.append((e, _score(h, metric)))
        self._set(rows)

    @classmethod
    def scored(cls, rows: Sequence[tuple[dict[str, Any], float]]) -> _Candidates:
        """A list of (entity, score) pairs, ranked."""
        c = cls([], "")
        c._set(list(rows))
        return c

    def _set(self, rows: list[tuple[dict[str, Any], float]]) -> None:
        rows.sort(key=lambda es: (-es[1], int(es[0].get("doc_seq", 0)), int(es[0].get("ordinal", 0))))
        self.entities = [e for e, _ in rows]
        self.scores = [s for _, s in rows]

    def ids(self) -> list[str]:
        return [str(e["chunk_id"]) for e in self.entities]


def _make_hit(
    e: dict[str, Any], rank: int, score: float, scores: dict[str, float], ranks: dict[str, int]
) -> Hit:
    def opt(name: str) -> str | None:
        v = e.get(name)
        return str(v) if v else None

    return Hit(
        chunk_id=str(e["chunk_id"]),
        doc_id=str(e["doc_id"]),
        score=float(score),
        rank=rank,
        text=str(e.get("text", "")),
        start=int(e.get("start", 0)),
        end=int(e.get("end", 0)),
        heading=str(e.get("heading") or ""),
        title=str(e.get("title") or ""),
        doc_number=opt("doc_number"),
        issuer=opt("issuer"),
        date=opt("date"),
        doc_type=opt("doc_type"),
        region=opt("region"),
        source=opt("source"),
        scores=scores,
        ranks=ranks,
    )


def _passes(filters: Filters | None, e: dict[str, Any]) -> bool:
    if filters is None:
        return True
    meta = {k: (e.get(k) or None) for k in ("issuer", "doc_type", "region", "date")}
    return filters.matches(meta, str(e["doc_id"]))


class _MilvusBase:
    def __init__(self, index: MilvusIndex) -> None:
        self.index = index
        self.client = index.client
        self.collection = index.collection
        self.settings = index.settings

    # -- searches ----------------------------------------------------------------------------
    def _bm25_params(self) -> dict[str, Any]:
        return {"metric_type": "BM25", "params": {"drop_ratio_search": 0.0}}

    def _dense_params(self, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.settings.milvus_dense_index == "HNSW":
            params["ef"] = max(self.settings.milvus_hnsw_ef, limit)
        return {"metric_type": "IP", "params": params}

    def _limit(self, depth: int, recheck: bool) -> int:
        return min(MAX_LIMIT, depth * 4 if recheck else depth)

    def _bm25_fields(self, query: str) -> list[tuple[str, str]]:
        """(sparse field, query text) of each BM25 field with something to match."""
        fields = [("sparse", bm25_text(query))]
        if self.index.bigrams:
            fields.append(("bigram_sparse", bigram_text(self.index.tokenizer, query)))
        return [(f, t) for f, t in fields if t.strip()]

    def bm25_candidates(self, query: str, depth: int, filters: Filters | None) -> _Candidates:
        """The ``depth`` best chunks by BM25 (with bigrams: by the sum of the two fields' BM25).

        With two fields, each field's best ``depth`` chunks are candidates, the candidates
        missing from one field's list get their score there by a search restricted to them,
        and the sums are ranked.
        """
        expr, recheck = filter_expression(filters)
        fields = self._bm25_fields(query)
        if not fields:
            return _Candidates([], "BM25")
        lists: list[_Candidates] = []
        for field, text in fields:
            res = self.client.search(
                self.collection,
                data=[text],
                anns_field=field,
                limit=self._limit(depth, recheck),
                filter=expr,
                output_fields=list(HIT_FIELDS),
                search_params=self._bm25_params(),
            )
            lists.append(_Candidates(res[0] if res else [], "BM25"))
        if len(lists) == 1:  # one field to match: its scores are the sums
            return self._cut(lists[0], depth, filters if recheck else None)
        entities: dict[str, dict[str, Any]] = {}
        for c in lists:
            for e in c.entities:
                entities.setdefault(str(e["chunk_id"]), e)
        totals = dict.fromkeys(entities, 0.0)
        for (field, text), c in zip(fields, lists, strict=True):
            found = dict(zip(c.ids(), c.scores, strict=True))
            missing = [cid for cid in entities if cid not in found]
            found.update(self._field_scores(field, text, missing))
            for cid in entities:
                totals[cid] += found.get(cid, 0.0)
        summed = _Candidates.scored([(entities[cid], totals[cid]) for cid in entities])
        return self._cut(summed, depth, filters if recheck else None)

    def _field_scores(self, field: str, text: str, chunk_ids: Sequence[str]) -> dict[str, float]:
        """BM25 on one field of the given chunks (absent: 0), by a search restricted to them."""
        if not chunk_ids:
            return {}
        res = self.client.search(
            self.collection,
            data=[text],
            anns_field=field,
            limit=min(MAX_LIMIT, len(chunk_ids)),
            filter=f"chunk_id in {string_list(list(chunk_ids))}",
            output_fields=["chunk_id"],
            search_params=self._bm25_params(),
        )
        out: dict[str, float] = {}
        for h in res[0] if res else []:
            e = _entity(h)
            out[str(e.get("chunk_id", h.get("id")))] = _score(h, "BM25")
        return out

    def dense_candidates(
        self, qvec: npt.NDArray[np.float32], depth: int, filters: Filters | None
    ) -> _Candidates:
        expr, recheck = filter_expression(filters)
        limit = self._limit(depth, recheck)
        res = self.client.search(
            self.collection,
            data=[np.asarray(qvec, dtype=np.float32).tolist()],
            anns_field="dense",
            limit=limit,
            filter=expr,
            output_fields=list(HIT_FIELDS),
            search_params=self._dense_params(limit),
        )
        return self._cut(_Candidates(res[0] if res else [], "IP"), depth, filters if recheck else None)

    @staticmethod
    def _cut(c: _Candidates, depth: int, recheck: Filters | None) -> _Candidates:
        keep = [i for i, e in enumerate(c.entities) if recheck is None or _passes(recheck, e)][:depth]
        c.entities = [c.entities[i] for i in keep]
        c.scores = [c.scores[i] for i in keep]
        return c

    def embed(self, queries: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.asarray(
            self.index.encoder.encode_queries([check_query(q) for q in queries]), dtype=np.float32
        )

    # -- exact scores of given chunks --------------------------------------------------------
    def bm25_of(self, query: str, chunk_ids: Sequence[str]) -> dict[str, float]:
        """BM25 of the given chunks (absent: 0; with bigrams the sum of both fields)."""
        out: dict[str, float] = {}
        for field, text in self._bm25_fields(query):
            for cid, score in self._field_scores(field, text, chunk_ids).items():
                out[cid] = out.get(cid, 0.0) + score
        return out

    def dense_of(self, qvec: npt.NDArray[np.float32], chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine of the given chunks from their stored vectors."""
        if not chunk_ids:
            return {}
        rows = self.client.query(
            self.collection,
            filter=f"chunk_id in {string_list(list(chunk_ids))}",
            output_fields=["chunk_id", "dense"],
        )
        if not rows:
            return {}
        ids = [str(r["chunk_id"]) for r in rows]
        mat = np.asarray([r["dense"] for r in rows], dtype=np.float32)
        sims = mat @ np.asarray(qvec, dtype=np.float32)
        return {i: float(s) for i, s in zip(ids, sims, strict=True)}

    def doc_bm25_of(self, query: str, doc_ids: Sequence[str]) -> dict[str, tuple[float, int]]:
        """Document-level BM25 (best part; with bigrams a part scores the sum of both fields)
        and the document's number of chunks."""
        if not doc_ids:
            return {}
        parts: dict[str, tuple[str, float, int]] = {}
        for field, text in self._bm25_fields(query):
            res = self.client.search(
                self.index.docs_collection,
                data=[text],
                anns_field=field,
                limit=MAX_LIMIT,
                filter=f"doc_id in {string_list(list(doc_ids))}",
                output_fields=["doc_id", "part_id", "n_chunks"],
                search_params=self._bm25_params(),
            )
            for h in res[0] if res else []:
                e = _entity(h)
                part = str(e.get("part_id", h.get("id")))
                _, before, _n = parts.get(part, ("", 0.0, 0))
                parts[part] = (str(e["doc_id"]), before + _score(h, "BM25"), int(e.get("n_chunks") or 0))
        out: dict[str, tuple[float, int]] = {}
        for d, score, n in parts.values():
            best, chunks = out.get(d, (0.0, 0))
            out[d] = (max(best, score), max(chunks, n))
        unmatched = [d for d in doc_ids if d not in out]
        if unmatched:  # BM25 did not match them: score 0, and their chunk counts read directly
            rows = self.client.query(
                self.index.docs_collection,
                filter=f"doc_id in {string_list(unmatched)}",
                output_fields=["doc_id", "n_chunks"],
            )
            for r in rows:
                d = str(r["doc_id"])
                out[d] = (0.0, max(out.get(d, (0.0, 0))[1], int(r.get("n_chunks") or 0)))
        return out


class MilvusBM25Retriever(_MilvusBase):
    """BM25 by Milvus' built-in BM25 function over jieba-analysed passage text (and bigrams)."""

    name = "bm25"

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        q = check_query(query)
        c = self.bm25_candidates(q, check_top_k(top_k), filters)
        return [
            _make_hit(e, r, s, {"bm25": s}, {"bm25": r})
            for r, (e, s) in enumerate(zip(c.entities, c.scores, strict=True), start=1)
        ]

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        return [self.search(q, top_k, filters) for q in queries]


class MilvusDenseRetriever(_MilvusBase):
    """Inner product of the query embedding with the stored (normalised) passage vectors."""

    name = "dense"

    def _hits(self, qvec: npt.NDArray[np.float32], top_k: int, filters: Filters | None) -> list[Hit]:
        c = self.dense_candidates(qvec, top_k, filters)
        return [
            _make_hit(e, r, s, {"dense": s}, {"dense": r})
            for r, (e, s) in enumerate(zip(c.entities, c.scores, strict=True), start=1)
        ]

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        return self._hits(self.embed([query])[0], check_top_k(top_k), filters)

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        check_top_k(top_k)
        if not queries:
            return []
        return [self._hits(v, top_k, filters) for v in self.embed(queries)]


class MilvusHybridRetriever(_MilvusBase):
    """BM25 + dense fused: RRF inside Milvus, or the embedded backend's score fusion on the client."""

    name = "hybrid"

    def __init__(
        self,
        index: MilvusIndex,
        options: FusionOptions = DEFAULT_FUSION,
    ) -> None:
        super().__init__(index)
        self.options = options

    @property
    def server_side(self) -> bool:
        """Whether fusion runs in Milvus (RRF with equal weights, BM25 over words only)."""
        o = self.options
        return o.mode is FusionMode.RRF and abs(o.bm25_weight - 0.5) < 1e-9 and not self.index.bigrams

    # -- RRF in Milvus -----------------------------------------------------------------------
    def _rrf_in_milvus(
        self, query: str, qvec: npt.NDArray[np.float32], top_k: int, filters: Filters | None
    ) -> list[Hit]:
        from pymilvus import AnnSearchRequest, RRFRanker

        text = bm25_text(query)
        if not text.strip():  # nothing for BM25 to match: RRF of the dense list alone
            dense = self.dense_candidates(qvec, max(self.options.candidate_depth, top_k), filters)
            return self._rrf_hits(
                [(e, 0.5 / (self.options.rrf_k + r)) for r, e in enumerate(dense.entities, start=1)][:top_k],
                query,
                qvec,
            )
        depth = max(self.options.candidate_depth, top_k)
        expr, recheck = filter_expression(filters)
        limit = self._limit(depth, recheck)
        reqs = [
            AnnSearchRequest(
                data=[text], anns_field="sparse", param=self._bm25_params(), limit=limit, expr=expr
            ),
            AnnSearchRequest(
                data=[np.asarray(qvec, dtype=np.float32).tolist()],
                anns_field="dense",
                param=self._dense_params(limit),
                limit=limit,
                expr=expr,
            ),
        ]
        res = self.client.hybrid_search(
            self.collection,
            reqs,
            RRFRanker(self.options.rrf_k),
            limit=min(MAX_LIMIT, top_k * 4 if recheck else top_k),
            output_fields=list(HIT_FIELDS),
        )
        c = _Candidates(res[0] if res else [], "RRF")
        c = self._cut(c, top_k, filters if recheck else None)
        # the embedded RRF weighs each list by 0.5: same ranking, scores halved to match
        return self._rrf_hits([(e, 0.5 * s) for e, s in zip(c.entities, c.scores, strict=True)], query, qvec)

    def _rrf_hits(
        self, ranked: list[tuple[dict[str, Any], float]], query: str, qvec: npt.NDArray[np.float32]
    ) -> list[Hit]:
        ids = [str(e["chunk_id"]) for e, _ in ranked]
        bm = self.bm25_of(query, ids)
        de = self.dense_of(qvec, ids)
        return [
            _make_hit(
                e,
                r,
                s,
                {
                    "bm25": bm.get(str(e["chunk_id"]), 0.0),
                    "dense": de.get(str(e["chunk_id"]), 0.0),
                    "fused": s,
                },
                {"fused": r},
            )
            for r, (e, s) in enumerate(ranked, start=1)
        ]

    # -- client-side fusion (as the embedded HybridRetriever) -------------------------------
    def _fuse(
        self, query: str, qvec: npt.NDArray[np.float32], top_k: int, filters: Filters | None
    ) -> list[Hit]:
        if self.server_side:
            return self._rrf_in_milvus(query, qvec, top_k, filters)
        depth = max(self.options.candidate_depth, top_k)
        b = self.bm25_candidates(query, depth, filters)
        d = self.dense_candidates(qvec, depth, filters)
        b_rank = {cid: i + 1 for i, cid in enumerate(b.ids())}
        d_rank = {cid: i + 1 for i, cid in enumerate(d.ids())}
        entities: dict[str, dict[str, Any]] = {}
        for e in b.entities + d.entities:
            entities.setdefault(str(e["chunk_id"]), e)
        if not entities:
            return []
        # the union in index order (the embedded backend's row order)
        union = sorted(entities, key=lambda c: (int(entities[c]["doc_seq"]), int(entities[c]["ordinal"])))
        order_key = {c: i for i, c in enumerate(union)}
        bm_map = dict(zip(b.ids(), b.scores, strict=True))
        missing_b = [c for c in union if c not in bm_map]
        bm_map.update(self.bm25_of(query, missing_b))
        de_map = dict(zip(d.ids(), d.scores, strict=True))
        missing_d = [c for c in union if c not in de_map]
        de_map.update(self.dense_of(qvec, missing_d))
        bm = np.array([bm_map.get(c, 0.0) for c in union], dtype=np.float32)
        de = np.array([de_map.get(c, 0.0) for c in union], dtype=np.float32)
        doc_scores: npt.NDArray[np.float32] | None = None
        doc_chunks: npt.NDArray[np.int64] | None = None
        if self.options.mode is not FusionMode.RRF and self.options.doc_weight > 0:
            docs = self.doc_bm25_of(query, sorted({str(entities[c]["doc_id"]) for c in union}))
            found = [docs.get(str(entities[c]["doc_id"]), (0.0, 0)) for c in union]
            doc_scores = np.array([score for score, _n in found], dtype=np.float32)
            doc_chunks = np.array([n for _s, n in found], dtype=np.int64)
        fused = fuse(
            bm,
            de,
            np.array([b_rank.get(c, 0) for c in union], dtype=np.int64),
            np.array([d_rank.get(c, 0) for c in union], dtype=np.int64),
            doc_scores,
            self.options,
            doc_chunks,
        )
        keys = np.array([order_key[c] for c in union], dtype=np.int64)
        order = top_order(fused, keys, top_k)
        hits: list[Hit] = []
        for rank, i in enumerate(order.tolist(), start=1):
            c = union[i]
            scores = {"bm25": float(bm[i]), "dense": float(de[i]), "fused": float(fused[i])}
            if doc_scores is not None:
                scores["doc_bm25"] = float(doc_scores[i])
            ranks = {"fused": rank}
            if c in b_rank:
                ranks["bm25"] = b_rank[c]
            if c in d_rank:
                ranks["dense"] = d_rank[c]
            hits.append(_make_hit(entities[c], rank, float(fused[i]), scores, ranks))
        return hits

    def search(self, query: str, top_k: int = 10, filters: Filters | None = None) -> list[Hit]:
        q = check_query(query)
        return self._fuse(q, self.embed([q])[0], check_top_k(top_k), filters)

    def batch_search(
        self, queries: Sequence[str], top_k: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        check_top_k(top_k)
        if not queries:
            return []
        qs = [check_query(q) for q in queries]
        vecs = self.embed(qs)
        return [self._fuse(q, v, top_k, filters) for q, v in zip(qs, vecs, strict=True)]
