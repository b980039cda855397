"""Chunker: invariants (exact offsets, coverage, order, length), heading paths, packing rules."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from policyqa.corpus.chunker import Chunker, heading_of
from policyqa.corpus.loaders import load_path
from policyqa.corpus.models import Document
from policyqa.settings import Settings
from tests.corpus.invariants import check_invariants

INLINE = (
    "青岛市人民政府关于支持中小企业应对疫情平稳健康发展的若干措施 各区、市人民政府，市政府各部门，市直各单位： "
    "为深入贯彻落实党中央、国务院关于疫情防控工作的决策部署，帮助中小企业渡过难关，结合我市实际，制定以下措施。 "
    "一、加大金融支持 1．加大信贷投放力度。各银行业金融机构要确保2020年小微企业贷款余额不低于上年同期余额，"
    "对受疫情影响较大但有发展前景的中小企业，不得盲目抽贷、断贷、压贷；对到期还款有困难的企业，可予以展期或续贷。"
    "（责任单位：市地方金融监管局、人民银行青岛市中心支行） "
    "2．降低融资成本。鼓励银行业金融机构对中小企业贷款利率在上年同期基础上下浮10%以上，"
    "政府性融资担保机构对中小企业的担保费率降至1%以下。（责任单位：市财政局、市地方金融监管局） "
    "二、减轻企业负担 3．减免房屋租金。对承租国有企业经营性房产的中小企业，免收2月、3月两个月租金，4月至6月租金减半收取。"
    "（责任单位：市国资委） "
    "4．延期缴纳税款。因疫情影响不能按期缴纳税款的企业，可依法申请延期缴纳税款，最长不超过3个月。"
    "（责任单位：国家税务总局青岛市税务局） "
    "三、稳定职工队伍 5．落实稳岗返还政策。对不裁员或少裁员的中小企业，返还其上年度实际缴纳失业保险费的50%。"
    "（责任单位：市人力资源社会保障局、市财政局） "
    "本措施自发布之日起施行，有效期至疫情结束后3个月。 青岛市人民政府 2020年2月8日"
)


def _doc(text: str, title: str = "", doc_id: str = "doc") -> Document:
    return Document(id=doc_id, title=title, text=text)


# --------------------------------------------------------------------------------------------
# heading paths
# --------------------------------------------------------------------------------------------


def test_law_heading_paths_exact(corpus_data: Path) -> None:
    doc = next(load_path(corpus_data / "law.txt"))
    chunks = Chunker().split(doc)
    check_invariants(doc, chunks, 300)
    assert [(c.heading, c.text.split("\n")[0]) for c in chunks] == [
        ("第一章 总则 > 第一条", "中华人民共和国示范管理条例"),
        (
            "第一章 总则 > 第二条",
            "第二条\u3000在中华人民共和国境内从事示范管理活动，适用本条例；法律、行政法规另有规定的，从其规定。",
        ),
        ("第二章 管理职责 > 第一节 一般规定 > 第三条", "第二章\u3000管理职责"),
        (
            "第二章 管理职责 > 第一节 一般规定 > 第四条",
            "第四条\u3000有下列情形之一的，登记机关不予登记，并书面说明理由：",
        ),
        ("第二章 管理职责 > 第二节 监督检查 > 第五条", "第二节\u3000监督检查"),
        ("第三章 附则 > 第六条", "第三章\u3000附则"),
    ]
    # the items of an article stay in the article's chunk
    assert chunks[3].text.endswith("（三）法律、行政法规规定不予登记的其他情形。")


def test_markdown_law_heading_paths() -> None:
    text = (
        "## 第一编 总则\n\n### 第一章 基本规定\n\n第一条 为了保护民事主体的合法权益，调整民事关系，维护社会和经济秩序，制定本法。\n\n"
        "第二条 民法调整平等主体的自然人、法人和非法人组织之间的人身关系和财产关系。\n\n"
        "### 第二章 自然人\n\n#### 第一节 民事权利能力和民事行为能力\n\n"
        "第十三条 自然人从出生时起到死亡时止，具有民事权利能力，依法享有民事权利，承担民事义务。\n\n"
        "## 第二编 物权\n\n第二百零五条 本编调整因物的归属和利用产生的民事关系，适用本编的规定。\n\n"
        "## 附则\n\n本法自2021年1月1日起施行。本法施行后，婚姻法、继承法等法律同时废止。"
    )
    doc = _doc(text)
    chunks = Chunker().split(doc)
    check_invariants(doc, chunks, 300)
    assert [c.heading for c in chunks] == [
        "第一编 总则 > 第一章 基本规定 > 第一条",
        "第一编 总则 > 第一章 基本规定 > 第二条",
        "第一编 总则 > 第二章 自然人 > 第一节 民事权利能力和民事行为能力 > 第十三条",
        "第二编 物权 > 第二百零五条",
        "附则",
    ]


def test_policy_numbering_paths(corpus_data: Path) -> None:
    doc = next(load_path(corpus_data / "notice_gb18030.txt"))
    chunks = Chunker().split(doc)
    check_invariants(doc, chunks, 300)
    assert [c.heading for c in chunks] == [
        "",
        "一、加大金融支持力度 > （一）扩大出口信用保险覆盖面",
        "一、加大金融支持力度 > （二）加大信贷投放力度",
        "二、促进贸易便利化 > （三）提升通关效率",
    ]
    assert chunks[0].text.startswith("青岛市人民政府办公厅文件")
    assert chunks[-1].text.endswith("有效期至2024年12月31日。")


def test_no_newline_text_is_split_structurally() -> None:
    doc = _doc(INLINE, doc_id="ncpqa-like")
    assert "\n" not in INLINE
    chunks = Chunker().split(doc)
    check_invariants(doc, chunks, 300)
    assert [c.heading for c in chunks] == [
        "",
        "一、加大金融支持 > 1．加大信贷投放力度",
        "一、加大金融支持 > 2．降低融资成本",
        "二、减轻企业负担 > 3．减免房屋租金",
        "二、减轻企业负担 > 4．延期缴纳税款",
        "三、稳定职工队伍 > 5．落实稳岗返还政策",
    ]
    assert chunks[1].text.startswith("一、加大金融支持 1．加大信贷投放力度。")
    assert chunks[2].text.startswith("2．降低融资成本。")


def test_no_newline_inline_items_after_sentence_ends() -> None:
    text = (
        "关于做好复工复产工作的通知。一、总体要求。坚持防控和复工两手抓，确保企业安全有序复工复产，做到疫情防控和经济发展两不误。"
        "二、主要措施。（一）加强员工健康管理。企业要建立员工健康档案，每日开展体温检测并如实登记，发现异常及时报告。"
        "（二）落实防控物资保障。企业要储备口罩、消毒液等防控物资，保障员工上岗防护需要，并做好公共区域消毒。"
        * 2
    )
    doc = _doc(text)
    chunks = Chunker(max_chars=120).split(doc)
    check_invariants(doc, chunks, 120)
    headings = [c.heading for c in chunks]
    assert "二、主要措施 > （一）加强员工健康管理" in headings
    assert "二、主要措施 > （二）落实防控物资保障" in headings


def test_title_like_lines_between_paragraphs() -> None:
    text = (
        "新闻标题\n\n□青岛日报记者 王萌\n\n"
        "以高水平开放助推高质量发展\n\n“省委、省政府在春节假期后第一个工作日召开此次大会。”青岛海关关长表示，将认真落实会议精神。\n\n"
        "打造“投资青岛”招商品牌\n\n“大会围绕促进全省高水平开放作出安排部署。”市商务局负责人表示，将深入贯彻落实会议精神。\n\n"
        "短行但后面没有正文\n"
    )
    doc = _doc(text, title="新闻标题")
    chunks = Chunker(min_chars=0).split(doc)
    check_invariants(doc, chunks, 300)
    assert [c.heading for c in chunks] == ["", "以高水平开放助推高质量发展", "打造“投资青岛”招商品牌"]
    assert chunks[-1].text.endswith("短行但后面没有正文")


def test_broken_lines_are_not_headings() -> None:
    # wikisource-style link breaks: a short line inside a sentence is not a section title
    text = "根据《\n中共中央关于制定国民经济和社会发展第十个五年计划的建议\n》，提出了未来五年的奋斗目标。\n\n过去一年，经济运行总体平稳。"
    chunks = Chunker().split(_doc(text))
    assert [c.heading for c in chunks] == [""]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("## 第二章  总则", "第二章 总则"),
        ("第十条 为了……", "第十条"),
        ("第一百零一条之一 ……", "第一百零一条之一"),
        ("第三章　附则", "第三章 附则"),
        ("一、总体要求", "一、总体要求"),
        ("（一）加强组织领导。各地要……", "（一）加强组织领导"),
        ("1．加大信贷投放力度。各银行……", "1．加大信贷投放力度"),
        ("3、落实责任：各单位……", "3、落实责任"),
        ("(2) 做好宣传", "(2) 做好宣传"),
        ("① 申请表", "① 申请表"),
        ("（一）申请材料不齐全或者不符合法定形式的；", None),
        ("1.5万元以下的补贴，由市财政承担。", None),
        ("2020年是全面建成小康社会的决胜之年。", None),
        ("第三章规定的情形，由主管部门负责认定，并依法作出处理决定。", None),
        ("普通的一句话。", None),
    ],
)
def test_heading_of(line: str, expected: str | None) -> None:
    assert heading_of(line) == expected


# --------------------------------------------------------------------------------------------
# packing, splitting, merging
# --------------------------------------------------------------------------------------------


def test_short_document_is_one_chunk() -> None:
    doc = _doc("  各单位：\n\n请认真落实。  \n")
    chunks = Chunker().split(doc)
    assert [(c.text, c.start, c.end) for c in chunks] == [("各单位：\n\n请认真落实。", 2, 14)]


def test_empty_document() -> None:
    assert Chunker().split(_doc("")) == []
    assert Chunker().split(_doc(" \n\u3000\u200b\n")) == []


def test_paragraphs_packed_up_to_max_chars() -> None:
    paragraphs = [f"第{i}段内容，" + "字" * 40 + "。" for i in range(10)]
    doc = _doc("\n".join(paragraphs))
    chunks = Chunker(max_chars=150, overlap_chars=0).split(doc)
    check_invariants(doc, chunks, 150)
    # each paragraph is 47 or 48 characters: three fit with their line breaks
    assert [c.text.count("\n") + 1 for c in chunks] == [3, 3, 3, 1]
    assert all(c.text.startswith("第") and c.text.endswith("。") for c in chunks)


def test_long_paragraph_split_at_sentences_with_overlap() -> None:
    sentences = [f"第{i:02d}句话说明一项具体的措施。" for i in range(30)]  # 16 characters each
    doc = _doc("".join(sentences))
    chunks = Chunker(max_chars=100, overlap_chars=40, min_chars=0).split(doc)
    check_invariants(doc, chunks, 100)
    assert len(chunks) > 1
    ends = {m for m in range(len(doc.text)) if doc.text[m - 1 : m] == "。"}
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.end in ends and b.start in ({0} | ends), "pieces start and end at sentence boundaries"
        overlap = a.end - b.start
        assert 0 < overlap <= 40, "whole-sentence overlap of at most overlap_chars"


def test_no_overlap_across_paragraphs() -> None:
    doc = _doc("第一段的第一句话。第一段的第二句话。\n第二段的第一句话。第二段的第二句话。")
    chunks = Chunker(max_chars=20, overlap_chars=15, min_chars=0).split(doc)
    check_invariants(doc, chunks, 20)
    assert [c.text for c in chunks] == [
        "第一段的第一句话。第一段的第二句话。",
        "第二段的第一句话。第二段的第二句话。",
    ]


def test_overlong_sentence_split_at_commas_then_hard() -> None:
    clause = "在确保疫情防控措施落实到位的前提下"  # 17 characters
    text = "，".join([clause] * 12) + "。" + "无" * 250
    doc = _doc(text)
    chunks = Chunker(max_chars=60, overlap_chars=0, min_chars=0).split(doc)
    check_invariants(doc, chunks, 60)
    comma_cut = [c for c in chunks if c.end <= text.index("。")]
    assert all(c.text.endswith("，") for c in comma_cut)
    hard = [c for c in chunks if c.start > text.index("。")]
    assert [len(c.text) for c in hard] == [60, 60, 60, 60, 10]


def test_hard_cut_prefers_spaces_in_latin_text() -> None:
    text = " ".join(["enterprise"] * 40)
    doc = _doc(text)
    chunks = Chunker(max_chars=50, overlap_chars=0, min_chars=0).split(doc)
    check_invariants(doc, chunks, 50)
    assert all(c.text.replace(" ", "").replace("enterprise", "") == "" for c in chunks), "words are never cut"


def test_small_trailing_piece_merged_into_previous() -> None:
    doc = _doc(
        "第一条 为了规范示范管理活动，保护公民、法人和其他组织的合法权益，制定本办法。\n\n第二条 本办法自公布之日起施行。"
    )
    chunks = Chunker(min_chars=30).split(doc)
    assert len(chunks) == 1
    assert chunks[0].heading == ""  # two articles: the common part of their paths
    chunks = Chunker(min_chars=0).split(doc)
    assert [c.heading for c in chunks] == ["第一条", "第二条"]


def test_small_header_merges_forward_keeping_the_path() -> None:
    doc = _doc(
        "示范条例\n\n## 第一章 总则\n\n第一条 为了规范示范管理活动，保护公民、法人和其他组织的合法权益，制定本条例。",
        title="示范条例",
    )
    chunks = Chunker().split(doc)
    assert len(chunks) == 1
    assert chunks[0].heading == "第一章 总则 > 第一条"
    assert chunks[0].start == 0


def test_chunk_ids_are_stable_and_position_based() -> None:
    doc = _doc(INLINE, doc_id="d1")
    first = Chunker().split(doc)
    again = Chunker().split(Document(id="d1", title="", text=INLINE))
    assert [c.id for c in first] == [c.id for c in again]
    # an edit at the end keeps the ids of the chunks before it
    edited = Chunker().split(Document(id="d1", title="", text=INLINE + " 附件：申请表"))
    assert [c.id for c in edited[:3]] == [c.id for c in first[:3]]


# --------------------------------------------------------------------------------------------
# token limit
# --------------------------------------------------------------------------------------------


def _count_tokens(texts: list[str]) -> list[int]:
    # a stand-in tokenizer: every CJK character two tokens, anything else one
    return [sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in t) for t in texts]


def test_token_limit_splits_further() -> None:
    doc = _doc(INLINE)
    chunker = Chunker(max_chars=300, token_counter=_count_tokens, max_tokens=100)
    chunks = chunker.split(doc)
    check_invariants(doc, chunks, 300)
    assert max(_count_tokens([c.text for c in chunks])) <= 100
    assert len(chunks) > len(Chunker().split(doc))


def test_token_limit_on_unpunctuated_text() -> None:
    doc = _doc("字" * 500)
    chunks = Chunker(max_chars=300, token_counter=_count_tokens, max_tokens=64).split(doc)
    check_invariants(doc, chunks, 300)
    assert max(_count_tokens([c.text for c in chunks])) <= 64


def test_counter_must_answer_per_text() -> None:
    chunker = Chunker(token_counter=lambda texts: [1], max_tokens=10)
    with pytest.raises(ValueError, match="counts"):
        chunker.split(_doc("第一段。\n" * 200))


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def test_from_settings() -> None:
    settings = Settings(chunk_max_chars=200, chunk_overlap_chars=20, chunk_min_chars=10)
    chunker = Chunker.from_settings(settings)
    assert (chunker.max_chars, chunker.overlap_chars, chunker.min_chars) == (200, 20, 10)
    assert chunker.token_counter is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_chars": 5},
        {"max_chars": 100, "overlap_chars": 100},
        {"overlap_chars": -1},
        {"min_chars": -1},
        {"max_chars": 100, "min_chars": 101},
        {"max_tokens": 100},
        {"max_tokens": 0, "token_counter": _count_tokens},
    ],
)
def test_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Chunker(**kwargs)  # type: ignore[arg-type]


def test_counter_without_limit_is_ignored() -> None:
    assert Chunker(token_counter=_count_tokens).token_counter is None


# --------------------------------------------------------------------------------------------
# invariants on generated text
# --------------------------------------------------------------------------------------------

_PIECES = [
    "为进一步优化营商环境，",
    "结合本市实际，制定本办法。",
    "企业应当依法履行安全生产主体责任；",
    "对违反本条例规定的，由主管部门责令改正！",
    "是否需要提前申报？",
    "“船边直提”“抵港直装”模式。”",
    "（责任单位：市商务局、市财政局）",
    "2024年2月18日",
    "GB/T 26341-2010 残疾人残疾分类和分级",
    "COVID-19 prevention measures apply.",
    "无标点的很长一段文字" * 9,
    "0.5个百分点",
]
_STARTS = ["", "一、", "（二）", "3．", "4、", "(5)", "①", "第十条 ", "第二章 ", "## ", "# ", "第一节 "]
_SEPARATORS = ["\n", "\n\n", " ", "\u3000\u3000", "\xa0 ", "", "\r\n", "\n \n", "\u200b\n"]


def _random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 40)):
        paragraph = rng.choice(_STARTS) + "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 8)))
        parts.append(paragraph)
        parts.append(rng.choice(_SEPARATORS))
    if rng.random() < 0.3:
        parts.append("字" * rng.randint(1, 700))
    return rng.choice(["", " ", "\n\n"]) + "".join(parts)


@pytest.mark.parametrize("seed", range(60))
def test_invariants_on_generated_text(seed: int) -> None:
    rng = random.Random(seed)
    max_chars = rng.choice([20, 50, 120, 300, 600])
    overlap = rng.choice([0, 5, 40, max_chars // 2])
    min_chars = rng.choice([0, 10, 30, max_chars])
    text = _random_text(rng)
    doc = _doc(text, title=rng.choice(["", text[:10].strip()]))
    chunker = Chunker(
        max_chars=max_chars, overlap_chars=min(overlap, max_chars - 1), min_chars=min(min_chars, max_chars)
    )
    check_invariants(doc, chunker.split(doc), max_chars)


@pytest.mark.parametrize("seed", range(10))
def test_invariants_with_token_limit_on_generated_text(seed: int) -> None:
    rng = random.Random(1000 + seed)
    doc = _doc(_random_text(rng))
    chunks = Chunker(max_chars=200, token_counter=_count_tokens, max_tokens=rng.choice([16, 60, 200])).split(
        doc
    )
    check_invariants(doc, chunks, 200)


def test_invariants_on_fixture_files(corpus_data: Path) -> None:
    for doc in load_path(corpus_data):
        for chunker in (Chunker(), Chunker(max_chars=60, overlap_chars=20, min_chars=10)):
            check_invariants(doc, chunker.split(doc), chunker.max_chars)
