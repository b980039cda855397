"""Load tests of the HTTP API: concurrent clients for a fixed time against one endpoint, or the
whole matrix the hardening issue asks for.

::

    python -m policyqa.eval.bench.load_test --index DIR --queries QUERIES.jsonl \\
        [--clients 16] [--duration 60] [--endpoint search|ask] [--mode hybrid] [--top-k 10] \\
        [--out eval/results/load-search]
    python -m policyqa.eval.bench.load_test --index DIR --queries QUERIES.jsonl --matrix \\
        [--clients-list 1,4,16] [--duration 30] [--out eval/results/load-matrix]

starts ``policyqa serve`` (``python -m policyqa.api.cli``) on a free loopback port over the
index, waits for ``/health`` to answer 200, warms up for a few seconds, then runs clients that
each send one request at a time (queries in turn from the file) until the time is up.

Every response is counted by what it is: answered (2xx), refused (503 with ``Retry-After``:
the server's back-pressure), or an error (any other status, a transport failure or a client
timeout). Answered requests/s and the latency p50/p95/p99 of the answered and of the refused are
reported. ``--matrix`` measures ``/search`` and ``/ask`` at each of ``--clients-list`` and then
the saturation scenario: ``/ask`` at the largest client count while one client searches and one
probes ``/health`` (their latency while answers are saturated). ``OUT.json`` and ``OUT.md`` hold
the figures with the command, the commit and the machine. ``--url`` targets a server that is
already running instead. Traffic goes to loopback only and the run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

__all__ = [
    "LoadResult",
    "main",
    "percentile",
    "process_cpu_s",
    "process_rss_mb",
    "run_load",
    "running_server",
    "server_process",
]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    index_dir: Path,
    *,
    api_key: str | None = None,
    log_path: Path | None = None,
    ready_timeout: float = 600.0,
    extra_env: dict[str, str] | None = None,
    ui: bool = False,
) -> Iterator[str]:
    """``policyqa serve`` over ``index_dir`` on a free loopback port (API only, or with the chat
    page with ``ui``); yields its URL."""
    port = _free_port()
    env = {
        **os.environ,
        "POLICYQA_BUILD_DEMO_IF_MISSING": "false",
        "POLICYQA_PROGRESS": "false",
        **(extra_env or {}),
    }
    if api_key:
        env["POLICYQA_API_KEY"] = api_key
    cmd = [sys.executable, "-m", "policyqa.api.cli", "--index", str(index_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port)] + ([] if ui else ["--no-ui"])
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} (log: {log_path})")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_timeout:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def server_process(port: int) -> int | None:
    """The pid of the ``policyqa serve`` (``policyqa.api.cli``) process listening on ``port``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"policyqa.api.cli" in cmd and str(port).encode() in cmd:
            return int(proc.name)
    return None


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None when unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(pid: int | None) -> float | None:
    """Resident memory of process ``pid`` in MiB (None when unknown)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _latency(values: Sequence[float]) -> dict[str, float | None]:
    lat = sorted(values)
    if not lat:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(lat, 50), 2),
        "p95": round(percentile(lat, 95), 2),
        "p99": round(percentile(lat, 99), 2),
        "max": round(lat[-1], 2),
    }


@dataclass
class LoadResult:
    """What a load run measured: per request its outcome and its latency in milliseconds.

    An outcome is ``"ok"`` (2xx), ``"refused"`` (503: the server's back-pressure) or the kind of
    error (``"HTTP 500"``, ``"ReadTimeout"`` …).
    """

    seconds: float
    outcomes: list[str] = field(default_factory=list, repr=False)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def errors(self) -> Counter[str]:
        return Counter(o for o in self.outcomes if o not in ("ok", "refused"))

    def _of(self, outcome: str) -> list[float]:
        return [ms for o, ms in zip(self.outcomes, self.latencies_ms, strict=True) if o == outcome]

    @property
    def rps(self) -> float:
        """Answered (2xx) requests per second."""
        return self.outcomes.count("ok") / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        errors = self.errors
        return {
            "requests": self.requests,
            "ok": self.outcomes.count("ok"),
            "refused_503": self.outcomes.count("refused"),
            "errors": sum(errors.values()),
            "errors_by_kind": dict(errors),
            "seconds": round(self.seconds, 3),
            "answered_per_s": round(self.rps, 2),
            "latency_ms": _latency(self._of("ok")),
            "refused_latency_ms": _latency(self._of("refused")),
        }


def _payload(endpoint: str, query: str, mode: str, top_k: int) -> dict[str, Any]:
    if endpoint == "ask":
        return {"question": query, "mode": mode, "top_k": top_k}
    return {"query": query, "mode": mode, "top_k": top_k}


async def run_load(
    url: str,
    queries: Sequence[str],
    *,
    clients: int,
    duration: float,
    endpoint: str = "search",
    mode: str = "hybrid",
    top_k: int = 10,
    max_requests: int = 1_000_000,
    timeout: float = 60.0,
    honour_retry_after: bool = False,
) -> LoadResult:
    """``clients`` concurrent clients, one request in flight each, for ``duration`` seconds.
    ``endpoint`` is ``search``, ``ask`` or ``health`` (a GET). A refused client asks again at
    once, or after the ``Retry-After`` seconds with ``honour_retry_after``."""
    if urlparse(url).hostname not in _LOOPBACK:
        raise ValueError(f"load tests only target loopback addresses, not {url}")
    if not queries:
        raise ValueError("no queries")
    result = LoadResult(seconds=0.0)
    sent = 0
    next_query = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        start = time.perf_counter()
        stop_at = start + duration

        async def client() -> None:
            nonlocal sent, next_query
            while time.perf_counter() < stop_at and sent < max_requests:
                query = queries[next_query % len(queries)]
                next_query += 1
                sent += 1
                t0 = time.perf_counter()
                try:
                    if endpoint == "health":
                        r = await http.get("/health")
                    else:
                        r = await http.post(f"/{endpoint}", json=_payload(endpoint, query, mode, top_k))
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                else:
                    if r.is_success:
                        outcome = "ok"
                    elif r.status_code == 503 and "retry-after" in r.headers:
                        outcome = "refused"
                    else:
                        outcome = f"HTTP {r.status_code}"
                result.outcomes.append(outcome)
                result.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
                if outcome == "refused" and honour_retry_after:
                    wait = float(r.headers["retry-after"])
                    await asyncio.sleep(min(wait, max(0.0, stop_at - time.perf_counter())))

        await asyncio.gather(*(client() for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


async def run_saturation(
    url: str,
    queries: Sequence[str],
    *,
    clients: int,
    duration: float,
    ask_top_k: int = 5,
    search_top_k: int = 10,
    honour_retry_after: bool = False,
) -> dict[str, LoadResult]:
    """``clients`` on ``/ask`` for ``duration`` seconds while, after a 3-second ramp, one client
    searches and one probes ``/health``: the latency of the other routes under saturated answers."""
    ask = asyncio.create_task(
        run_load(
            url,
            queries,
            clients=clients,
            duration=duration,
            endpoint="ask",
            top_k=ask_top_k,
            honour_retry_after=honour_retry_after,
        )
    )
    await asyncio.sleep(3.0)
    inner = max(1.0, duration - 6.0)
    search, health = await asyncio.gather(
        run_load(url, queries, clients=1, duration=inner, endpoint="search", top_k=search_top_k),
        run_load(url, queries, clients=1, duration=inner, endpoint="health"),
    )
    return {"ask": await ask, "search": search, "health": health}


def read_queries(path: Path) -> list[str]:
    """Queries from a jsonl file (field ``text``/``query``/``question``) or one per line."""
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            rec = json.loads(line)
            text = rec.get("text") or rec.get("query") or rec.get("question")
            if text:
                out.append(str(text))
        else:
            out.append(line)
    return out


def _median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run of median answered requests/s (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: float(r["answered_per_s"]))
    return ordered[(len(ordered) - 1) // 2]


def _fmt(value: Any) -> str:
    return "–" if value is None else str(value)


def _row(label: str, clients: int | str, s: dict[str, Any], runs: Sequence[float] = ()) -> str:
    lat, ref = s["latency_ms"], s["refused_latency_ms"]
    rate = f"{s['answered_per_s']}" + (f" ({' / '.join(str(r) for r in runs)})" if len(runs) > 1 else "")
    return (
        f"| {label} | {clients} | {s['requests']} | {rate} | {_fmt(lat['p50'])} | "
        f"{_fmt(lat['p95'])} | {_fmt(lat['p99'])} | {s['refused_503']} | {_fmt(ref['p99'])} | {s['errors']} | "
        f"{_fmt(s.get('client_cpu_s'))} | {_fmt(s.get('server_cpu_s'))} |"
    )


_HEADER = [
    "| endpoint | clients | requests | answered/s | p50 ms | p95 ms | p99 ms | refused (503) | refused p99 ms "
    "| errors | client CPU s | server CPU s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def _markdown(report: dict[str, Any]) -> str:
    srv = report.get("server_stats") or {}
    machine = report["machine"]
    lines = [
        f"# Load test: {report['title']}",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Code: {report['code'].get('commit') or '?'}{' (with local changes)' if report['code'].get('modified') else ''}"
        + (f"; server: {report['label']}" if report.get("label") else ""),
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}; client and "
        "server on the same machine, over loopback (the client's own work competes for the CPUs). "
        f"Load average (1 min) before/after: {report['load_average']['before'][0]:.1f}/"
        f"{report['load_average']['after'][0]:.1f}.",
        "",
        f"Index: {srv.get('documents')} documents, {srv.get('chunks')} chunks, model "
        f"{(srv.get('model') or {}).get('name')} ({srv.get('encoder_backend')}), {srv.get('index_version')}"
        + (f"; answer queue {srv['answer_queue']}" if srv.get("answer_queue") else "")
        + ".",
        "",
        "Latencies are of the answered requests; refused ones (503 with Retry-After) are counted apart. "
        + (
            "Refused clients wait the Retry-After seconds before asking again."
            if report.get("honour_retry_after")
            else "Refused clients ask again at once."
        )
        + (
            f" Each cell was measured {report['repeat']} times in rounds: the row is the run of median "
            "answered/s (every run's answered/s in brackets)."
            if report.get("repeat", 1) > 1
            else ""
        )
        + " CPU seconds are the load client's (this process) and the server's during the cell.",
        "",
        *_HEADER,
    ]
    for cell in report["cells"]:
        lines.append(
            _row(f"/{cell['endpoint']}", cell["clients"], cell["result"], cell.get("runs_answered_per_s", ()))
        )
    sat = report.get("saturation")
    if sat:
        lines += [
            "",
            f"Saturation: {sat['clients']} clients on /ask for {sat['duration_s']} s; meanwhile one client "
            "searches and one probes /health.",
            "",
            *_HEADER,
            _row(
                "/ask",
                sat["clients"],
                {
                    **sat["ask"],
                    "client_cpu_s": sat.get("client_cpu_s"),
                    "server_cpu_s": sat.get("server_cpu_s"),
                },
            ),
            _row("/search (during)", 1, sat["search"]),
            _row("/health (during)", 1, sat["health"]),
        ]
    errors = {
        f"/{c['endpoint']} × {c['clients']}": c["result"]["errors_by_kind"]
        for c in report["cells"]
        if c["result"]["errors_by_kind"]
    }
    if errors:
        lines += ["", "Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items())]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.eval.bench.load_test", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path, help="index directory to serve (a server is started)")
    where.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:8000")
    parser.add_argument("--queries", type=Path, required=True, help="queries (jsonl with 'text', or lines)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load per cell")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of unmeasured load before each cell"
    )
    parser.add_argument("--endpoint", choices=("search", "ask"), default="search")
    parser.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid")
    parser.add_argument("--top-k", type=int, default=None, help="top_k (default: 10 for search, 5 for ask)")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument(
        "--matrix", action="store_true", help="/search and /ask at --clients-list, then saturation"
    )
    parser.add_argument("--clients-list", default="1,4,16", help="client counts of --matrix")
    parser.add_argument("--endpoints", default="search,ask", help="endpoints of --matrix (search, ask)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure every cell this many times, in rounds; report the median",
    )
    parser.add_argument("--label", default=None, help="what the server is (recorded with the results)")
    parser.add_argument(
        "--honour-retry-after",
        action="store_true",
        help="a refused client waits the Retry-After seconds before its next request (default: at once)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    counts = (
        sorted({int(c) for c in args.clients_list.split(",") if c.strip()}) if args.matrix else [args.clients]
    )
    if not all(1 <= c <= 256 for c in counts) or not 0 < args.duration <= 3600:
        parser.error("clients must be 1–256 and --duration 0–3600 seconds")
    queries = read_queries(args.queries)
    endpoints = (
        tuple(e.strip() for e in args.endpoints.split(",") if e.strip()) if args.matrix else (args.endpoint,)
    )
    if not set(endpoints) <= {"search", "ask"}:
        parser.error("--endpoints takes search and/or ask")

    def top_k(endpoint: str) -> int:
        return args.top_k if args.top_k is not None else (5 if endpoint == "ask" else 10)

    def measure(url: str) -> dict[str, Any]:
        stats = httpx.get(f"{url}/stats", timeout=10).json()
        pid = server_process(int(urlparse(url).port or 80))
        if "ask" in endpoints:  # the first answer loads the answer models: not part of any cell
            httpx.post(f"{url}/ask", json={"question": queries[0]}, timeout=600)
        load_before = os.getloadavg()

        def timed(run: Any) -> tuple[Any, dict[str, float | None]]:
            """Run a load and the CPU seconds the client and the server spent meanwhile."""
            c0, s0 = time.process_time(), process_cpu_s(pid)
            out = asyncio.run(run)
            c1, s1 = time.process_time(), process_cpu_s(pid)
            server = round(s1 - s0, 2) if s0 is not None and s1 is not None else None
            return out, {"client_cpu_s": round(c1 - c0, 2), "server_cpu_s": server}

        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for _ in range(args.repeat):
            for endpoint in endpoints:
                for clients in counts:
                    common = {
                        "clients": clients,
                        "endpoint": endpoint,
                        "mode": args.mode,
                        "top_k": top_k(endpoint),
                        "honour_retry_after": args.honour_retry_after,
                    }
                    if args.warmup > 0:
                        asyncio.run(run_load(url, queries, duration=args.warmup, **common))
                    result, cpu = timed(
                        run_load(
                            url, queries, duration=args.duration, max_requests=args.max_requests, **common
                        )
                    )
                    summary = {**result.summary(), **cpu}
                    runs.setdefault((endpoint, clients), []).append(summary)
                    print(_row(f"/{endpoint}", clients, summary), file=sys.stderr, flush=True)
        cells = [
            {
                "endpoint": endpoint,
                "clients": clients,
                "result": _median_run(done),
                "runs_answered_per_s": [r["answered_per_s"] for r in done],
            }
            for (endpoint, clients), done in runs.items()
        ]
        saturation = None
        if args.matrix:
            most = counts[-1]
            sat, cpu = timed(
                run_saturation(
                    url,
                    queries,
                    clients=most,
                    duration=args.duration,
                    honour_retry_after=args.honour_retry_after,
                )
            )
            saturation = {
                "clients": most,
                "duration_s": args.duration,
                **{k: v.summary() for k, v in sat.items()},
                **cpu,
            }
        return {
            "server_stats": httpx.get(f"{url}/stats", timeout=30).json() if stats else stats,
            "cells": cells,
            "saturation": saturation,
            "load_average": {"before": load_before, "after": os.getloadavg()},
        }

    if args.url:
        measured = measure(args.url)
    else:
        log = Path(tempfile.gettempdir()) / "policyqa-load-test-server.log"
        print(f"server log: {log}", file=sys.stderr)
        with running_server(args.index, api_key=secrets.token_hex(16), log_path=log) as url:
            measured = measure(url)
    from policyqa.eval.report import module_command, write_result_pair
    from policyqa.eval.runner import git_state, machine_facts

    report = {
        "title": "/search and /ask matrix" if args.matrix else f"POST /{args.endpoint}",
        "command": module_command("policyqa.eval.bench.load_test", argv),
        "code": git_state(),
        "label": args.label,
        "honour_retry_after": args.honour_retry_after,
        "repeat": args.repeat,
        "mode": args.mode,
        "duration_s": args.duration,
        "queries": len(queries),
        "machine": {**machine_facts(), "platform": platform.platform()},
        **measured,
    }
    text = _markdown(report)
    print(text)
    write_result_pair(args.out, report, text)
    return 0 if all(c["result"]["errors"] == 0 for c in measured["cells"]) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
