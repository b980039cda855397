"""Reports of an evaluation: the console table, the Markdown report and the plot.

The Markdown report (:func:`markdown_report`) holds the command, the tables, the settings, the
index statistics and the ids of the worst queries: no benchmark text, so it may be committed.
With ``failures=True`` it also shows, for the 20 worst queries, the question, the gold passage
and the passages returned; that version quotes the benchmark and stays local.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from policyqa.eval.datasets import Benchmark
from policyqa.eval.metrics import ANSWER_METRICS, RETRIEVAL_METRICS, RIGHT_F1
from policyqa.eval.runner import EvalResult, HitBrief

__all__ = [
    "format_table",
    "markdown_report",
    "md_table",
    "module_command",
    "plain_table",
    "plot_results",
    "write_plot",
    "write_probe_result",
    "write_report",
    "write_result_pair",
]

_HEADERS = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@1": "R@1",
    "recall@5": "R@5",
    "recall@20": "R@20",
    "recall@100": "R@100",
    "exact_match": "EM",
    "f1": "F1",
    "contains": "contains",
    "contains_span": "contains (span)",
    "no_answer_accuracy": "no-answer acc.",
}
WORST_N = 20
_CONTEXT_CHARS = 120


def _retrieval_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    header = ["system", *(_HEADERS[m] for m in RETRIEVAL_METRICS), "p50 ms", "p95 ms"]
    rows: list[list[str]] = []
    for system in result.retrieval_systems():
        summary = system.summary()
        lat = summary["latency_ms"]
        rows.append(
            [
                system.name,
                *(f"{system.metrics[m]:.4f}" for m in RETRIEVAL_METRICS),
                f"{lat['p50']:.1f}",
                f"{lat['p95']:.1f}",
            ]
        )
    return header, rows


def _answer_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    header = ["system", *(_HEADERS[m] for m in ANSWER_METRICS), "p50 ms", "p95 ms"]
    rows: list[list[str]] = []
    for system in result.systems.values():
        if system.kind != "answer" or not system.metrics:
            continue
        lat = system.summary()["latency_ms"]
        rows.append(
            [
                system.name,
                *(f"{system.metrics[m]:.4f}" for m in ANSWER_METRICS),
                f"{lat['p50']:.1f}",
                f"{lat['p95']:.1f}",
            ]
        )
    return header, rows


def _calibration_rows(result: EvalResult) -> tuple[list[str], list[list[str]]]:
    header = ["system", "confidence", "questions", "share", "right", "F1", "contains"]
    rows: list[list[str]] = []
    for system in result.systems.values():
        for band, row in (system.calibration or {}).items():
            if not row["questions"]:
                continue
            rows.append(
                [
                    system.name,
                    band,
                    str(int(row["questions"])),
                    f"{row['share']:.3f}",
                    f"{row['right']:.3f}",
                    f"{row['f1']:.4f}",
                    f"{row['contains']:.4f}",
                ]
            )
    return header, rows


def plain_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_table(result: EvalResult) -> str:
    """The console summary: one line of context, then the retrieval (and answer) table."""
    head = (
        f"{result.benchmark.name}: {len(result.benchmark.queries)} queries, {len(result.benchmark.documents)} "
        f"documents, level {result.level}"
    )
    if result.index is not None:
        head += f", {result.index.chunks} chunks ({'cached index' if result.index.reused else 'indexed'})"
    parts = [head]
    header, rows = _retrieval_rows(result)
    if rows:
        parts.append(plain_table(header, rows))
    header, rows = _answer_rows(result)
    if rows:
        parts.append(plain_table(header, rows))
    header, rows = _calibration_rows(result)
    if rows:
        parts.append(plain_table(header, rows))
    errors = {name: len(s.errors) for name, s in result.systems.items() if s.errors}
    if errors:
        parts.append("queries that raised (scored 0): " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    if result.wall_s:
        parts.append(f"wall time {result.wall_s:.1f} s")
    return "\n\n".join(parts)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _quote(text: str) -> str:
    return "> " + _md_escape(text.strip()) if text.strip() else "> (empty)"


def _gold_passage(bench: Benchmark, qid: str) -> str:
    """The gold answer in its context, or the head of the gold document."""
    docs = bench.doc_by_id()
    spans = bench.answer_spans.get(qid) or []
    if spans:
        doc_id, start, end = spans[0]
        text = docs[doc_id].text
        lo, hi = max(0, start - _CONTEXT_CHARS), min(len(text), end + _CONTEXT_CHARS)
        return f"`{doc_id}` [{start}:{end}] …{text[lo:start]}**{text[start:end]}**{text[end:hi]}…"
    gold = [d for d, g in bench.qrels.get(qid, {}).items() if g > 0]
    if not gold:
        return "(no gold passage)"
    doc = docs[gold[0]]
    return f"`{doc.id}` {doc.title} {doc.text[: 2 * _CONTEXT_CHARS]}…"


def _hit_line(hit: HitBrief) -> str:
    return f"{hit.rank}. `{hit.doc_id}` [{hit.start}:{hit.end}] score {hit.score:.4f}: {_md_escape(hit.text[:300])}"


def _fmt_rank(value: float | None) -> str:
    return "—" if value is None else str(int(value))


def markdown_report(result: EvalResult, *, failures: bool = False) -> str:
    """The Markdown report; ``failures=True`` adds the worst queries with their passages (local only)."""
    bench = result.benchmark
    out: list[str] = [f"# policyqa eval: {bench.name}", ""]
    if result.command:
        out += ["```", result.command, "```", ""]
    facts = [
        f"- benchmark: `{bench.name}` ({bench.format}), {len(bench.queries)} queries, {len(bench.documents)} documents",
        f"- level: **{result.level}**, {result.depth} chunks asked of each system per query",
        f"- run: {result.created}, wall time {result.wall_s:.1f} s",
    ]
    if result.code.get("commit"):
        modified = result.code.get("modified") or []
        dirty = f", with uncommitted changes in {', '.join(modified)}" if modified else ""
        facts.append(f"- code: commit `{str(result.code['commit'])[:12]}`{dirty}")
    machine = result.machine
    versions = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    facts.append(f"- machine: {machine['cpus']} CPUs, Python {machine['python']}; {versions}")
    if result.index is not None:
        state = "reused from cache" if result.index.reused else "built for this run"
        facts.append(f"- index: {result.index.chunks} chunks, build {result.index.build_s:.1f} s ({state})")
    out += [*facts, ""]

    header, rows = _retrieval_rows(result)
    if rows:
        out += ["## Retrieval", "", md_table(header, rows), ""]
        out.append(
            "Metrics by ir_measures (pytrec_eval); a query a system returned nothing for scores 0. "
            + (
                "Doc level: a document ranks at its best chunk."
                if result.level == "doc"
                else "Chunk level: a chunk is relevant when it contains a gold answer span; a query is credited once."
            )
            + " Latency: per query, wall clock around the one search call, after one warm-up query."
        )
        out.append("")
    header, rows = _answer_rows(result)
    if rows:
        out += ["## Answers", "", md_table(header, rows), ""]
    header, rows = _calibration_rows(result)
    if rows:
        out += [
            "### Calibration",
            "",
            "How often the answers shown with each confidence are right: an answer when its "
            f"character F1 reaches {RIGHT_F1}, no answer when the question has none.",
            "",
            md_table(header, rows),
            "",
        ]
    errors = {name: len(s.errors) for name, s in result.systems.items() if s.errors}
    if errors:
        out += [
            "Queries that raised an error (scored 0): " + ", ".join(f"{k}: {v}" for k, v in errors.items()),
            "",
        ]

    settings = result.to_json()["settings"]
    out += ["## Settings", "", "| setting | value |", "|---|---|"]
    out += [f"| {k} | `{v}` |" for k, v in settings.items()]
    out.append("")
    if bench.notes:
        out += ["## Notes on the data", "", *(f"- {n}" for n in bench.notes), ""]

    worst = result.worst_queries(WORST_N)
    primary = result.primary()
    if worst and primary is not None:
        names = [s.name for s in result.retrieval_systems()]
        out += [
            f"## {len(worst)} worst queries ({primary.name}, by nDCG@10)",
            "",
            "Rank of the first relevant item per system (— = not in the returned list).",
            "",
            "| query id | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for qid in worst:
            ranks = [_fmt_rank(result.systems[n].per_query.get(qid, {}).get("gold_rank")) for n in names]
            out.append(f"| `{qid}` | " + " | ".join(ranks) + " |")
        out.append("")
        if failures:
            out += ["## Failures (quotes the benchmark: keep local, do not commit)", ""]
            for qid in worst:
                out += [
                    f"### `{qid}`",
                    "",
                    _quote(bench.queries[qid]),
                    "",
                    f"- gold: {_gold_passage(bench, qid)}",
                ]
                refs = bench.answers.get(qid)
                if refs:
                    out.append("- references: " + " / ".join(_md_escape(r) for r in refs))
                elif qid in bench.no_answer:
                    out.append("- references: (no answer)")
                for name in names:
                    hits = result.systems[name].top_hits.get(qid, [])
                    out.append(f"- {name}:" + (" (nothing returned)" if not hits else ""))
                    out += [f"    {_hit_line(h)}" for h in hits]
                for system in result.systems.values():
                    if system.kind == "answer" and qid in system.answers:
                        ans = system.answers[qid]
                        shown = "(no answer)" if ans.no_answer else _md_escape(ans.text)
                        out.append(f"- {system.name}: {shown}")
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_report(result: EvalResult, path: Path, *, failures: bool = False) -> None:
    """Write :func:`markdown_report` to ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown_report(result, failures=failures), encoding="utf-8")


