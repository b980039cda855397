"""Turning files and folders into :class:`~policyqa.corpus.models.Document` objects.

Formats: ``.txt``, ``.md``/``.markdown``, ``.html``/``.htm``, ``.docx``, ``.pdf``, images
(``.png``/``.jpg``/``.tif``/``.bmp``, by OCR), ``.ofd``, ``.doc``/``.wps`` (through a converter)
and ``.jsonl`` (one document per line). :func:`load_path` yields the documents of one file or of a folder
(recursively, in sorted path order, known extensions only, hidden files skipped);
:func:`load_paths` loads several paths and collects per-file and per-line problems in a
:class:`LoadReport` instead of stopping at the first one.

Document ids: the id field of a jsonl record when it has one (path-like ids such as
``部门规章/…/办法`` are kept; one with an empty, ``.`` or ``..`` segment is refused, see
:func:`policyqa.corpus.models.doc_id_problem`), else
``stable_id(<absolute source path>, <ordinal in the file>)``. ``meta.source`` is always set: the
record's url, else the file named relative to what was indexed (:func:`source_name`: the file's
name, or ``folder/sub/file.pdf``), never a server path. Metadata the format does not give (issuer, 发文字号, date,
type) is filled from the text by :func:`policyqa.corpus.metadata.fill_missing`; fields already
known are never overwritten.

``Document.text`` is the readable text that gets indexed and cited:

- ``.md``: YAML-ish front matter is read as metadata and removed; links, images, emphasis,
  inline code, html tags, blockquote and bullet markers and table pipes are removed; ``#``
  heading lines are kept as they are (the chunker reads them as headings).
- ``.html``: script/style/nav/footer/… removed; block elements become lines; table cells are joined
  with ``' | '``.
- ``.docx``: paragraphs and tables in body order; a table row is one line, each cell with its
  column's header (``项目: 稳岗返还 | 标准: 50%``, merged cells once per row they cover; see
  :mod:`policyqa.corpus.tables`); the 版头 and 版记 of an official document become metadata
  (:mod:`policyqa.corpus.furniture`). The container is inflated as a stream first, with hard
  limits (:mod:`policyqa.corpus.archive`): a decompression bomb is refused before python-docx
  reads it.
- ``.pdf`` and images (:mod:`policyqa.corpus.pdf`): the text layer page by page, OCR where a page
  has none (with an :class:`~policyqa.corpus.ocr.OcrReader`), tables as rows with headers, page
  furniture dropped, 版头/版记 as metadata, lines joined into paragraphs;
  ``meta.extra["page_starts"]`` holds the text offset where each page begins.
- ``.ofd`` (:mod:`policyqa.corpus.ofd`) and ``.doc``/``.wps`` (:mod:`policyqa.corpus.legacy`).
- ``.txt`` and jsonl text: verbatim (newlines normalised).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .build import finish_document, require_text, source_key
from .encoding import UnreadableFileError, normalize_newlines, read_text
from .metadata import extract_title, find_doc_numbers, issuer_from_promulgation, parse_date
from .models import DocMeta, Document, doc_id_problem, stable_id
from .ofd import load_ofd
from .pages import join_pdf_lines
from .pdf import IMAGE_EXTENSIONS, load_image, load_pdf, reading_warnings
from .word import LEGACY_WORD_EXTENSIONS, load_doc, load_docx

if TYPE_CHECKING:
    from .ocr import OcrReader
    from .originals import OriginalStore

__all__ = [
    "KNOWN_EXTENSIONS",
    "MEDIA_TYPES",
    "JsonlFields",
    "LoadReport",
    "iter_files",
    "join_pdf_lines",
    "load_docx",
    "load_html",
    "load_image",
    "load_jsonl",
    "load_markdown",
    "load_path",
    "load_paths",
    "load_pdf",
    "load_text_file",
    "markdown_to_text",
    "source_name",
]

logger = logging.getLogger(__name__)

#: File extensions :func:`load_path` reads (lower case).
KNOWN_EXTENSIONS: tuple[str, ...] = (
    ".txt",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".docx",
    ".pdf",
    *IMAGE_EXTENSIONS,
    ".ofd",
    *LEGACY_WORD_EXTENSIONS,
    ".jsonl",
)

#: The media type of each format (as a client labels an upload), and the extension it reads as.
MEDIA_TYPES: dict[str, str] = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
    "image/bmp": ".bmp",
    "application/ofd": ".ofd",
    "application/msword": ".doc",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
}

#: ``on_error(path, reason)``: called for a file (or jsonl line) that cannot be loaded.
ErrorHandler = Callable[[str, str], None]


# --------------------------------------------------------------------------------------------
# .txt
# --------------------------------------------------------------------------------------------


def load_text_file(path: str | Path) -> Document:
    """A ``.txt`` file as one document (text verbatim; title = first title-like line)."""
    p = Path(path)
    text = read_text(p)
    require_text(p, text, "empty file")
    title = extract_title(text) or p.stem
    return finish_document(stable_id(source_key(p), "0"), title, text, DocMeta(source=str(p)))


# --------------------------------------------------------------------------------------------
# .md
# --------------------------------------------------------------------------------------------

_FRONT_KEYS = {
    "title": "title",
    "标题": "title",
    "date": "date",
    "日期": "date",
    "发布日期": "date",
    "成文日期": "date",
    "issuer": "issuer",
    "发文机关": "issuer",
    "doc_number": "doc_number",
    "发文字号": "doc_number",
    "region": "region",
    "地区": "region",
    "doc_type": "doc_type",
    "type": "doc_type",
    "source": "source",
    "url": "source",
}
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_MD_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_MD_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MD_ITALIC = re.compile(r"(?<![*\w])([*_])(?=\S)(.+?)(?<=\S)\1(?![*\w])")
_MD_STRIKE = re.compile(r"~~(.+?)~~")
_MD_CODE = re.compile(r"`([^`]+)`")
_MD_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_MD_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_MD_TABLE_SEP = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_MD_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+")
_MD_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]?)+")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_MD_LINK_DEF = re.compile(r"^[ \t]*\[[^\]]+\]:[ \t]*\S+.*$")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``(fields, rest)`` for text that starts with a ``---`` front matter block."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0 or end > 4000:
        return {}, text
    after = text.find("\n", end + 4)
    rest = text[after + 1 :] if after >= 0 else ""
    fields: dict[str, str] = {}
    for line in text[4:end].split("\n"):
        key, sep, value = line.partition(":")
        if not sep:
            key, sep, value = line.partition("：")
        if sep and key.strip():
            fields[key.strip()] = value.strip().strip("'\"")
    return fields, rest


def _md_inline(line: str) -> str:
    line = _MD_IMAGE.sub(r"\1", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_REF_LINK.sub(r"\1", line)
    line = _MD_AUTOLINK.sub(r"\1", line)
    line = _MD_CODE.sub(r"\1", line)
    line = _MD_BOLD.sub(r"\2", line)
    line = _MD_ITALIC.sub(r"\2", line)
    line = _MD_STRIKE.sub(r"\1", line)
    line = _MD_HTML_TAG.sub("", line)
    return _MD_ESCAPE.sub(r"\1", line)


def markdown_to_text(markdown: str) -> str:
    """Readable text of a markdown body (markup removed, ``#`` heading lines kept)."""
    out: list[str] = []
    in_fence = False
    for line in normalize_newlines(markdown).split("\n"):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line)
            continue
        if _MD_TABLE_SEP.match(line) and "-" in line:
            continue
        if _MD_RULE.match(line) or _MD_LINK_DEF.match(line):
            out.append("")
            continue
        line = _MD_QUOTE.sub("", line)
        h = _MD_HEADING.match(line)
        if h:
            out.append(f"{h.group(1)} {_md_inline(h.group(2))}")
            continue
        line = _MD_BULLET.sub(r"\1", line)
        if stripped.startswith("|") and stripped.endswith("|") and stripped.count("|") >= 2:
            cells = [_md_inline(c.strip()) for c in stripped[1:-1].split("|")]
            out.append(" | ".join(c for c in cells if c))
            continue
        out.append(_md_inline(line).rstrip())
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def load_markdown(path: str | Path) -> Document:
    """A markdown file as one document (see the module doc for what is kept)."""
    p = Path(path)
    raw = read_text(p)
    front, body = _front_matter(raw)
    text = markdown_to_text(body)
    require_text(p, text, "empty file")
    meta = DocMeta(source=str(p))
    title = ""
    for key, value in front.items():
        target = _FRONT_KEYS.get(key.lower(), _FRONT_KEYS.get(key))
        if not value:
            continue
        if target == "title":
            title = value
        elif target == "date":
            meta.date = parse_date(value)
        elif target is not None:
            setattr(meta, target, value)
        else:
            meta.extra[key] = value
    if not title:
        m = re.search(r"^# (.+)$", text, flags=re.MULTILINE)
        title = m.group(1).strip() if m else (extract_title(re.sub(r"^#+ ", "", text, flags=re.M)) or p.stem)
    return finish_document(stable_id(source_key(p), "0"), title, text, meta)


