"""Train the built-in answer reader's LoRA adapter (see :mod:`policyqa.answer.lora`).

``python -m policyqa.train.reader BENCH [BENCH …] [--split train] [--out FILE]``

Training examples are (question, passage, answer character span or none):

* BEIR benchmarks with answers (ncpqa-dev): for every question of the split, the top passages of
  the reranked hybrid search exactly as ``policyqa ask`` gets them, plus the passages of the gold
  document that hold the start of the gold answer span. A passage of the gold document that holds
  the answer's start is a positive (the span is clipped at the passage end); every other passage
  is a negative ("no answer": the ``[CLS]`` position), which teaches the reader to rank passages.
* SQuAD benchmarks (CMRC 2018): each question of the split with its own paragraph.

Questions are split by a sha1 of their id as in ``train_rerank``, so the ``test`` split is never
seen. ``--hold-out K/N`` also leaves out the split's BEIR questions of cross-fitting fold ``K``
of ``N`` (:func:`~policyqa.train.rerank.fold_of`): such a reader gives those questions
out-of-sample logits for fitting the span model (``train_answer --fold-readers``).

The model is the converted multilingual-e5-small as a ``BertForQuestionAnswering`` with
a LoRA update on every encoder linear layer (embeddings frozen); cross-entropy on the start and
end positions, AdamW with linear warm-up and decay, length-bucketed batches. Needs only the CPU.
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

from policyqa.answer.lora import LORA_TARGETS, adapter_info
from policyqa.eval.splits import fold_of, in_split

__all__ = [
    "ReaderExample",
    "adapter_tensors",
    "add_lora",
    "collect_beir_examples",
    "collect_squad_examples",
    "featurize",
    "main",
    "save_adapter",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderExample:
    """One training passage: the answer is ``context[start:end]``, or none (``start == -1``)."""

    question: str
    context: str
    start: int
    end: int


def collect_beir_examples(
    index: Any,
    settings: Any,
    queries: dict[str, str],
    spans: dict[str, list[tuple[str, int, int]]],
    *,
    show_progress: bool = False,
) -> list[ReaderExample]:
    """Positives and negatives from the passages ``ask`` reads for each question."""
    from tqdm.auto import tqdm

    from policyqa.qa import QAPipeline

    qa = QAPipeline(index, settings)
    qa.reranker.warm_up()
    out: list[ReaderExample] = []
    for qid, text in tqdm(queries.items(), desc="passages", disable=not show_progress):
        gold = spans.get(qid, [])
        if not gold:
            continue
        hits = qa.reranked(text)[: settings.answer_passages]
        passages = [(h.chunk_id, h.doc_id, h.text, h.start, h.end) for h in hits]
        seen = {p[0] for p in passages}
        for doc_id, a, _b in gold:
            for ch in index.store.chunks_of(doc_id):
                if ch.start <= a < ch.end and ch.id not in seen:
                    passages.append((ch.id, ch.doc_id, ch.text, ch.start, ch.end))
                    seen.add(ch.id)
        for _cid, doc, ptext, p0, p1 in passages:
            pos = next(((a, b) for d, a, b in gold if d == doc and p0 <= a < p1), None)
            if pos is None:
                out.append(ReaderExample(text, ptext, -1, -1))
            else:
                a, b = pos
                out.append(ReaderExample(text, ptext, a - p0, min(b, p1) - p0))
    return out


def collect_squad_examples(path: Path, split: str, train_share: float) -> list[ReaderExample]:
    """Each question of the split with its own paragraph and first reference answer."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: list[ReaderExample] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            ctx = para["context"]
            for qa in para["qas"]:
                if not in_split(str(qa["id"]), split, train_share) or not qa.get("answers"):
                    continue
                ans = qa["answers"][0]
                a = int(ans["answer_start"])
                b = a + len(ans["text"])
                if ctx[a:b] != ans["text"]:
                    found = ctx.find(ans["text"])
                    if found < 0:
                        continue
                    a, b = found, found + len(ans["text"])
                out.append(ReaderExample(qa["question"], ctx, a, b))
    return out


