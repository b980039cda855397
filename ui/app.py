"""The chat page (Gradio): questions in, extracted answers with numbered citations out.

Each answer shows the extracted span, a confidence indication and numbered citations; a
citation opens (a click on it) to the source passage with the answer highlighted and the
document's title, 发文字号, issuing body and date. The sidebar holds the filters (issuing body,
date range, document type) and the search mode. Follow-up questions are asked in the context of
the earlier ones (:func:`policyqa.conversation.contextualize`). An empty chat offers example
questions about the demo corpus.

The page calls the same :class:`~policyqa.service.QAService` as the HTTP API. It is mounted into
the API app at ``/ui`` (:func:`mount_ui`), or started alone (``python -m policyqa.ui.app``).
It works offline: Gradio's analytics are off and its fonts and scripts are served locally.
"""

from __future__ import annotations

import os

# before gradio is imported: no analytics, no version check, nothing leaves the machine
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("GRADIO_TELEMETRY_ENABLED", "False")

import argparse
import asyncio
import datetime as dt
import html
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from policyqa.answer.types import confidence_band
from policyqa.corpus.pages import page_label
from policyqa.retriever.base import Filters
from policyqa.service import AskResult, QAService, ServiceBusyError, ServiceNotReadyError

if TYPE_CHECKING:
    from policyqa.answer.types import Answer, Citation

__all__ = [
    "DEMO_QUESTIONS",
    "PAGE_ROUTES",
    "PageRouteGuard",
    "build_ui",
    "format_answer",
    "main",
    "mount_ui",
    "respond",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Offered on an empty chat: questions the demo corpus (Qingdao Daily, February 2024) answers.
DEMO_QUESTIONS: tuple[str, ...] = (
    "市工业和信息化局将聚焦哪些产业赛道？",
    "市商务局将打造什么招商品牌？",
    "青岛高新区的发展目标是什么？",
    "青岛高新区将深入实施哪些工程？",
)

MODES = (("混合 hybrid", "hybrid"), ("关键词 BM25", "bm25"), ("语义 dense", "dense"))
HISTORY_TURNS = 10

CSS = """
.pq-answer { font-size: 1.05em; }
.pq-conf { display: inline-block; padding: 0 .5em; border-radius: .6em; font-size: .85em; }
.pq-high { background: #d1fadf; color: #05603a; }
.pq-medium { background: #fef0c7; color: #93370d; }
.pq-low, .pq-none { background: #fee4e2; color: #912018; }
.pq-cite summary { cursor: pointer; }
.pq-cite mark { background: #fde68a; padding: 0 .1em; }
.pq-meta { color: #475467; font-size: .9em; }
"""

_CONF_WORDS = {"high": "高", "medium": "中", "low": "低", "none": "无"}

#: The routes of Gradio's app that the chat page uses, relative to where it is mounted:
#: ``(methods, path pattern)``. Everything else Gradio mounts (file upload, file serving,
#: the ``/call`` and ``/run`` APIs, monitoring, "vibe" editing, …) answers 404: the page needs
#: no upload, so an anonymous client can store nothing on the server through it. The one POST
#: is ``queue/join``, which asks a question (a read, like ``POST /ask``) and stores nothing.
#: ``tests/ui/test_routes.py`` lists every route Gradio mounts and checks each against this.
PAGE_ROUTES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"GET", "HEAD"}), r"/?"),  # the page
    (frozenset({"GET", "HEAD"}), r"/(?:assets|static)/[^?#]+"),  # scripts, styles, fonts
    (frozenset({"GET", "HEAD"}), r"/(?:theme\.css|favicon\.ico)"),
    (frozenset({"GET"}), r"/gradio_api/heartbeat/[A-Za-z0-9_-]{1,64}"),  # session liveness
    (frozenset({"POST"}), r"/gradio_api/queue/join"),  # ask (a read; nothing is stored)
    (frozenset({"GET"}), r"/gradio_api/queue/data"),  # the answer's event stream
)
_PAGE_ROUTES_RE = tuple((methods, re.compile(pattern)) for methods, pattern in PAGE_ROUTES)


