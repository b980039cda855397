"""Replay the hardening issue's findings against a live server and record what it answers now.

::

    python -m policyqa.eval.bench.abuse --index DIR [--out eval/results/abuse]

copies the index to a temporary directory (the writes change only the copy), starts
``policyqa serve`` with the chat page on a free loopback port with a random API key, and sends
each request that reproduced a finding: an anonymous upload to Gradio's upload route, questions
and follow-ups past the reader's window, a 677 KB ``.docx`` that inflates to 190 MB (timed, with
the server's RSS before and after), the sources of an index built from a folder, sixteen
simultaneous questions, and the malformed requests (NUL, a body that is not JSON, deep nesting,
an upload of an unsupported type, ids no URL can reach). Each case is printed and written to
``OUT.md``/``OUT.json`` with the request, the status and the body (cut), and whether it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from policyqa.eval.bench.load_test import process_rss_mb, running_server, server_process

__all__ = ["Case", "main", "run_cases", "write_docx_bomb"]

_ABS = re.compile(r"(?<![\w.:/])/(?:tmp|root|home|var|srv|opt|usr|etc|work)/")


@dataclass
class Case:
    """One finding replayed: the request, what came back, and whether it holds now."""

    finding: str
    request: str
    status: int | str
    body: str
    holds: bool
    note: str = ""


def _cut(text: str, n: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


def write_docx_bomb(path: Path, inflated_mb: int) -> Path:
    """A real .docx (python-docx reads small ones) whose document.xml inflates to about
    ``inflated_mb`` MB of repeated paragraphs; written as a stream, never whole in memory."""
    import io
    import zipfile

    from docx import Document

    seed = io.BytesIO()
    Document().save(seed)
    seed.seek(0)
    para = "<w:p><w:r><w:t>稳岗返还政策继续实施，补贴标准为百分之五十。</w:t></w:r></w:p>"
    with zipfile.ZipFile(seed) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, src.read(item.filename))
        with out.open("word/document.xml", "w", force_zip64=True) as stream:
            stream.write(
                b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats'
                b'.org/wordprocessingml/2006/main"><w:body>'
            )
            block = (para * 2000).encode()
            for _ in range(inflated_mb * 1024 * 1024 // len(block) + 1):
                stream.write(block)
            stream.write(b"</w:body></w:document>")
    return path


def run_cases(url: str, key: str, port: int, work: Path, question: str) -> list[Case]:
    """Send every finding's request to the server at ``url``; the cases in order."""
    auth = {"Authorization": f"Bearer {key}"}
    cases: list[Case] = []
    http = httpx.Client(base_url=url, timeout=120)

    def add(finding: str, request: str, r: httpx.Response, holds: bool, note: str = "") -> None:
        cases.append(Case(finding, request, r.status_code, _cut(r.text), holds, note))
        print(f"[{'ok' if holds else 'FAILS'}] {finding}: {request} -> {r.status_code} {_cut(r.text, 120)}")

    # 1. anonymous upload through the chat page's Gradio app
    gradio_tmp = Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio"))
    before = sum(1 for p in gradio_tmp.rglob("*") if p.is_file()) if gradio_tmp.is_dir() else 0
    r = http.post("/ui/gradio_api/upload", files={"files": ("x.bin", os.urandom(1_000_000))})
    after = sum(1 for p in gradio_tmp.rglob("*") if p.is_file()) if gradio_tmp.is_dir() else 0
    add(
        "1 anonymous upload",
        "POST /ui/gradio_api/upload -F files=@x.bin (1 MB, no key)",
        r,
        r.status_code == 404 and after == before,
        f"files in Gradio's temp dir: {before} before, {after} after",
    )
    r = http.get("/ui/gradio_api/file=/etc/hostname")
    add("1 file serving", "GET /ui/gradio_api/file=/etc/hostname", r, r.status_code == 404)
    r = http.get("/ui/")
    add("1 the page still loads", "GET /ui/", r, r.status_code == 200)

    # 2. questions past the reader's window
    natural = ("青岛市南区一季度计划落地多少个重点项目，以及市商务局将打造什么招商品牌，" * 20)[:499]
    for label, body in (
        ("499 characters of natural text", {"question": natural}),
        ("380 of one character", {"question": "啊" * 380}),
        ("a follow-up after a 2,000-character question", {"question": "那呢？", "history": ["青岛" * 1000]}),
    ):
        r = http.post("/ask", json=body)
        add("2 long question", f"POST /ask ({label})", r, r.status_code == 200)

    # 3. a .docx decompression bomb (authenticated)
    bomb = write_docx_bomb(work / "bomb.docx", 190)
    pid = server_process(port)
    rss0 = process_rss_mb(pid)
    t0 = time.perf_counter()
    r = http.post("/documents", files={"files": ("bomb.docx", bomb.read_bytes())}, headers=auth)
    took = time.perf_counter() - t0
    rss1 = process_rss_mb(pid)
    grew = (rss1 - rss0) if rss0 is not None and rss1 is not None else None
    add(
        "3 decompression bomb",
        f"POST /documents -F files=@bomb.docx ({bomb.stat().st_size // 1024} KB, inflates to 190 MB)",
        r,
        r.status_code == 422 and took < 5 and (grew is None or grew < 200),
        f"answered in {took:.2f} s; server RSS {rss0:.0f} → {rss1:.0f} MB"
        if grew is not None
        else f"{took:.2f} s",
    )
    r = http.get("/health")
    add("3 the server goes on", "GET /health (after the bomb)", r, r.status_code == 200)

    # 4. server paths
    leaks = []
    reads: list[tuple[str, str, dict[str, str] | None]] = [
        ("POST", "/search", {"query": question}),
        ("POST", "/ask", {"question": question}),
        ("GET", "/documents", None),
        ("GET", "/stats", None),
        ("GET", "/health", None),
    ]
    for method, path, payload in reads:
        r = http.request(method, path, json=payload)
        if _ABS.search(r.text):
            leaks.append(path)
    add(
        "4 server paths",
        "POST /search, POST /ask, GET /documents, /stats, /health",
        r,
        not leaks,
        f"responses naming a server path: {leaks or 'none'}",
    )

    # 5. back-pressure: 16 questions at once, with one search and /health meanwhile
    async def crowd() -> tuple[list[tuple[int, float]], float, float]:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:

            async def one(i: int) -> tuple[int, float]:
                t = time.perf_counter()
                resp = await client.post("/ask", json={"question": f"{question}（{i}）"})
                return resp.status_code, (time.perf_counter() - t) * 1000

            asks = asyncio.gather(*(one(i) for i in range(16)))
            await asyncio.sleep(0.5)
            t = time.perf_counter()
            await client.post("/search", json={"query": question})
            search_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            await client.get("/health")
            health_ms = (time.perf_counter() - t) * 1000
            return list(await asks), search_ms, health_ms

    results, search_ms, health_ms = asyncio.run(crowd())
    answered = [ms for st, ms in results if st == 200]
    refused = [ms for st, ms in results if st == 503]
    other = [st for st, _ in results if st not in (200, 503)]
    cases.append(
        Case(
            "5 back-pressure",
            "16 × POST /ask at once; POST /search and GET /health meanwhile",
            f"{len(answered)}×200, {len(refused)}×503, {len(other)} other",
            f"answered in ≤ {max(answered, default=0):.0f} ms; refused in ≤ {max(refused, default=0):.0f} ms; "
            f"search {search_ms:.0f} ms, health {health_ms:.0f} ms during the crowd",
            not other and max(refused, default=0) < 1000 and search_ms < 1000,
        )
    )
    print(f"[{'ok' if cases[-1].holds else 'FAILS'}] 5 back-pressure: {cases[-1].status}; {cases[-1].body}")

    # 6. malformed requests
    r = http.post("/search", json={"query": "青岛\x00海关"})
    add(
        "6 NUL in a query",
        'POST /search {"query": "青岛\\u0000海关"}',
        r,
        r.status_code == 422 and "pattern" not in r.json()["detail"],
    )
    r = http.post("/search", content='{"query": "青岛"}', headers={"Content-Type": "text/plain"})
    add("6 not JSON", "POST /search with Content-Type: text/plain", r, r.status_code == 415)
    deep = '{"query": "青岛", "filters": ' + "[" * 50_000 + "]" * 50_000 + "}"
    r = http.post("/search", content=deep, headers={"Content-Type": "application/json"})
    add(
        "6 deep nesting",
        "POST /search with 50,000 nested arrays",
        r,
        r.status_code == 400 and "nested" in r.text,
    )
    r = http.post("/documents", files={"files": ("a.exe", b"MZ\x90\x00\x03\x00\x00\x00")}, headers=auth)
    add("6 unsupported upload", "POST /documents -F files=@a.exe", r, r.status_code == 415)
    r = http.post("/documents", json={"documents": [{"id": "../x", "text": "正文。"}]}, headers=auth)
    add("6 unreachable id", 'POST /documents {"id": "../x"}', r, r.status_code == 422)
    doc_id = "部门规章/总局/办法(2021)"
    r = http.post(
        "/documents", json={"documents": [{"id": doc_id, "text": "办法\n第一条 为了规范。"}]}, headers=auth
    )
    r = http.get(f"/documents/{doc_id}")
    add("6 path-like id", f"GET /documents/{doc_id} (after adding it)", r, r.status_code == 200)
    return cases


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# The hardening findings, replayed against a live server",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Code: {report['code'].get('commit')}; machine: {report['machine']['cpus']} CPUs. "
        f"Index: {report['index']}, served by `policyqa serve` with the chat page and an API key.",
        "",
        "| finding | request | status | response (cut) | holds |",
        "|---|---|---|---|---|",
    ]
    for c in report["cases"]:
        body = c["body"].replace("|", "\\|")
        note = f" ({c['note']})" if c["note"] else ""
        lines.append(
            f"| {c['finding']} | {c['request'].replace('|', '/')} | {c['status']} | {body}{note} | "
            f"{'yes' if c['holds'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.eval.bench.abuse", description=__doc__)
    parser.add_argument("--index", type=Path, required=True, help="index directory (copied; never written)")
    parser.add_argument("--question", default="复工复产有哪些补贴政策？", help="a question the index answers")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="policyqa-abuse-") as tmp:
        work = Path(tmp)
        shutil.copytree(args.index, work / "index", ignore=shutil.ignore_patterns(".lock"))
        gradio_tmp = work / "gradio"
        gradio_tmp.mkdir()
        os.environ["GRADIO_TEMP_DIR"] = str(gradio_tmp)
        log = Path(tempfile.gettempdir()) / "policyqa-abuse-server.log"
        with running_server(
            work / "index", api_key=key, log_path=log, ui=True, extra_env={"GRADIO_TEMP_DIR": str(gradio_tmp)}
        ) as url:
            port = int(url.rsplit(":", 1)[1])
            cases = run_cases(url, key, port, work, args.question)
    from policyqa.eval.report import module_command, write_result_pair
    from policyqa.eval.runner import git_state, machine_facts

    report = {
        "command": module_command("policyqa.eval.bench.abuse", argv),
        "code": git_state(),
        "machine": machine_facts(),
        "index": str(args.index.name),
        "cases": [asdict(c) for c in cases],
    }
    text = _markdown(report)
    print(text)
    write_result_pair(args.out, report, text)
    return 0 if all(c.holds for c in cases) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
