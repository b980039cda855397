"""Word documents: ``.docx`` read directly, ``.doc`` and WPS ``.wps`` through a converter.

:func:`load_docx`: paragraphs and tables in body order; a table row is one line, each cell with
its column's header (:mod:`policyqa.corpus.tables`); the 版头 and 版记 of an official document
become metadata (:mod:`policyqa.corpus.furniture`). The container is inflated as a stream with
hard limits first (:mod:`policyqa.corpus.archive`). A ``.docx`` that is really a Word 97–2003
file (an OLE container, as some sites serve them) is read as a ``.doc``.

:func:`load_doc`: Word 97–2003 ``.doc`` and Kingsoft WPS ``.wps`` (an OLE container in the same
binary format) are converted by the first converter installed (:func:`converters`):

1. **LibreOffice** (``soffice``, Debian ``libreoffice-writer-nogui``): converted to ``.docx`` in
   a private temporary folder and read by :func:`load_docx` (tables with their headers, merged
   cells known); the only one that reads ``.wps``;
2. **antiword** (Debian ``antiword``, 0.6 MB): text with tables as ``|a|b|`` rows, read into
   rows with headers (merged cells come out as empty cells);
3. **catdoc** (Debian ``catdoc``): plain text.

With none of them installed, the file is refused with a reason that names the package to
install. A ``.doc`` that is really a ``.docx`` (a zip) is read as one. Converters run without a
shell, on the file's absolute path, with a time limit (:data:`CONVERT_TIMEOUT_S`).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from .archive import zip_bomb_reason
from .build import finish_document, require_text, source_key
from .encoding import UnreadableFileError, normalize_newlines
from .furniture import split_official_parts
from .metadata import extract_title
from .models import DocMeta, Document, stable_id
from .tables import Grid, GridCell, docx_grid, table_lines

__all__ = ["CONVERT_TIMEOUT_S", "LEGACY_WORD_EXTENSIONS", "OLE_MAGIC", "converters", "load_doc", "load_docx"]

logger = logging.getLogger(__name__)

#: Word 97–2003 and Kingsoft WPS files, read through a converter.
LEGACY_WORD_EXTENSIONS: tuple[str, ...] = (".doc", ".wps")
#: The first bytes of an OLE compound file (Word 97–2003, WPS).
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Longest time one conversion may take.
CONVERT_TIMEOUT_S = 120
_SPACE = " \t\u3000\xa0"


def _finish_lines(
    path: Path, lines: list[str], rows: set[int], title: str, extra: dict[str, str]
) -> Document:
    """The document of a Word file's lines (``rows``: the indexes of table rows)."""
    parts = split_official_parts([("" if i in rows else s) for i, s in enumerate(lines)])
    text = "\n".join(lines[parts.head : len(lines) - parts.tail])
    require_text(path, text, "no text in the document")
    meta = DocMeta(source=str(path), extra=dict(extra))
    parts.apply(meta)
    if title.lower().startswith("microsoft word"):
        title = ""
    title = title or extract_title(text) or path.stem
    return finish_document(stable_id(source_key(path), "0"), title, text, meta)