# --------------------------------------------------------------------------------------------
# .html
# --------------------------------------------------------------------------------------------

_HTML_DROP = (
    "script",
    "style",
    "nav",
    "footer",
    "noscript",
    "template",
    "iframe",
    "svg",
    "form",
    "button",
    "select",
    "canvas",
)
_HTML_BLOCKS = frozenset(
    (
        *("p", "div", "section", "article", "main", "header", "footer", "aside", "address", "center", "hr"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "pre"),
        *(
            "table",
            "thead",
            "tbody",
            "tfoot",
            "caption",
            "figure",
            "figcaption",
            "fieldset",
            "details",
            "summary",
        ),
    )
)
_CJK_NEWLINE_GAP = re.compile(
    r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])[ \t\r\n]*\n[ \t\r\n]*(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])"
)
_HTML_SPACES = re.compile(r"[ \t\r\n\f]+")
_TITLE_SITE_SUFFIX = re.compile(r"\s*(?:[_｜|]|\s[-–—]\s).*$")


def _html_lines(root: Any) -> list[str]:
    """Lines of text of a parsed HTML element (block elements end lines, cells joined by ' | ')."""
    from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    parts: list[str] = []

    def walk(node: Any, pre: bool) -> None:
        for child in node.children:
            if isinstance(child, Comment | Declaration | Doctype | ProcessingInstruction):
                continue
            if isinstance(child, NavigableString):
                s = str(child)
                if not pre:
                    s = _CJK_NEWLINE_GAP.sub("", s)
                    s = _HTML_SPACES.sub(" ", s)
                parts.append(s)
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name == "br":
                parts.append("\n")
            elif name == "tr":
                cells = []
                for cell in child.find_all(["td", "th"], recursive=False):
                    cell_lines = _html_lines(cell)
                    cells.append(" ".join(cell_lines))
                parts.append("\n" + " | ".join(c for c in cells if c) + "\n")
            elif name in _HTML_BLOCKS:
                parts.append("\n")
                walk(child, pre or name == "pre")
                parts.append("\n")
            else:
                walk(child, pre)

    walk(root, False)
    lines = []
    for line in "".join(parts).split("\n"):
        s = line.strip(" \t\r\f\u3000\xa0")
        if s:
            lines.append(s)
    return lines