# -- rendering --------------------------------------------------------------------------------
def _esc(text: str) -> str:
    """Text safe inside the HTML of a chat message (no tags, no markdown, lines kept)."""
    out = html.escape(text, quote=True)
    for ch in "\\`*_[]#|~":
        out = out.replace(ch, f"&#{ord(ch)};")
    return out.replace("\n", "<br>")


def _summary_line(c: Citation) -> str:
    parts = [f"《{_esc(c.title or c.doc_id)}》", *(_esc(x) for x in (c.issuer, c.doc_number, c.date) if x)]
    return " · ".join(parts)


def _meta_block(c: Citation) -> str:
    rows = [
        ("标题", f"《{c.title or c.doc_id}》"),
        ("文号", c.doc_number),
        ("发文机关", c.issuer),
        ("日期", c.date),
        ("位置", c.heading),
        *([("页码", page_label(c.page))] if c.page is not None else []),
    ]
    block = "<br>".join(f"{k}：{_esc(v) if v else '未注明'}" for k, v in rows)
    if c.page is not None:  # a paged source: its kept original opens at the page (GET /originals/{id})
        href = html.escape(f"/originals/{quote(c.doc_id, safe='/')}#page={c.page}", quote=True)
        block += f'<br><a href="{href}" target="_blank" rel="noopener">打开原文{_esc(page_label(c.page))}</a>'
    return block


def _passage_html(answer: Answer, c: Citation, passage: str) -> str:
    """The cited passage, with the answer (or its sentence) highlighted when it is in it."""
    if c.number == answer.citation and answer.start is not None and answer.end is not None:
        s, e = answer.start - c.start, answer.end - c.start
        if 0 <= s < e <= len(passage):
            return f"{_esc(passage[:s])}<mark>{_esc(passage[s:e])}</mark>{_esc(passage[e:])}"
    return _esc(passage)


def format_answer(result: AskResult) -> str:
    """The chat message of an answer: span, confidence, and clickable numbered citations."""
    a = result.answer
    band = confidence_band(a.confidence, a.no_answer)
    passages = {h.chunk_id: h.text for h in a.passages}
    lines: list[str] = []
    if a.no_answer:
        lines.append('<div class="pq-answer">没有找到有把握的答案。下面是最相关的段落，可点开查看。</div>')
    else:
        answer_html = f"<strong>{_esc(a.text)}</strong>"
        cite = f" [{a.citation}]" if a.citation else ""
        lines.append(f'<div class="pq-answer">答案：{answer_html}{cite}</div>')
        if a.sentence and a.sentence != a.text:
            lines.append(f'<div class="pq-meta">原文：{_esc(a.sentence)}</div>')
    lines.append(
        f'<div><span class="pq-conf pq-{band}">置信度：{_CONF_WORDS[band]}（{a.confidence:.2f}）</span></div>'
    )
    if result.searched != result.question:
        lines.append(f'<div class="pq-meta">按上文理解为：{_esc(result.searched)}</div>')
    if a.citations:
        lines.append('<div class="pq-meta">来源（点击展开原文）：</div>')
    for c in a.citations:
        passage = passages.get(c.chunk_id, c.snippet)
        mark = " ★ 答案出处" if c.number == a.citation else ""
        lines.append(
            f'<details class="pq-cite"><summary>[{c.number}] {_summary_line(c)}{mark}</summary>'
            f'<div class="pq-meta">{_meta_block(c)}</div>'
            f"<blockquote>{_passage_html(a, c, passage)}</blockquote></details>"
        )
    return "\n".join(lines)


# -- the page ---------------------------------------------------------------------------------
def _parse_date(text: str, label: str) -> dt.date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{label}日期应为 YYYY-MM-DD 格式，例如 2024-02-18（收到：{text}）") from None


def _filters(issuers: Sequence[str], doc_types: Sequence[str], date_from: str, date_to: str) -> Filters:
    start, end = _parse_date(date_from, "起始"), _parse_date(date_to, "截止")
    if start and end and start > end:
        raise ValueError("起始日期晚于截止日期")
    return Filters(
        issuer=tuple(i.strip() for i in issuers or () if i and i.strip()),
        doc_type=tuple(t.strip() for t in doc_types or () if t and t.strip()),
        date_from=start,
        date_to=end,
    )