def load_docx(path: str | Path) -> Document:
    """A Word ``.docx`` file as one document: paragraphs, and table rows with their headers."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    p = Path(path)
    with p.open("rb") as f:
        if f.read(8) == OLE_MAGIC:
            return load_doc(p)
    bomb = zip_bomb_reason(p)
    if bomb:
        raise UnreadableFileError(p, f"not indexed: {bomb}")
    try:
        d = docx.Document(str(p))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        reason = str(exc).replace(str(p), p.name)
        raise UnreadableFileError(p, f"not a readable .docx file ({type(exc).__name__}: {reason})") from exc
    lines: list[str] = []
    rows: set[int] = set()
    for block in d.iter_inner_content():
        if isinstance(block, Table):
            for line in table_lines(docx_grid(block)):
                rows.add(len(lines))
                lines.append(line)
        else:
            for part in normalize_newlines(block.text).split("\n"):
                s = part.strip(_SPACE)
                if s:
                    lines.append(s)
    return _finish_lines(p, lines, rows, (d.core_properties.title or "").strip(), {})


def converters() -> dict[str, str | None]:
    """Where each converter of :func:`load_doc` is installed (None: not installed)."""
    return {
        "libreoffice": shutil.which("soffice") or shutil.which("libreoffice"),
        "antiword": shutil.which("antiword"),
        "catdoc": shutil.which("catdoc"),
    }


def _run(args: list[str], path: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnreadableFileError(path, f"the converter took longer than {CONVERT_TIMEOUT_S} s") from exc


def _with_libreoffice(path: Path, soffice: str) -> Document:
    with tempfile.TemporaryDirectory(prefix="policyqa-convert-") as tmp:
        work = Path(tmp)
        source = work / f"source{path.suffix.lower()}"
        shutil.copyfile(path, source)  # a name of our own: nothing of the client's name on a command line
        done = _run(
            [
                soffice,
                f"-env:UserInstallation={(work / 'profile').as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                "docx:MS Word 2007 XML",
                "--outdir",
                str(work / "out"),
                str(source),
            ],
            path,
        )
        converted = work / "out" / "source.docx"
        if not converted.is_file():
            logger.debug("soffice: %s", done.stderr.decode("utf-8", "replace")[-500:])
            raise UnreadableFileError(path, "LibreOffice could not convert it (corrupt or encrypted)")
        doc = load_docx(converted)
    doc.id = stable_id(source_key(path), "0")
    doc.meta.source = str(path)
    if doc.title == converted.stem:
        doc.title = extract_title(doc.text) or path.stem
    doc.meta.extra["converted_by"] = "libreoffice"
    return doc


def _antiword_grid(rows: list[str]) -> Grid:
    return [[GridCell(cell.strip(_SPACE)) for cell in row.strip()[1:-1].split("|")] for row in rows]


def _with_antiword(path: Path, antiword: str) -> Document:
    done = _run([antiword, "-m", "UTF-8.txt", "-w", "0", str(path.resolve())], path)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").replace(str(path.resolve()), path.name).strip()
        if "encrypt" in message.lower():
            raise UnreadableFileError(path, "encrypted: the .doc file needs a password to open")
        raise UnreadableFileError(
            path, f"antiword could not read it ({message.splitlines()[-1] if message else 'corrupt'})"
        )
    lines: list[str] = []
    rows: set[int] = set()
    table: list[str] = []

    def flush() -> None:
        for line in table_lines(_antiword_grid(table)):
            rows.add(len(lines))
            lines.append(line)
        table.clear()

    for raw in normalize_newlines(done.stdout.decode("utf-8", "replace")).split("\n"):
        s = raw.strip(_SPACE)
        if s.startswith("|") and s.endswith("|") and len(s) > 1:
            table.append(s)
            continue
        if table:
            flush()
        if s:
            lines.append(s)
    if table:
        flush()
    return _finish_lines(path, lines, rows, "", {"converted_by": "antiword"})


def _with_catdoc(path: Path, catdoc: str) -> Document:
    done = _run([catdoc, "-d", "utf-8", "-w", str(path.resolve())], path)
    if done.returncode != 0:
        raise UnreadableFileError(path, "catdoc could not read it (corrupt or encrypted)")
    text = normalize_newlines(done.stdout.decode("utf-8", "replace"))
    lines = [s.strip(_SPACE) for s in text.split("\n") if s.strip(_SPACE)]
    return _finish_lines(path, lines, set(), "", {"converted_by": "catdoc"})


def load_doc(path: str | Path) -> Document:
    """A Word 97–2003 ``.doc`` or WPS ``.wps`` file, through the first converter installed."""
    p = Path(path)
    with p.open("rb") as f:
        head = f.read(8)
    if head[:4] == b"PK\x03\x04":
        return load_docx(p)  # a .docx under an old name
    if head != OLE_MAGIC:
        raise UnreadableFileError(
            p, f"not a Word 97–2003 or WPS file (no OLE header) although named {p.suffix}"
        )
    found = converters()
    wps = p.suffix.lower() == ".wps"
    if found["libreoffice"]:
        return _with_libreoffice(p, found["libreoffice"])
    if found["antiword"]:
        return _with_antiword(p, found["antiword"])
    if found["catdoc"] and not wps:
        return _with_catdoc(p, found["catdoc"])
    need = "libreoffice-writer-nogui" if wps else "antiword (or libreoffice-writer-nogui)"
    raise UnreadableFileError(
        p,
        f"converter missing: a {p.suffix.lower()} file is read through a converter; install {need} (Debian: apt-get install {need.split()[0]})",
    )