def load_html(path: str | Path) -> Document:
    """An HTML page as one document (title from ``<h1>``, else ``<title>``, else the text)."""
    from bs4 import BeautifulSoup, Tag

    p = Path(path)
    html = read_text(p)
    soup = BeautifulSoup(html, "lxml")
    meta = DocMeta(source=str(p))
    meta_title = ""
    for tag in soup.find_all("meta"):
        if not isinstance(tag, Tag):
            continue
        name = str(tag.get("name") or tag.get("property") or "").lower()
        content = str(tag.get("content") or "").strip()
        if not content:
            continue
        if name in ("articletitle", "og:title") and not meta_title:
            meta_title = content
        elif (
            name in ("pubdate", "publishdate", "article:published_time", "firstpublishedtime")
            and not meta.date
        ):
            meta.date = parse_date(content)
    page_title = ""
    if soup.title is not None:
        page_title = _TITLE_SITE_SUFFIX.sub("", soup.title.get_text(" ", strip=True))
    for tag in soup(list(_HTML_DROP)):
        tag.decompose()
    h1 = soup.find("h1")
    h1_text = _HTML_SPACES.sub(" ", h1.get_text(" ", strip=True)) if isinstance(h1, Tag) else ""
    body = soup.body if soup.body is not None else soup
    text = "\n".join(_html_lines(body))
    require_text(p, text, "no text in the page")
    title = h1_text or meta_title or page_title or extract_title(text) or p.stem
    return finish_document(stable_id(source_key(p), "0"), title, text, meta)