async def respond(
    service: QAService,
    question: str,
    asked: Sequence[str],
    *,
    issuers: Sequence[str] = (),
    doc_types: Sequence[str] = (),
    date_from: str = "",
    date_to: str = "",
    mode: str = "hybrid",
    top_k: int = 5,
) -> tuple[str, list[str]]:
    """The chat reply to ``question`` and the questions asked so far (for follow-ups).

    Problems (a question too long, a bad date, the index still loading, the server busy) are
    replies too. The question goes through the service's answer queue, as ``POST /ask`` does;
    waiting for it holds no thread.
    """
    limit = service.settings.max_query_chars
    try:
        if len(question) > limit:
            raise ValueError(f"问题太长：{len(question)} 字，上限 {limit} 字")
        filters = _filters(issuers, doc_types, date_from, date_to)
        result = await service.ask_async(
            question,
            top_k=top_k,
            filters=None if filters.is_empty() else filters,
            history=list(asked)[-HISTORY_TURNS:],
            mode=mode,
        )
    except ServiceBusyError as exc:
        return f"服务繁忙，请 {exc.retry_after} 秒后再试。", list(asked)
    except ServiceNotReadyError as exc:
        return f"索引尚未就绪，请稍后再试（{_esc(str(exc))}）", list(asked)
    except ValueError as exc:
        return f"无法回答：{_esc(str(exc))}", list(asked)
    except Exception:
        logger.exception("the chat page could not answer %r", question)
        return "出错了，请稍后再试（详情见服务器日志）。", list(asked)
    return format_answer(result), [*asked, question]


def build_ui(service: QAService) -> gr.Blocks:
    """The chat page over ``service`` (mount it with :func:`mount_ui`, or ``.launch()`` it)."""
    return _with_running_loop(lambda: _build_ui(service))


def _build_ui(service: QAService) -> gr.Blocks:

    async def answer(
        question: str,
        chat: list[dict[str, Any]],
        asked: list[str],
        issuers: list[str],
        doc_types: list[str],
        date_from: str,
        date_to: str,
        mode: str,
        top_k: float,
    ) -> tuple[str, list[dict[str, Any]], list[str]]:
        question = (question or "").strip()
        if not question:
            return "", chat, asked
        reply, asked = await respond(
            service,
            question,
            asked,
            issuers=issuers or (),
            doc_types=doc_types or (),
            date_from=date_from or "",
            date_to=date_to or "",
            mode=mode,
            top_k=int(top_k),
        )
        chat = [*chat, {"role": "user", "content": question}, {"role": "assistant", "content": reply}]
        return "", chat, asked

    def facets() -> tuple[Any, Any]:
        try:
            f = service.facets()
        except ServiceNotReadyError:
            f = {"issuer": [], "doc_type": []}
        return gr.update(choices=f["issuer"]), gr.update(choices=f["doc_type"])

    page = gr.Blocks(title="政策问答 · policyqa", analytics_enabled=False, fill_height=True)
    with page:
        asked = gr.State([])
        with gr.Sidebar(label="筛选与检索", open=True):
            gr.Markdown("### 筛选")
            issuers = gr.Dropdown(
                label="发文机关",
                choices=[],
                multiselect=True,
                allow_custom_value=True,
                info="包含所填文字即可，如“海关”",
            )
            doc_types = gr.Dropdown(label="文种", choices=[], multiselect=True, allow_custom_value=True)
            with gr.Row():
                date_from = gr.Textbox(label="起始日期", placeholder="YYYY-MM-DD", max_lines=1)
                date_to = gr.Textbox(label="截止日期", placeholder="YYYY-MM-DD", max_lines=1)
            gr.Markdown("### 检索")
            mode = gr.Radio(label="检索方式", choices=list(MODES), value="hybrid")
            top_k = gr.Slider(label="引用段落数", minimum=1, maximum=10, step=1, value=5)
        gr.Markdown("## 政策问答\n输入问题，答案摘自原文，并附编号出处；点击出处可查看原文段落。")
        chatbot = gr.Chatbot(
            label="对话",
            elem_id="pq-chat",
            height="65vh",
            examples=[{"text": q} for q in DEMO_QUESTIONS],
            placeholder="可以试试下面的示例问题（示例语料：青岛日报 2024 年 2 月关于全省开放招商大会的报道）",
            sanitize_html=True,
            feedback_options=None,
            buttons=["copy"],
        )
        with gr.Row():
            box = gr.Textbox(
                label="问题",
                placeholder=f"例如：{DEMO_QUESTIONS[0]}（回车提问）",
                max_lines=3,
                scale=8,
                elem_id="pq-question",
            )
            send = gr.Button("提问", variant="primary", scale=1, elem_id="pq-send")
        clear = gr.Button("新对话", variant="secondary", size="sm")

        inputs = [box, chatbot, asked, issuers, doc_types, date_from, date_to, mode, top_k]
        outputs = [box, chatbot, asked]
        # answers wait in the service's answer queue (which refuses when full), not in Gradio's
        # one-at-a-time event queue; the handler is async, so waiting holds no thread
        unlimited: dict[str, Any] = {"concurrency_limit": None, "api_visibility": "private"}
        box.submit(answer, inputs, outputs, **unlimited)
        send.click(answer, inputs, outputs, **unlimited)

        def pick_example(evt: gr.SelectData) -> str:
            value = evt.value
            return str(value.get("text", "") if isinstance(value, dict) else value)

        chatbot.example_select(pick_example, None, box).then(answer, inputs, outputs, **unlimited)
        clear.click(lambda: ("", [], []), None, outputs)
        page.load(facets, None, [issuers, doc_types])
    # a bound on the events Gradio keeps waiting (page loads, clears); answers are bounded above
    page.queue(max_size=256)
    return page


