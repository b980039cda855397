"""What a question asks for: a date, an amount, an issuing body, a place, or a sentence; and
where such typed expressions are in a text (:func:`find_typed_spans`)."""

from __future__ import annotations

import re

from .types import AnswerType

__all__ = ["expected_type", "find_typed_spans", "question_unit"]


_AMOUNT_Q = re.compile(
    r"多少|多大|多高|多长|多久|几[个项条家人户天日年月次批所名元亿万]|比例|金额|额度|数量|几成|多少钱"
)
_DATE_Q = re.compile(r"何时|什么时[候间]|哪一?天|哪一?年|几月|几号|何日|哪个时间|截至?止?到?什么|期限是|起止")
_ORG_Q = re.compile(
    r"哪个部门|哪些部门|哪个单位|哪些单位|哪家|哪个机构|哪些机构|什么部门|什么机构|什么单位|由谁|谁"
)
_PLACE_Q = re.compile(r"哪里|哪儿|什么地方|何地|哪个地方|在哪|地点|哪个城市|哪个省|哪个区")

_CN_NUM = "零〇一二两三四五六七八九十百千万亿半"
_UNIT = (
    r"(?:万亿元|亿元|万元|千元|百元|元|美元|%|％|个百分点|倍|个月|年|月|天|日|小时|分钟|周|"
    r"户|家|人次|人|名|位|个|项|条|件|批|次|所|台|套|辆|架|吨|千克|公斤|立方米|平方米|亩|公里|千米|米|"
    r"张|份|只|副|双|箱|包|盒|支|瓶|剂|床|间|元/[^\s，。]{1,3})?"
)
_AMOUNT = re.compile(
    r"(?:约|近|超过|不超过|不低于|达到?|最高|最低|共计?|累计|合计|总计|逾|高达)?"
    rf"(?:\d+(?:[.,]\d+)*(?:\s*[万亿千百])*|[{_CN_NUM}]{{1,6}}(?=[万亿千百元个项条家人户天日年月次批所名%]))"
    rf"(?:\s*[-~至到—]\s*\d+(?:\.\d+)?)?\s*{_UNIT}(?:以上|以下|以内|左右|多)?"
)
_ONE_DATE = r"(?:\d{4}年(?:\d{1,2}月(?:\d{1,2}日)?)?|\d{1,2}月\d{1,2}日|\d{1,2}月(?:份|底|中旬|上旬|下旬)?)(?:\d{1,2}[时点])?"
_DATE = re.compile(
    rf"{_ONE_DATE}(?:\s*(?:起)?(?:至|到|—|-|~)\s*{_ONE_DATE})?(?:起|前|以前|之前|后|以后|底)?"
    r"|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|[一二三四]季度|上半年|下半年|年底|年内|月底|春节前|节后"
)
_ORG_SUFFIX = re.compile(
    r"(?:部|局|委员会|委|厅|办公室|办公厅|办|署|院|中心|公司|银行|集团|协会|政府|法院|检察院|大学|"
    r"医院|管委会|工作组|指挥部|领导小组|联合会|商会|基金会|研究所|所|站|馆|总队|支队)$"
)
_PLACE_SUFFIX = re.compile(
    r"(?:省|市|区|县|镇|乡|村|街道|园区|开发区|新区|自贸区|片区|港|机场|口岸|广场|中心|馆)$"
)
_ORG_PARTS = frozenset({"n", "nt", "ns", "nz", "j", "vn", "nr", "l", "b", "an", "ng", "zg"})
_PLACE_PARTS = frozenset({"ns", "n", "nz", "j", "l", "b", "f"})


_UNIT_Q = re.compile(r"(?:多少|几)([个项条家人户天日年月次批所名元件台套辆吨亩倍]|万元|亿元|元|%)")


def question_unit(question: str) -> str:
    """The unit a 多少/几 question names (多少个 → 个), or ''."""
    m = _UNIT_Q.search(question)
    return m.group(1) if m else ""


def expected_type(question: str) -> AnswerType:
    """What a question asks for: ``date``, ``amount``, ``organization``, ``place`` or ``sentence``."""
    q = question.strip()
    if _DATE_Q.search(q):
        return "date"
    if _AMOUNT_Q.search(q):
        return "amount"
    if _ORG_Q.search(q):
        return "organization"
    if _PLACE_Q.search(q):
        return "place"
    return "sentence"


def _posseg(text: str) -> list[tuple[str, str, int, int]]:
    import jieba.posseg

    out: list[tuple[str, str, int, int]] = []
    pos = 0
    for pair in jieba.posseg.cut(text, HMM=True):
        word, flag = pair.word, pair.flag
        start = text.find(word, pos)
        if start < 0:
            start = pos
        out.append((word, flag, start, start + len(word)))
        pos = start + len(word)
    return out


def _noun_phrases(text: str, suffix: re.Pattern[str], parts: frozenset[str]) -> list[tuple[int, int]]:
    """Runs of noun-like tokens that end with a token matching ``suffix`` (jieba POS)."""
    toks = _posseg(text)
    spans: list[tuple[int, int]] = []
    for i, (word, flag, _s, e) in enumerate(toks):
        if not (suffix.search(word) or flag in ("nt", "ns") and suffix.pattern == _PLACE_SUFFIX.pattern):
            continue
        if flag.startswith(("v", "p", "c", "u", "x", "r", "d")) and flag not in ("vn",):
            continue
        j = i
        while (
            j > 0 and toks[j - 1][1] in parts and i - j < 7 and toks[j - 1][0] not in ("和", "与", "及", "等")
        ):
            j -= 1
        start = toks[j][2]
        if e - start >= 2:
            spans.append((start, e))
    return spans


_RANGE_JOIN = re.compile(r"\s*(?:至|到|～|~|—|－|-)\s*")


def _with_ranges(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` plus every range of two consecutive ones (2020年1月1日至2020年6月30日,
    200万元至300万元): a 至/到/~ between them and nothing else."""
    ranges = [
        (a, d) for (a, b), (c, d) in zip(spans, spans[1:], strict=False) if _RANGE_JOIN.fullmatch(text, b, c)
    ]
    return spans + ranges


def find_typed_spans(text: str, kind: AnswerType) -> list[tuple[int, int]]:
    """Spans of ``text`` that are a date, an amount (either also as a range of two), an
    organisation or a place."""
    if kind == "amount":
        return _with_ranges(
            text,
            [
                (m.start(), m.end())
                for m in _AMOUNT.finditer(text)
                if any(ch.isdigit() or ch in _CN_NUM for ch in m.group())
            ],
        )
    if kind == "date":
        return _with_ranges(text, [(m.start(), m.end()) for m in _DATE.finditer(text) if len(m.group()) >= 2])
    if kind == "organization":
        return _noun_phrases(text, _ORG_SUFFIX, _ORG_PARTS)
    if kind == "place":
        return _noun_phrases(text, _PLACE_SUFFIX, _PLACE_PARTS)
    return []


# --------------------------------------------------------------------------------------------
# span scoring