# --------------------------------------------------------------------------------------------
# .jsonl
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JsonlFields:
    """Which keys of a jsonl record hold which document field.

    ``None`` (the default) auto-detects from common names: id ``id/_id/doc_id/docid``, title
    ``title/name/标题``, text ``text/content/contents/body/正文``, date
    ``date/file_date/publish_date/pub_date/发布日期/成文日期``, issuer ``issuer/发文机关/agency``,
    doc_number ``doc_number/发文字号/文号``, url ``url/link/source_url``, region ``region/地区``,
    doc_type ``doc_type/type/category/文种``. LawRefBook records (``info``, ``subdir``,
    ``category`` …) get their own mapping (see :func:`load_jsonl`). Other keys go to
    ``meta.extra``.
    """

    id: str | None = None
    title: str | None = None
    text: str | None = None
    date: str | None = None
    issuer: str | None = None
    doc_number: str | None = None
    url: str | None = None
    region: str | None = None
    doc_type: str | None = None


_CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "_id", "doc_id", "docid"),
    "title": ("title", "name", "标题"),
    "text": ("text", "content", "contents", "body", "正文"),
    "date": ("date", "file_date", "publish_date", "pub_date", "发布日期", "成文日期"),
    "issuer": ("issuer", "发文机关", "agency"),
    "doc_number": ("doc_number", "发文字号", "文号"),
    "url": ("url", "link", "source_url"),
    "region": ("region", "地区"),
    "doc_type": ("doc_type", "type", "category", "文种"),
}
#: LawRefBook categories that are branches of law (法律部门): their documents are laws.
_LAW_BRANCHES = frozenset(
    ["宪法", "宪法相关法", "民法商法", "民法典", "行政法", "经济法", "社会法", "刑法", "诉讼与非诉讼程序法"]
)
_LAWREF_KEYS = frozenset(["info", "subdir", "category", "file_date"])


def _pick(record: dict[str, Any], explicit: str | None, kind: str) -> tuple[str | None, Any]:
    if explicit is not None:
        return explicit, record.get(explicit)
    for key in _CANDIDATES[kind]:
        if key in record:
            return key, record[key]
    return None, None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _lawrefbook_meta(record: dict[str, Any], meta: DocMeta) -> None:
    """Metadata of a LawRefBook record: type, issuer, region, 发文字号 from its fields."""
    category = _as_str(record.get("category")) or ""
    subdir = _as_str(record.get("subdir")) or ""
    info = [str(x) for x in record.get("info") or [] if isinstance(x, str)]
    number_lines = [str(x) for x in record.get("info_doc_number_lines") or [] if isinstance(x, str)]
    meta.extra["category"] = category
    if subdir.startswith("地方性法规"):
        meta.doc_type = meta.doc_type or "地方性法规"
        region = subdir.split("/")[1] if "/" in subdir else category.removesuffix("地方法规")
        meta.region = meta.region or region or None
    else:
        if category in _LAW_BRANCHES:
            meta.doc_type = meta.doc_type or "法律"
        elif category and category != "其他":
            meta.doc_type = meta.doc_type or category
        if subdir:
            meta.issuer = meta.issuer or subdir.split("/")[-1]
        meta.region = meta.region or "全国"
    if not meta.issuer:
        meta.issuer = issuer_from_promulgation(info)
    if not meta.issuer and category == "行政法规":
        meta.issuer = "国务院"  # administrative regulations are the State Council's by definition
    if not meta.doc_number:
        for line in reversed(number_lines or info):
            nums = find_doc_numbers(line)
            if nums:
                meta.doc_number = nums[-1].number
                break


def _record_to_document(record: dict[str, Any], fields: JsonlFields, path: Path, ordinal: int) -> Document:
    """One jsonl record → Document; raises ValueError naming what is wrong."""
    text_key, text_value = _pick(record, fields.text, "text")
    if not isinstance(text_value, str) or not text_value.strip():
        looked = fields.text or "/".join(_CANDIDATES["text"])
        raise ValueError(f"no text (field {looked!r} missing or empty)")
    text = normalize_newlines(text_value)
    used = {text_key}

    id_key, id_value = _pick(record, fields.id, "id")
    used.add(id_key)
    doc_id = _as_str(id_value) or stable_id(source_key(path), str(ordinal))
    problem = doc_id_problem(doc_id)
    if problem:
        raise ValueError(problem)

    title_key, title_value = _pick(record, fields.title, "title")
    used.add(title_key)
    title = _as_str(title_value) or extract_title(text, max_chars=60) or f"{path.stem} #{ordinal + 1}"

    meta = DocMeta()
    for kind in ("issuer", "doc_number", "region", "doc_type"):
        key, value = _pick(record, getattr(fields, kind), kind)
        used.add(key)
        setattr(meta, kind, _as_str(value))
    date_key, date_value = _pick(record, fields.date, "date")
    used.add(date_key)
    meta.date = parse_date(_as_str(date_value))
    url_key, url_value = _pick(record, fields.url, "url")
    used.add(url_key)
    meta.source = _as_str(url_value) or str(path)

    is_lawref = _LAWREF_KEYS.issubset(record) and fields.doc_type is None and fields.issuer is None
    if is_lawref:
        meta.doc_type = None  # category is handled by the LawRefBook mapping
        used.update(("category", "subdir"))
        _lawrefbook_meta(record, meta)
    for key, value in record.items():
        if key not in used:
            meta.extra[key] = value
    meta.extra["line"] = ordinal + 1
    return finish_document(doc_id, title, text, meta)


