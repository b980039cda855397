"""Property-based testing of the HTTP API against its own OpenAPI schema (schemathesis).

::

    python -m policyqa.eval.bench.fuzz_api --index DIR [--max-examples 100] [--seed 1] \\
        [--out eval/results/fuzz-api]

copies the index to a temporary directory (the fuzzer's writes change only the copy), starts
``policyqa serve`` on a free loopback port with a random API key, and runs ``schemathesis run``
with every check, the key sent on every request (so the write endpoints are exercised past
authentication too), all phases (examples, coverage, fuzzing, stateful). Every request and
response is recorded in a HAR file, from which the totals are counted: requests per operation
and per status, and the 5xx responses (the number that must be zero). ``OUT.json`` and
``OUT.md`` hold the summary and the check results that schemathesis printed.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from policyqa.eval.bench.load_test import running_server
from policyqa.eval.report import write_result_pair

__all__ = ["count_har", "main"]

_PATH_TEMPLATES = (("/documents/", "/documents/{doc_id}"),)


def _operation(method: str, url: str) -> str:
    path = urlparse(url).path
    for prefix, template in _PATH_TEMPLATES:
        if path.startswith(prefix) and path != prefix:
            path = template
    return f"{method} {path}"


def count_har(har_path: Path) -> dict[str, Any]:
    """Requests per operation and per status class in a HAR file."""
    har = json.loads(har_path.read_text(encoding="utf-8"))
    by_status: Counter[int] = Counter()
    by_operation: Counter[str] = Counter()
    server_errors: list[dict[str, Any]] = []
    for entry in har["log"]["entries"]:
        status = int(entry["response"]["status"])
        op = _operation(entry["request"]["method"], entry["request"]["url"])
        by_status[status] += 1
        by_operation[op] += 1
        if status >= 500:
            server_errors.append(
                {
                    "operation": op,
                    "status": status,
                    "body": entry["response"].get("content", {}).get("text", "")[:500],
                }
            )
    total = sum(by_status.values())
    return {
        "requests": total,
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "by_operation": dict(sorted(by_operation.items())),
        "server_errors": len(server_errors),
        "server_error_samples": server_errors[:20],
    }


def _markdown(report: dict[str, Any]) -> str:
    c = report["counts"]
    lines = [
        "# Schemathesis run against the OpenAPI schema",
        "",
        f"Command: `{report['command']}`",
        "",
        f"schemathesis {report['schemathesis_version']}: `{report['schemathesis_command']}` (API key sent "
        "on every request; exit code " + str(report["schemathesis_exit_code"]) + ")",
        "",
        f"**{c['requests']} requests, {c['server_errors']} responses with status 5xx.**",
        "",
        "| status | responses |",
        "|---:|---:|",
        *[f"| {k} | {v} |" for k, v in c["by_status"].items()],
        "",
        "| operation | requests |",
        "|---|---:|",
        *[f"| `{k}` | {v} |" for k, v in c["by_operation"].items()],
        "",
        "Schemathesis summary:",
        "",
        "```",
        report["schemathesis_summary"],
        "```",
        "",
    ]
    return "\n".join(lines)


def _summary_of(output: str) -> str:
    """The closing part of schemathesis' console output (from its failures heading on)."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", output)
    marker = clean.find("FAILURES")
    if marker < 0:
        marker = clean.find("SUMMARY")
    text = clean[marker:] if marker >= 0 else clean[-4000:]
    return text.strip()[-30000:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policyqa.eval.bench.fuzz_api", description=__doc__)
    parser.add_argument("--index", type=Path, required=True, help="index directory (copied; not changed)")
    parser.add_argument("--max-examples", type=int, default=100, help="test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=int, default=1500, help="time budget of the run in seconds")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    import schemathesis

    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="policyqa-fuzz-") as tmp:
        index = Path(tmp) / "index"
        shutil.copytree(args.index, index, ignore=shutil.ignore_patterns(".lock"))
        har = Path(tmp) / "run.har"
        log = Path(tempfile.gettempdir()) / "policyqa-fuzz-server.log"
        print(f"server log: {log}", file=sys.stderr)
        with running_server(index, api_key=key, log_path=log) as url:
            cmd = [
                "schemathesis", "run", f"{url}/openapi.json",
                "--checks", "all",
                "--max-examples", str(args.max_examples),
                "--seed", str(args.seed),
                "--max-time", str(args.max_time),
                "--workers", "1",
                "--request-timeout", "60",
                "--report", "har", "--report-har-path", str(har),
                "--header", f"Authorization: Bearer {key}",
            ]  # fmt: skip
            shown = shlex.join(cmd).replace(key, "<key>")
            print(f"running: {shown}", file=sys.stderr)
            # run in the temporary directory: schemathesis and hypothesis leave caches in the cwd
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.max_time + 600, cwd=tmp)
        output = (proc.stdout or "") + (proc.stderr or "")
        full_log = Path(tempfile.gettempdir()) / "policyqa-fuzz-schemathesis.log"
        full_log.write_text(output.replace(key, "<key>"), encoding="utf-8")
        print(f"schemathesis output: {full_log}", file=sys.stderr)
        counts = count_har(har)
    report = {
        "command": "python -m policyqa.eval.bench.fuzz_api " + shlex.join(list(argv or sys.argv[1:])),
        "schemathesis_version": getattr(schemathesis, "__version__", "?"),
        "schemathesis_command": shown,
        "schemathesis_exit_code": proc.returncode,
        "counts": counts,
        "schemathesis_summary": _summary_of(output).replace(key, "<key>"),
    }
    text = _markdown(report)
    print(text)
    write_result_pair(args.out, report, text)
    return 0 if counts["server_errors"] == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