def add_lora(
    model: Any,
    rank: int,
    alpha: float,
    dropout: float = 0.05,
    heads: tuple[str, ...] = ("qa_outputs",),
) -> list[str]:
    """Replace the target linear layers of a BERT with LoRA-wrapped ones; freeze the rest
    except LayerNorms and the parameters under ``heads`` (the QA head by default). Returns the
    wrapped module names."""
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
            self.scale = alpha / rank
            self.drop = nn.Dropout(dropout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.base(x) + (self.drop(x) @ self.lora_a.T @ self.lora_b.T) * self.scale
            return out

    for p in model.parameters():
        p.requires_grad = False
    wrapped: list[str] = []
    for i, layer in enumerate(model.bert.encoder.layer):
        for target in LORA_TARGETS:
            parent = layer
            *path, leaf = target.split(".")
            for part in path:
                parent = getattr(parent, part)
            setattr(parent, leaf, LoRALinear(getattr(parent, leaf)))
            wrapped.append(f"encoder.layer.{i}.{target}")
    for name, p in model.named_parameters():
        in_encoder = ".encoder." in f".{name}"
        if "lora_" in name or ("LayerNorm" in name and in_encoder) or name.startswith(heads):
            p.requires_grad = True
    return wrapped


def adapter_tensors(model: Any) -> dict[str, Any]:
    """The trainable tensors under their adapter names (``encoder.layer.N.….lora_a`` …)."""
    out: dict[str, Any] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = name[len("bert.") :] if name.startswith("bert.") else name
        key = key.replace(".base.", ".")
        out[key] = p.detach().float().cpu().numpy().copy()
    return out


def save_adapter(model: Any, path: Path, info: dict[str, Any]) -> None:
    """Write the adapter file: LoRA factors in float16, the LayerNorms and the head in float32,
    ``info`` (which must hold ``rank`` and ``alpha``) as the ``policyqa_reader`` metadata."""
    import numpy as np
    from safetensors.numpy import save_file

    if "rank" not in info or "alpha" not in info:
        raise ValueError("adapter info needs 'rank' and 'alpha'")
    tensors = {
        k: (v.astype(np.float16) if ".lora_" in k else v.astype(np.float32))
        for k, v in adapter_tensors(model).items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"policyqa_reader": json.dumps(info, ensure_ascii=False)})


def calibrate_threshold(
    reader: Any,
    index: Any,
    settings: Any,
    queries: dict[str, str],
    spans: dict[str, list[tuple[str, int, int]]],
    *,
    unanswerable_share: float = 0.25,
    max_reject: float = 0.02,
    show_progress: bool = False,
) -> tuple[float, dict[str, float]]:
    """The confidence threshold of "no answer", tuned like the span selector's.

    Each question is read twice: with its passages as ``ask`` gets them (answerable: right when
    the answer overlaps the gold span and is kept) and with every passage of its gold document
    removed (unanswerable: right when the reader abstains). The threshold with the best weighted
    accuracy among those rejecting at most ``max_reject`` of the answerable questions wins.
    """
    import numpy as np
    from tqdm.auto import tqdm

    from policyqa.qa import QAPipeline

    qa = QAPipeline(index, settings)
    qa.reranker.warm_up()
    conf_ans: list[float] = []
    right: list[bool] = []
    conf_un: list[float] = []
    for qid, text in tqdm(queries.items(), desc="calibrate", disable=not show_progress):
        gold = spans.get(qid, [])
        if not gold:
            continue
        hits = qa.reranked(text)
        ans = reader.select(text, hits)
        conf_ans.append(float(ans.confidence))
        right.append(
            any(
                ans.doc_id == d and ans.start is not None and ans.start < b and a < (ans.end or 0)
                for d, a, b in gold
            )
        )
        gold_docs = {d for d, _a, _b in gold}
        without = reader.select(text, [h for h in hits if h.doc_id not in gold_docs])
        conf_un.append(float(without.confidence))
    ca, ok, cu = np.asarray(conf_ans), np.asarray(right, dtype=bool), np.asarray(conf_un)
    best_t, best_acc = 0.0, -1.0
    for t in np.linspace(0.0, 0.99, 100):
        if float(np.mean(ca < t)) > max_reject:
            break
        acc = (1.0 - unanswerable_share) * float(np.mean(ok & (ca >= t))) + unanswerable_share * float(
            np.mean(cu < t)
        )
        if acc > best_acc + 1e-9:
            best_t, best_acc = float(t), acc
    stats = {
        "questions": float(len(ca)),
        "overlap_gold": round(float(np.mean(ok)), 4) if len(ok) else 0.0,
        "threshold_accuracy": round(best_acc, 4),
        "answerable_kept": round(float(np.mean(ca >= best_t)), 4) if len(ca) else 0.0,
        "unanswerable_abstained": round(float(np.mean(cu < best_t)), 4) if len(cu) else 0.0,
    }
    return best_t, stats


def load_adapter_weights(model: Any, path: Path) -> None:
    """Copy an adapter file's tensors into a LoRA-wrapped model of the same rank."""
    import torch
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (name[len("bert.") :] if name.startswith("bert.") else name).replace(".base.", ".")
        if key not in tensors:
            raise ValueError(f"adapter {path} has no {key} (trained with another rank or layout?)")
        with torch.no_grad():
            p.copy_(torch.from_numpy(tensors[key].astype("float32")))