def load_jsonl(
    path: str | Path, *, fields: JsonlFields | None = None, on_error: ErrorHandler | None = None
) -> Iterator[Document]:
    """The documents of a jsonl file, one per non-empty line.

    A bad line (invalid JSON, not an object, no text) is skipped and reported through
    ``on_error(path, "line N: …")`` (logged as a warning when there is no handler); the rest of
    the file still loads.
    """
    p = Path(path)
    fields = fields or JsonlFields()
    text = read_text(p)
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        reason: str | None = None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
        else:
            if not isinstance(record, dict):
                reason = f"line {lineno}: expected a JSON object, got {type(record).__name__}"
            else:
                try:
                    yield _record_to_document(record, fields, p, lineno - 1)
                except ValueError as exc:
                    reason = f"line {lineno}: {exc}"
        if reason is not None:
            if on_error is None:
                logger.warning("%s: %s (line skipped)", p, reason)
            else:
                on_error(str(p), reason)


# --------------------------------------------------------------------------------------------
# files and folders
# --------------------------------------------------------------------------------------------


class _OcrLoader(Protocol):
    __name__: str

    def __call__(self, path: str | Path, *, ocr: OcrReader | None = None) -> Document: ...


_SINGLE_LOADERS: dict[str, Callable[[Path], Document]] = {
    ".txt": load_text_file,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".ofd": load_ofd,
    **dict.fromkeys(LEGACY_WORD_EXTENSIONS, load_doc),
}
#: Loaders that read page images (OCR).
_PAGED_LOADERS: dict[str, _OcrLoader] = {".pdf": load_pdf, **dict.fromkeys(IMAGE_EXTENSIONS, load_image)}


def _missing(path: Path) -> FileNotFoundError:
    where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
    return FileNotFoundError(f"{path}: no such file or directory{where}")


def iter_files(path: str | Path) -> Iterator[Path]:
    """The loadable files at ``path``: the file itself, or a folder's files with a known
    extension, recursively, sorted by path; hidden files and folders and ``~$`` Word lock files
    are skipped."""
    p = Path(path)
    if p.is_file():
        yield p
        return
    if not p.is_dir():
        raise _missing(p)
    found = []
    for child in p.rglob("*"):
        rel = child.relative_to(p).parts
        if any(part.startswith(".") for part in rel) or child.name.startswith("~$"):
            continue
        if child.suffix.lower() in KNOWN_EXTENSIONS and child.is_file():
            found.append(child)
    found.sort(key=lambda c: c.relative_to(p).parts)
    yield from found


def _load_file(
    path: Path, fields: JsonlFields | None, on_error: ErrorHandler | None, ocr: OcrReader | None
) -> Iterator[Document]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from load_jsonl(path, fields=fields, on_error=on_error)
        return
    paged = _PAGED_LOADERS.get(suffix)
    loader = _SINGLE_LOADERS.get(suffix)
    if loader is None and paged is None:
        raise UnreadableFileError(
            path, f"unsupported file type {suffix or '(none)'!r}; known: {', '.join(KNOWN_EXTENSIONS)}"
        )
    try:
        if paged is not None:
            doc = paged(path, ocr=ocr)
        else:
            assert loader is not None
            doc = loader(path)
    except (UnreadableFileError, OSError):
        raise
    except Exception as exc:  # a parser failing on odd input: this file is unreadable, not the run
        logger.debug("%s: %s failed", path, suffix, exc_info=True)
        raise UnreadableFileError(path, f"cannot parse ({type(exc).__name__}: {exc})") from exc
    yield doc


def source_name(file: Path, root: Path) -> str:
    """How a file is named in ``meta.source``: relative to what was indexed, never a server path.
    ``root`` is the path given to the loader: the file itself (→ its name) or a folder (→
    ``folder/sub/file.pdf``, the folder's own name first)."""
    if file == root or not root.is_dir():
        return file.name
    name = root.resolve().name
    rel = file.relative_to(root).as_posix()
    return f"{name}/{rel}" if name else rel