def plot_results(result: EvalResult) -> Any:
    """A matplotlib figure: recall@k (k = 1…100) per system, and the latency distribution per system."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    systems = list(result.systems.values())
    retrieval = result.retrieval_systems()
    fig, (ax_recall, ax_latency) = plt.subplots(1, 2, figsize=(12, 4.8))
    for system in retrieval:
        ks = list(range(1, len(system.recall_curve) + 1))
        ax_recall.plot(ks, system.recall_curve, label=system.name, linewidth=1.8)
    ax_recall.set_xscale("log")
    ax_recall.set_xlim(1, 100)
    lowest = min((min(s.recall_curve) for s in retrieval if s.recall_curve), default=0.0)
    ax_recall.set_ylim(max(0.0, math.floor((lowest - 0.05) * 10) / 10), 1.0)
    ax_recall.set_xticks([1, 2, 5, 10, 20, 50, 100])
    ax_recall.set_xticklabels(["1", "2", "5", "10", "20", "50", "100"])
    ax_recall.set_xlabel("k")
    ax_recall.set_ylabel(f"recall@k ({result.level} level)")
    ax_recall.set_title(f"{result.benchmark.name}: recall@k")
    ax_recall.grid(True, which="both", alpha=0.3)
    if retrieval:
        ax_recall.legend(loc="lower right")

    data = [s.latencies_ms or [0.0] for s in systems]
    if data:
        ax_latency.boxplot(data, tick_labels=[s.name for s in systems], showfliers=True, whis=(5, 95))
    ax_latency.set_yscale("log")
    ax_latency.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax_latency.set_ylabel("latency per query (ms, log)")
    ax_latency.set_title("latency (whiskers p5–p95)")
    ax_latency.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def write_plot(result: EvalResult, path: Path) -> None:
    """Save :func:`plot_results` as a PNG at ``path`` (parents created)."""
    fig = plot_results(result)
    from matplotlib import pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def module_command(module: str, argv: Sequence[str] | None) -> str:
    """The shell command that ran ``python -m module`` with ``argv`` (``sys.argv[1:]`` when
    ``None``), as recorded in a result's ``command`` field."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


def write_result_pair(out: Path | None, report: Mapping[str, Any], text: str) -> None:
    """Write a tool's ``report`` to ``OUT.json`` and its Markdown ``text`` to ``OUT.md``
    (nothing when ``out`` is None), creating the folder."""
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    out.with_suffix(".md").write_text(text, encoding="utf-8")


def write_probe_result(
    result: Mapping[str, Any],
    json_out: Path | None,
    report: Path | None,
    render: Callable[[Mapping[str, Any]], str],
) -> None:
    """Print a probe's ``result`` as JSON, and write it to ``json_out`` and its Markdown
    (``render(result)``) to ``report`` where given, creating their folders."""
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n", encoding="utf-8")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render(result), encoding="utf-8")