def save_adapter_tensors_metadata(path: Path, info: dict[str, Any]) -> None:
    """Rewrite an adapter file's metadata, keeping its tensors."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"policyqa_reader": json.dumps(info, ensure_ascii=False)})


@dataclass(slots=True)
class _Feature:
    input_ids: list[int]
    token_type_ids: list[int]
    start: int
    end: int


def featurize(
    tokenizer: Any, examples: Sequence[ReaderExample], max_length: int, stride: int
) -> list[_Feature]:
    """Token windows with start/end labels (0 = ``[CLS]`` when the answer is not inside)."""
    feats: list[_Feature] = []
    for ex in examples:
        enc = tokenizer(
            ex.question,
            ex.context,
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        for w in range(len(enc["input_ids"])):
            seq = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            ctx = [i for i, s in enumerate(seq) if s == 1]
            s_tok = e_tok = 0
            if ex.start >= 0 and ctx:
                c0, c1 = offsets[ctx[0]][0], offsets[ctx[-1]][1]
                if c0 <= ex.start < c1:
                    s_tok = next(i for i in ctx if offsets[i][1] > ex.start)
                    end = min(ex.end, c1)
                    e_tok = max(i for i in ctx if offsets[i][0] < end)
                    e_tok = max(e_tok, s_tok)
            ids = list(enc["input_ids"][w])
            types = list(enc["token_type_ids"][w]) if "token_type_ids" in enc else [0] * len(ids)
            feats.append(_Feature(ids, types, s_tok, e_tok))
    return feats


def _batches(feats: Sequence[_Feature], batch_size: int, rng: random.Random) -> Iterator[list[_Feature]]:
    order = sorted(range(len(feats)), key=lambda i: (len(feats[i].input_ids), rng.random()))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    for c in chunks:
        yield [feats[i] for i in c]


def train(
    model: Any,
    feats: Sequence[_Feature],
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    pad_id: int,
    seed: int = 0,
) -> None:
    import torch

    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(feats) / batch_size)
    total = max(1, int(steps_per_epoch * epochs))
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm))
    )
    model.train()
    step = 0
    started = time.perf_counter()
    loss_avg = 0.0
    while step < total:
        for batch in _batches(feats, batch_size, rng):
            if step >= total:
                break
            n = max(len(f.input_ids) for f in batch)
            ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
            types = torch.zeros((len(batch), n), dtype=torch.long)
            mask = torch.zeros((len(batch), n), dtype=torch.long)
            for i, f in enumerate(batch):
                ids[i, : len(f.input_ids)] = torch.tensor(f.input_ids)
                types[i, : len(f.input_ids)] = torch.tensor(f.token_type_ids)
                mask[i, : len(f.input_ids)] = 1
            out = model(
                input_ids=ids,
                token_type_ids=types,
                attention_mask=mask,
                start_positions=torch.tensor([f.start for f in batch]),
                end_positions=torch.tensor([f.end for f in batch]),
            )
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            value = float(out.loss.detach())
            loss_avg = 0.98 * loss_avg + 0.02 * value if step > 1 else value
            if step % 25 == 0 or step == total:
                logger.info(
                    "step %d/%d loss %.3f (%.0f s)", step, total, loss_avg, time.perf_counter() - started
                )
    model.eval()


def _fold_arg(value: str) -> tuple[int, int]:
    """``K/N`` with ``0 <= K < N`` and ``N >= 2``."""
    try:
        k_text, n_text = value.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 0/2, got {value!r}") from None
    if n < 2 or not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"fold K/N needs N >= 2 and 0 <= K < N, got {value!r}")
    return k, n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.train.reader", description=__doc__)
    parser.add_argument("bench", type=Path, nargs="+", help="BEIR benchmarks with answers, SQuAD json files")
    parser.add_argument("--split", default="train", choices=("train", "test", "all"))
    parser.add_argument("--train-share", type=float, default=0.5)
    parser.add_argument("--squad-limit", type=int, default=None, help="at most this many SQuAD questions")
    parser.add_argument("--beir-repeat", type=int, default=1, help="repeat the BEIR examples this often")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32.0)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, default=None, help="continue from this adapter's weights")
    parser.add_argument(
        "--calibrate-only",
        action="store_true",
        help="no training: tune the no-answer threshold of the --init adapter and write it to --out",
    )
    parser.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip tuning the no-answer threshold on the training questions",
    )
    parser.add_argument(
        "--hold-out",
        type=_fold_arg,
        default=None,
        metavar="K/N",
        help="leave out the BEIR questions of cross-fitting fold K of N (for train_answer --fold-readers)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.hold_out is not None and args.calibrate and not args.calibrate_only:
        parser.error("--hold-out trains a cross-fitting reader: add --no-calibrate")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from policyqa.eval.datasets import load_benchmark
    from policyqa.eval.runner import prepare_index
    from policyqa.index.e5convert import ensure_default_model
    from policyqa.settings import get_settings

    settings = get_settings()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    examples: list[ReaderExample] = []
    sources: list[dict[str, Any]] = []
    for path in args.bench:
        if path.is_file() and path.suffix == ".json":
            got = collect_squad_examples(path, args.split, args.train_share)
            if args.squad_limit is not None:
                got = random.Random(args.seed).sample(got, min(args.squad_limit, len(got)))
            examples += got
            sources.append({"bench": path.parent.name, "format": "squad", "examples": len(got)})
            continue
        bench = load_benchmark(path)
        prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
        try:
            queries = {
                q: t
                for q, t in bench.queries.items()
                if in_split(q, args.split, args.train_share)
                and (args.hold_out is None or fold_of(q, args.hold_out[1]) != args.hold_out[0])
            }
            spans = {q: list(v) for q, v in bench.answer_spans.items()}
            got = collect_beir_examples(prepared.index, settings, queries, spans, show_progress=True)
        finally:
            prepared.index.close()
        examples += got * args.beir_repeat
        sources.append(
            {
                "bench": bench.name,
                "format": "beir",
                "examples": len(got),
                "positives": sum(e.start >= 0 for e in got),
                "repeat": args.beir_repeat,
                **({} if args.hold_out is None else {"held_out_fold": list(args.hold_out)}),
            }
        )
    logger.info("examples: %s", sources)
    base = ensure_default_model(settings.cache_dir)
    if args.calibrate_only:
        if args.init is None:
            parser.error("--calibrate-only needs --init ADAPTER")
        info = adapter_info(args.init)
        info["calibration_command"] = "python -m policyqa.train.reader " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        if args.out.resolve() != args.init.resolve():
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(args.init.read_bytes())
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        model = AutoModelForQuestionAnswering.from_pretrained(str(base), local_files_only=True)
        add_lora(model, args.rank, args.alpha)
        if args.init is not None:
            load_adapter_weights(model, args.init)
        feats = featurize(tokenizer, examples, args.max_length, args.stride)
        logger.info("%d windows, %d tokens", len(feats), sum(len(f.input_ids) for f in feats))
        started = time.perf_counter()
        train(
            model,
            feats,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            pad_id=int(tokenizer.pad_token_id),
            seed=args.seed,
        )
        info = {
            "format": 1,
            "base_model": "multilingual-e5-small",
            "rank": args.rank,
            "alpha": args.alpha,
            "targets": list(LORA_TARGETS),
            "trained_on": sources,
            "split": args.split,
            "train_share": args.train_share,
            "epochs": args.epochs,
            "init": None if args.init is None else adapter_info(args.init),
            "lr": args.lr,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "windows": len(feats),
            "train_seconds": round(time.perf_counter() - started, 1),
            "command": "python -m policyqa.train.reader " + " ".join(sys.argv[1:] if argv is None else argv),
        }
        save_adapter(model, args.out, info)
    if args.calibrate:
        import tempfile

        from policyqa.answer.lora import BUILTIN_MAX_ANSWER_TOKENS, merge_adapter
        from policyqa.answer.reader import TransformersReader

        cal_stats: dict[str, Any] = {}
        thresholds: list[float] = []
        with tempfile.TemporaryDirectory() as tmp:
            merged = merge_adapter(base, args.out, Path(tmp) / "reader")
            reader = TransformersReader(
                merged,
                passages=settings.answer_passages,
                min_confidence=0.0,
                max_answer_tokens=BUILTIN_MAX_ANSWER_TOKENS,
            )
            for path in args.bench:
                if path.is_file():
                    continue
                bench = load_benchmark(path)
                prepared = prepare_index(bench, settings, None, show_progress=settings.progress)
                try:
                    queries = {
                        q: t for q, t in bench.queries.items() if in_split(q, args.split, args.train_share)
                    }
                    spans = {q: list(v) for q, v in bench.answer_spans.items()}
                    t, stats = calibrate_threshold(
                        reader, prepared.index, settings, queries, spans, show_progress=True
                    )
                finally:
                    prepared.index.close()
                thresholds.append(t)
                cal_stats[bench.name] = {"threshold": t, **stats}
        if thresholds:
            info["min_confidence"] = round(min(thresholds), 4)
            info["calibration"] = cal_stats
            save_adapter_tensors_metadata(args.out, info)
    print(json.dumps(info, ensure_ascii=False))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
