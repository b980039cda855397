"""policyqa.corpus, the first stage: documents in, cited passages out.

- :mod:`~policyqa.corpus.models`: :class:`Document`, :class:`DocMeta`, :class:`Chunk`, document ids.
- :mod:`~policyqa.corpus.encoding`: :func:`read_text` (UTF-8/BOM/GB18030/detected).
- :mod:`~policyqa.corpus.metadata`: 发文字号, dates, issuer, title and type from text.
- :mod:`~policyqa.corpus.loaders`: :func:`load_path` / :func:`load_paths` for
  .txt/.md/.html/.docx/.pdf/.jsonl, images, .ofd, .doc/.wps files and folders.
- per format: :mod:`~policyqa.corpus.pdf` (text layer, scanned pages, images),
  :mod:`~policyqa.corpus.ocr` (:class:`~policyqa.corpus.ocr.OcrReader`: rapidocr, cached by page
  image), :mod:`~policyqa.corpus.ofd` (OFD), :mod:`~policyqa.corpus.word` (.docx; .doc/.wps through
  LibreOffice, antiword or catdoc).
- what the paged formats share: :mod:`~policyqa.corpus.layout` (reading order),
  :mod:`~policyqa.corpus.pages` (pages to text, ``page_starts``, ``第 N 页``),
  :mod:`~policyqa.corpus.furniture` (page numbers, running headers and footers, 版头/版记 as
  metadata), :mod:`~policyqa.corpus.tables` (rows with their headers, merged cells expanded).
- :mod:`~policyqa.corpus.archive`: zip containers (.docx, .ofd) inflated with hard limits first.
- :mod:`~policyqa.corpus.uploads`: documents as a client gives them (files, JSON), checked.
- :mod:`~policyqa.corpus.text`: where text breaks (sentences, clauses, bigrams), for every stage.
- :mod:`~policyqa.corpus.chunker`: :class:`Chunker`, structure-aware passages with heading paths.
- :mod:`~policyqa.corpus.demo`: :func:`load_demo`, the built-in Qingdao demo corpus.

It imports nothing of policyqa but the settings (the import contracts in pyproject.toml).
"""

from .chunker import Chunker
from .demo import DEMO_PATH, load_demo
from .encoding import UnreadableFileError, decode_bytes, read_text
from .loaders import KNOWN_EXTENSIONS, JsonlFields, LoadReport, load_path, load_paths
from .metadata import (
    ExtractedMeta,
    doc_type_from_title,
    extract_date,
    extract_doc_number,
    extract_issuer,
    extract_metadata,
    extract_title,
    fill_missing,
    find_dates,
    find_doc_numbers,
    parse_date,
)
from .models import Chunk, DocMeta, Document, stable_id

__all__ = [
    "DEMO_PATH",
    "KNOWN_EXTENSIONS",
    "Chunk",
    "Chunker",
    "DocMeta",
    "Document",
    "ExtractedMeta",
    "JsonlFields",
    "LoadReport",
    "UnreadableFileError",
    "decode_bytes",
    "doc_type_from_title",
    "extract_date",
    "extract_doc_number",
    "extract_issuer",
    "extract_metadata",
    "extract_title",
    "fill_missing",
    "find_dates",
    "find_doc_numbers",
    "load_demo",
    "load_path",
    "load_paths",
    "parse_date",
    "read_text",
    "stable_id",
]