def _with_running_loop(build: Callable[[], T]) -> T:
    """Call ``build`` inside a running event loop.

    Gradio creates its queue locks with ``asyncio.new_event_loop()`` when no loop is running
    and never closes those loops (each leaks a socket pair); inside a loop it does not.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return build()

    async def run() -> T:
        return build()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


class PageRouteGuard:
    """ASGI wrapper of the mounted Gradio app that passes only the :data:`PAGE_ROUTES`;
    any other request is answered 404 in the API's JSON error shape (before Gradio reads a byte
    of its body)."""

    def __init__(self, app: ASGIApp, mount_path: str) -> None:
        self.app = app
        self.mount_path = mount_path.rstrip("/")

    @staticmethod
    def allows(method: str, path: str) -> bool:
        """Whether a request of ``method`` to ``path`` (relative to the mount) reaches Gradio."""
        return any(method in methods and rx.fullmatch(path) for methods, rx in _PAGE_ROUTES_RE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith(self.mount_path):
            path = path[len(self.mount_path) :]
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        if self.allows(method, path):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket to a route the page does not use
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(
            {"error": "not_found", "detail": f"no such endpoint: {method} {self.mount_path}{path}"},
            ensure_ascii=False,
        ).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def mount_ui(app: FastAPI, service: QAService, path: str = "/ui") -> FastAPI:
    """Mount the chat page over ``service`` into ``app`` at ``path``, behind
    :class:`PageRouteGuard` (only the routes the page uses are reachable)."""

    def mount() -> FastAPI:
        mounted: FastAPI = gr.mount_gradio_app(
            app,
            build_ui(service),
            path=path,
            css=CSS,
            footer_links=[],
            show_error=False,
            mcp_server=False,
            ssr_mode=False,
            pwa=False,
        )
        for route in mounted.router.routes:
            if isinstance(route, Mount) and route.path == path.rstrip("/"):
                route.app = PageRouteGuard(route.app, route.path)
                break
        else:  # pragma: no cover - Gradio changed how it mounts: refuse to serve it unguarded
            raise RuntimeError(f"the chat page was not mounted at {path}; cannot guard its routes")
        return mounted

    return _with_running_loop(mount)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the chat page alone (without the HTTP API): ``python -m policyqa.ui.app``."""
    import uvicorn

    from policyqa.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m policyqa.ui.app", description=main.__doc__)
    parser.add_argument("--host", default=None, help="address (default: the POLICYQA_HOST setting)")
    parser.add_argument("--port", type=int, default=None, help="port (default: the POLICYQA_PORT setting)")
    parser.add_argument("--index", default=None, help="index directory (default: POLICYQA_INDEX_DIR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {} if args.index is None else {"index_dir": args.index}
    settings = Settings(**overrides)
    service = QAService(settings)
    service.start_warm_up()
    app = mount_ui(FastAPI(title="policyqa chat"), service, path="/")
    uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