def _shown_relative(docs: Iterable[Document], file: Path, root: Path) -> Iterator[Document]:
    """The documents of ``file`` with a source that was its path shown by :func:`source_name`."""
    shown = source_name(file, root)
    for doc in docs:
        if doc.meta.source == str(file):
            doc.meta.source = shown
        yield doc


def _kept(docs: Iterable[Document], file: Path, originals: OriginalStore | None) -> Iterator[Document]:
    """The documents of ``file``, with the key of its kept original (one file, one document)."""
    if originals is None or file.suffix.lower() == ".jsonl":
        yield from docs
        return
    for doc in docs:
        key = originals.keep(file)
        if key is not None:
            doc.meta.extra["original"] = key
        yield doc


def load_path(
    path: str | Path,
    *,
    fields: JsonlFields | None = None,
    on_error: ErrorHandler | None = None,
    ocr: OcrReader | None = None,
    originals: OriginalStore | None = None,
) -> Iterator[Document]:
    """The documents of a file or of a folder (recursively, sorted, known extensions only).

    Raises ``FileNotFoundError`` when ``path`` does not exist. A file that cannot be read raises
    :class:`UnreadableFileError`, unless ``on_error(path, reason)`` is given: then it is reported
    there and skipped. Bad jsonl lines are always skipped (reported to ``on_error`` or logged).
    ``ocr`` reads scanned PDF pages and images (``OcrReader.from_settings(settings)``); without
    it they are left out with their reason. ``originals`` keeps a copy of each file a document
    was read from (not jsonl) and records its key in ``meta.extra["original"]``.
    """
    p = Path(path)
    if not p.exists():
        raise _missing(p)
    for file in iter_files(p):
        if on_error is None:
            yield from _kept(_shown_relative(_load_file(file, fields, None, ocr), file, p), file, originals)
            continue
        try:
            yield from _kept(
                _shown_relative(_load_file(file, fields, on_error, ocr), file, p), file, originals
            )
        except UnreadableFileError as exc:
            logger.warning("skipping %s: %s", exc.path, exc.reason)
            on_error(exc.path, exc.reason)
        except OSError as exc:
            logger.warning("skipping %s: %s", file, exc)
            on_error(str(file), f"cannot read: {exc.strerror or exc}")


@dataclass
class LoadReport:
    """What :func:`load_paths` loaded, what it had to skip (``errors``) and what it loaded with a
    doubt (``warnings``: pages OCR read with low confidence, pages left without text), as
    ``(path, reason)`` pairs."""

    documents: list[Document] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was skipped."""
        return not self.errors

    def summary(self) -> str:
        """One line for a log or a CLI: ``'1,512 documents; 2 skipped'``."""
        text = f"{len(self.documents):,} documents"
        if self.errors:
            text += f"; {len(self.errors):,} skipped"
        return text


def load_paths(
    paths: str | Path | Iterable[str | Path],
    *,
    fields: JsonlFields | None = None,
    ocr: OcrReader | None = None,
    originals: OriginalStore | None = None,
) -> LoadReport:
    """Load every path (file or folder); unreadable files, bad jsonl lines and duplicate ids are
    skipped and listed in :attr:`LoadReport.errors` while the rest loads. ``ocr`` and
    ``originals``: see :func:`load_path`.

    Raises ``FileNotFoundError`` (naming all of them) when some paths do not exist.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    path_list = [Path(p) for p in paths]
    missing = [p for p in path_list if not p.exists()]
    if len(missing) == 1:
        raise _missing(missing[0])
    if missing:
        raise FileNotFoundError("no such files or directories: " + ", ".join(str(p) for p in missing))
    report = LoadReport()
    seen: dict[str, str] = {}

    def on_error(path: str, reason: str) -> None:
        report.errors.append((path, reason))

    for p in path_list:
        for doc in load_path(p, fields=fields, on_error=on_error, ocr=ocr, originals=originals):
            report.warnings.extend((doc.meta.source or str(p), line) for line in reading_warnings(doc))
            first = seen.get(doc.id)
            if first is not None:
                report.errors.append(
                    (doc.meta.source or str(p), f"duplicate document id {doc.id!r} (first from {first})")
                )
                continue
            seen[doc.id] = doc.meta.source or str(p)
            report.documents.append(doc)
    logger.info("loaded %s", report.summary())
    return report
