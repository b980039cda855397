"""The ``policyqa serve`` command: the HTTP API at ``/`` and the chat page at ``/ui``.

The main CLI registers it with :func:`add_serve_parser` and runs it with
:func:`run_serve_command`. ``python -m policyqa.api.cli [--host H] [--port P] [--index DIR]``
runs the same command on its own.

With no index at the index directory, the demo corpus index is built first (in the
background: ``/health`` answers 503 until it is loaded, then 200; progress is logged).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policyqa.settings import Settings, get_settings

__all__ = ["add_serve_parser", "main", "run_serve_command"]

logger = logging.getLogger("policyqa.serve")

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1–65535, got {value}")
    return value


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=None, help="address to listen on (default: POLICYQA_HOST, 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=None, help="port to listen on (default: POLICYQA_PORT, 8000)"
    )
    parser.add_argument(
        "--index",
        "--index-dir",
        dest="index",
        type=Path,
        default=None,
        help="index directory (default: POLICYQA_INDEX_DIR); none there: the demo corpus is indexed first",
    )
    parser.add_argument("--no-ui", action="store_true", help="serve the API only, without the chat page")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars while building")


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``serve`` sub-command on an ``argparse`` subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="start the HTTP API (/) and the chat page (/ui)",
        description=(
            "Serve the HTTP API at / (OpenAPI at /openapi.json, docs at /docs) and the chat page at "
            "/ui. /health answers 200 once the index is loaded. With no index at the index "
            "directory, the built-in demo corpus is indexed first. Write endpoints need "
            "POLICYQA_API_KEY to be set (and sent as 'Authorization: Bearer <key>')."
        ),
    )
    _add_arguments(parser)
    return parser


def run_serve_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the server until interrupted; returns the exit code."""
    import uvicorn

    from policyqa.api.app import create_app

    updates: dict[str, Any] = {}
    if getattr(args, "index", None) is not None:
        updates["index_dir"] = args.index
    if getattr(args, "no_progress", False):
        updates["progress"] = False
    settings = settings.model_copy(update=updates)
    host = args.host or settings.host
    port = args.port or settings.port
    if settings.api_key is None or not settings.api_key.get_secret_value():
        logger.warning(
            "POLICYQA_API_KEY is not set: the write endpoints (POST/DELETE /documents) are disabled"
        )
    if host not in _LOOPBACK:
        logger.warning(
            "listening on %s: the API is reachable from the network (CORS %s)",
            host,
            "allows " + ", ".join(settings.cors_origins) if settings.cors_origins else "closed",
        )
    app = create_app(settings, ui=settings.serve_ui and not getattr(args, "no_ui", False))
    shown = f"[{host}]" if ":" in host else host
    served = str(settings.index_dir)
    if settings.backend == "milvus":
        from policyqa.index.milvus import milvus_uri, where

        served = f"milvus {where(milvus_uri(settings))} collection {settings.milvus_collection}"
    logger.info(
        "serving index %s at http://%s:%d/ (docs /docs, OpenAPI /openapi.json%s)",
        served,
        shown,
        port,
        ", chat page /ui" if app.state.ui_mounted else "",
    )
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            server_header=False,
            # past this many connections and requests in flight, new ones get 503 at once
            limit_concurrency=settings.server_max_connections,
            # a stopping server waits this long for requests in flight, then closes them
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
    except SystemExit as exc:  # uvicorn exits when it cannot bind
        return int(exc.code) if isinstance(exc.code, int) else 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m policyqa.api.cli``: the serve command on its own."""
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.api.cli", description="Serve the policyqa HTTP API and chat page."
    )
    _add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_serve_command(args, get_settings())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
