"""The built-in demo corpus: three Qingdao Daily reports (February 2024) on Shandong's
"high-level opening-up and high-quality investment attraction" conference.

The shipped file holds the three articles one after another. Each begins with a header block
(headline, subtitle lines) and a ``□青岛日报/观海新闻记者 …`` byline. :func:`load_demo` cuts the
file at the headlines into three :class:`Document` objects whose ``text`` is the verbatim slice
of the file (``meta.extra["offset"]`` is where it starts in the file).

Dates: the text names the conference day (``2月18日是龙年春节后首个工作日…``; the Year of the
Dragon 2024, and the articles speak of 2024 plans), but not the day the paper printed the
reports. So ``meta.date`` stays ``None`` and ``meta.extra["event_date"]`` holds ``2024-02-18``.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

from .encoding import read_text
from .models import DocMeta, Document, stable_id

__all__ = ["DEMO_EVENT_DATE", "DEMO_PATH", "load_demo"]

logger = logging.getLogger(__name__)

#: The demo file shipped inside the package.
DEMO_PATH: Path = Path(
    str(resources.files("policyqa.corpus").joinpath("data", "qingdao-opening-up-2024.txt"))
)
#: The conference day all three reports are about (see the module doc).
DEMO_EVENT_DATE = "2024-02-18"

_BYLINE = re.compile(r"^□(?P<paper>[^/／\s]+)(?:[/／][^\s]*?)?记者[ \t\u3000]*(?P<names>.*)$")
_SENTENCE_END = re.compile(r"[。！？]")


def _article_starts(text: str) -> list[tuple[int, list[str], str]]:
    """For each byline: (offset of the headline, header lines from headline on, byline)."""
    lines: list[tuple[int, str]] = []
    pos = 0
    for raw in text.split("\n"):
        if raw.strip():
            lines.append((pos, raw.strip()))
        pos += len(raw) + 1
    found: list[tuple[int, list[str], str]] = []
    for i, (_offset, line) in enumerate(lines):
        if not _BYLINE.match(line):
            continue
        j = i
        # the header block: short lines without a sentence end right above the byline
        while j > 0 and len(lines[j - 1][1]) <= 80 and not _SENTENCE_END.search(lines[j - 1][1]):
            j -= 1
        if j == i:
            continue
        found.append((lines[j][0], [ln for _o, ln in lines[j:i]], line))
    return found


def load_demo() -> list[Document]:
    """The three demo articles as documents (title = headline, issuer 青岛日报, region 青岛)."""
    text = read_text(DEMO_PATH)
    starts = _article_starts(text)
    if len(starts) != 3:
        logger.warning("demo file: expected 3 articles, found %d", len(starts))
    docs: list[Document] = []
    for n, (start, header, byline) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(text)
        body = text[start:end].rstrip()
        m = _BYLINE.match(byline)
        paper = m.group("paper") if m else "青岛日报"
        reporters = m.group("names").split() if m else []
        meta = DocMeta(
            issuer=paper,
            source=str(DEMO_PATH),
            region="青岛",
            doc_type="新闻",
            extra={
                "subtitle": header[1] if len(header) > 1 else "",
                "deck": header[1:],
                "byline": byline,
                "reporters": reporters,
                "event_date": DEMO_EVENT_DATE,
                "offset": start,
            },
        )
        doc_id = stable_id("policyqa-demo", DEMO_PATH.name, str(n))
        docs.append(Document(id=doc_id, title=header[0], text=body, meta=meta))
    return docs
