"""Load test of the HTTP API: N concurrent clients for a fixed time against one endpoint.

::

    python -m policyqa.eval.load_test --index DIR --queries QUERIES.jsonl \\
        [--clients 16] [--duration 60] [--endpoint search|ask] [--mode hybrid] [--top-k 10] \\
        [--out eval/results/load-search]

starts ``policyqa serve`` (``python -m policyqa.api.cli``) on a free loopback port over the
index, waits for ``/health`` to answer 200, warms up for a few seconds, then runs ``--clients``
asyncio clients that each send one request at a time (queries in turn from the file) until
``--duration`` seconds have passed. It reports requests/s, latency p50/p95/p99/max and every
error (a non-2xx status or a transport failure), and writes ``OUT.json`` and ``OUT.md``.
``--url`` targets a server that is already running instead. Traffic goes to loopback only and
the run is bounded in time and in requests (``--max-requests``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shlex
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

__all__ = ["LoadResult", "main", "percentile", "run_load", "running_server"]

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
) -> Iterator[str]:
    """``policyqa serve`` (API only) over ``index_dir`` on a free loopback port; yields its URL."""
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
    cmd += ["--port", str(port), "--no-ui"]
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


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class LoadResult:
    """What a load run measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    errors: Counter[str]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "ok": self.requests - sum(self.errors.values()),
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.rps, 2),
            "latency_ms": {
                "p50": round(percentile(lat, 50), 2),
                "p95": round(percentile(lat, 95), 2),
                "p99": round(percentile(lat, 99), 2),
                "max": round(lat[-1], 2) if lat else None,
                "mean": round(sum(lat) / len(lat), 2) if lat else None,
            },
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
    timeout: float = 30.0,
) -> LoadResult:
    """``clients`` concurrent clients, one request in flight each, for ``duration`` seconds."""
    if urlparse(url).hostname not in _LOOPBACK:
        raise ValueError(f"load tests only target loopback addresses, not {url}")
    if not queries:
        raise ValueError("no queries")
    latencies: list[float] = []
    errors: Counter[str] = Counter()
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
                    r = await http.post(f"/{endpoint}", json=_payload(endpoint, query, mode, top_k))
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                else:
                    if not r.is_success:
                        errors[f"HTTP {r.status_code}"] += 1
                latencies.append((time.perf_counter() - t0) * 1000.0)

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return LoadResult(sent, elapsed, latencies, errors)


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


def _markdown(report: dict[str, Any]) -> str:
    s = report["result"]
    lat = s["latency_ms"]
    srv = report.get("server_stats") or {}
    lines = [
        f"# Load test: POST /{report['endpoint']} ({report['mode']}, top_k={report['top_k']})",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {report['machine']['cpus']} CPUs, {report['machine']['platform']}, Python "
        f"{report['machine']['python']}; client and server on the same machine, over loopback. "
        f"Load average (1 min) before/after: {report['load_average']['before'][0]:.1f}/"
        f"{report['load_average']['after'][0]:.1f} (other work on the machine competes for the CPUs).",
        "",
        f"Index: {srv.get('documents')} documents, {srv.get('chunks')} chunks, model "
        f"{(srv.get('model') or {}).get('name')} ({srv.get('encoder_backend')}), {srv.get('index_version')}.",
        "",
        "| clients | seconds | requests | requests/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {report['clients']} | {s['seconds']} | {s['requests']} | {s['requests_per_s']} | {lat['p50']} "
        f"| {lat['p95']} | {lat['p99']} | {lat['max']} | {s['errors']} |",
        "",
    ]
    if s["errors_by_kind"]:
        lines += ["Errors: " + ", ".join(f"{k}: {v}" for k, v in s["errors_by_kind"].items()), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.eval.load_test", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path, help="index directory to serve (a server is started)")
    where.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:8000")
    parser.add_argument("--queries", type=Path, required=True, help="queries (jsonl with 'text', or lines)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured load first")
    parser.add_argument("--endpoint", choices=("search", "ask"), default="search")
    parser.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.duration <= 3600:
        parser.error("--clients must be 1–256 and --duration 0–3600 seconds")
    queries = read_queries(args.queries)

    def measure(url: str) -> dict[str, Any]:
        stats = httpx.get(f"{url}/stats", timeout=10).json()
        load_before = os.getloadavg()
        common = {"clients": args.clients, "endpoint": args.endpoint, "mode": args.mode, "top_k": args.top_k}
        if args.warmup > 0:
            asyncio.run(run_load(url, queries, duration=args.warmup, **common))
        result = asyncio.run(
            run_load(url, queries, duration=args.duration, max_requests=args.max_requests, **common)
        )
        return {
            "server_stats": stats,
            "result": result.summary(),
            "load_average": {"before": load_before, "after": os.getloadavg()},
        }

    if args.url:
        measured = measure(args.url)
    else:
        log = Path(tempfile.gettempdir()) / "policyqa-load-test-server.log"
        print(f"server log: {log}", file=sys.stderr)
        with running_server(args.index, api_key=secrets.token_hex(16), log_path=log) as url:
            measured = measure(url)
    report = {
        "command": "python -m policyqa.eval.load_test " + shlex.join(list(argv or sys.argv[1:])),
        "endpoint": args.endpoint,
        "mode": args.mode,
        "top_k": args.top_k,
        "clients": args.clients,
        "duration_s": args.duration,
        "queries": len(queries),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        **measured,
    }
    text = _markdown(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(text)
    return 0 if report["result"]["errors"] == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
