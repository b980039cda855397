"""What is indexed for a chunk: the title (own or read from the text), heading path and text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from policyqa.corpus.models import Chunk, Document
from policyqa.index.ingest import index_title, passage_text
from policyqa.pipeline import build_index
from policyqa.settings import Settings
from tests.helpers import HashingEncoder

BODY = (
    "山西省人社厅推行服务事项“不见面、网上办” 记者2月10日从省人社厅获悉，该厅新梳理公布27项服务事项，"
    "推行“不见面”办理、网上办理，方便群众办事。"
)


def _chunk(text: str, heading: str = "") -> Chunk:
    return Chunk(id="c", doc_id="d", text=text, start=0, end=len(text), heading=heading, ordinal=0)


def test_index_title_is_the_documents_own_title_when_it_has_one() -> None:
    assert (
        index_title(Document(id="d", title=" 关于做好复工复产的通知 ", text=BODY)) == "关于做好复工复产的通知"
    )


def test_index_title_of_an_untitled_document_is_the_title_line_of_its_text() -> None:
    # a BEIR corpus line with an empty title: one line, title and body separated by a space
    assert index_title(Document(id="d", title="", text=BODY)) == "山西省人社厅推行服务事项“不见面、网上办”"
    assert index_title(Document(id="d", title="", text="")) == ""


def test_passage_text_carries_title_and_heading_once() -> None:
    title = "关于做好复工复产的通知"
    c = _chunk("对受疫情影响的企业给予补贴。", heading="二、支持措施 > （一）稳岗补贴")
    assert passage_text(c, title) == f"{title}\n二、支持措施 > （一）稳岗补贴\n对受疫情影响的企业给予补贴。"
    first = _chunk(f"{title} 各区：现通知如下。")
    assert passage_text(first, title) == first.text  # the chunk opens with the title already
    assert passage_text(c, title, title_in_chunk=False).startswith("二、支持措施")


class _Recorder(HashingEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.passages: list[str] = []

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.passages.extend(texts)
        return super().encode_passages(texts)


def test_untitled_documents_chunks_are_embedded_with_the_title_line(settings: Settings) -> None:
    s = settings.model_copy(
        update={"chunk_max_chars": 40, "chunk_overlap_chars": 0, "index_sentence_vectors": False}
    )
    enc = _Recorder()
    build_index([Document(id="d", title="", text=BODY)], s.index_dir, s, show_progress=False, encoder=enc)
    assert len(enc.passages) >= 2
    assert all(p.startswith("山西省人社厅推行服务事项“不见面、网上办”") for p in enc.passages)
