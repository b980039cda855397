"""Metadata of Chinese policy documents extracted from their text.

Pure functions, no I/O. Each one answers ``None`` rather than guessing when the text does not
say: a citation with a missing 发文字号 is better than one with a wrong one.

- :func:`find_doc_numbers` / :func:`extract_doc_number`: 发文字号 such as ``国发〔2024〕3号``,
  ``青政办字〔2023〕12号``, ``国办发[2020]6号`` (``[]``, ``［］``, ``（）``, ``【】`` brackets are
  normalised to ``〔〕``), ``国务院令第706号``, ``财政部 税务总局公告2020年第8号``,
  ``全国人民代表大会常务委员会公告第1号``.
- :func:`find_dates` / :func:`parse_date` / :func:`extract_date`: ``2024年2月18日``,
  ``2024-02-18``, ``2024/2/18``, ``2024.2.18``, ``二〇二四年二月十八日`` → ``2024-02-18``.
- :func:`extract_issuer`: 发文机关 from the title (``国务院办公厅关于…的通知``), the header
  (an organisation line, ``…文件`` red heads, a newspaper byline) or the signature block (an
  organisation line followed by a date line).
- :func:`extract_title` / :func:`first_sentence`: the title line, skipping bylines, red heads,
  doc-number and date lines.
- :func:`doc_type_from_title`: 通知, 意见, 办法, 条例 … from the title's ending.
- :func:`extract_metadata` / :func:`fill_missing`: all of the above at once.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from .models import DocMeta

__all__ = [
    "DocNumberMatch",
    "ExtractedMeta",
    "doc_type_from_title",
    "extract_date",
    "extract_doc_number",
    "extract_issuer",
    "extract_metadata",
    "extract_title",
    "fill_missing",
    "find_dates",
    "find_doc_numbers",
    "first_sentence",
    "is_org_name",
    "issuer_from_promulgation",
    "parse_date",
]

# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------

_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_CN_DIGIT = {"〇": 0, "○": 0, "零": 0, "Ｏ": 0, "O": 0, "o": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGIT.update({"六": 6, "七": 7, "八": 8, "九": 9, "两": 2})
_CJK = "\u4e00-\u9fff"
_WS = "\\s\u200b\ufeff"


_HAS_FULLWIDTH_DIGIT = re.compile("[０-９]")


def _ascii_digits(text: str) -> str:
    """Full-width digits → ASCII (same length, so offsets stay valid)."""
    if _HAS_FULLWIDTH_DIGIT.search(text) is None:
        return text
    return text.translate(_FULLWIDTH_DIGITS)


def _cn_number(text: str) -> int | None:
    """Value of a Chinese numeral up to the thousands (``十八`` → 18, ``二十一`` → 21)."""
    if not text:
        return None
    if text.isdigit():
        return int(_ascii_digits(text))
    total = 0
    current = 0
    units = {"十": 10, "百": 100, "千": 1000}
    for ch in text:
        if ch in _CN_DIGIT:
            current = _CN_DIGIT[ch]
        elif ch in units:
            total += (current or 1) * units[ch]
            current = 0
        else:
            return None
    return total + current


def _lines(text: str) -> list[str]:
    """Non-empty lines, stripped (zero-width spaces count as space)."""
    out = []
    for line in text.split("\n"):
        s = line.strip(" \t\r\f\v\u3000\xa0\u200b\ufeff")
        if s:
            out.append(s)
    return out


def _head_lines(text: str, window: int = 4000) -> list[str]:
    """:func:`_lines` of the start of ``text`` (a line cut by the window is left out)."""
    if len(text) <= window:
        return _lines(text)
    cut = text.rfind("\n", 0, window)
    return _lines(text[:cut] if cut > 0 else text[:window])  # no newline: one long line


def _tail_lines(text: str, window: int = 4000) -> list[str]:
    """:func:`_lines` of the end of ``text`` (a line cut by the window is left out)."""
    if len(text) <= window:
        return _lines(text)
    cut = text.find("\n", len(text) - window)
    return _lines(text[cut + 1 :] if cut >= 0 else text[-window:])


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------

_DATE_CN = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_DATE_SEP = re.compile(r"(?<![\d.])((?:19|20)\d{2})([-/.])(\d{1,2})\2(\d{1,2})(?![\d])")
_DATE_HANZI = re.compile(
    r"([〇○零Ｏ一二三四五六七八九]{4})\s*年\s*([一二三四五六七八九十]{1,3})\s*月\s*([一二三四五六七八九十]{1,3})\s*日"
)
_DATE_COMPACT = re.compile(r"^((?:19|20)\d{2})(\d{2})(\d{2})$")


def _iso(year: int, month: int, day: int) -> str | None:
    if not 1900 <= year <= 2099:
        return None
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def find_dates(text: str) -> list[tuple[str, int, int]]:
    """Every full date (year, month and day) in ``text``: ``(iso, start, end)`` in text order.

    Invalid dates (``2024年2月30日``) are skipped; a month and day without a year are not dates.
    """
    norm = _ascii_digits(text)
    found: list[tuple[str, int, int]] = []
    for m in _DATE_CN.finditer(norm):
        iso = _iso(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if iso:
            found.append((iso, m.start(), m.end()))
    for m in _DATE_SEP.finditer(norm):
        iso = _iso(int(m.group(1)), int(m.group(3)), int(m.group(4)))
        if iso:
            found.append((iso, m.start(), m.end()))
    for m in _DATE_HANZI.finditer(text):
        year_digits = [_CN_DIGIT.get(ch) for ch in m.group(1)]
        if any(d is None for d in year_digits):
            continue
        year = int("".join(str(d) for d in year_digits))
        month = _cn_number(m.group(2))
        day = _cn_number(m.group(3))
        if month is not None and day is not None:
            iso = _iso(year, month, day)
            if iso:
                found.append((iso, m.start(), m.end()))
    found.sort(key=lambda t: t[1])
    return found


def parse_date(value: str | None) -> str | None:
    """An ISO date from a metadata value (``2024-02-18 10:00``, ``2024年2月18日``, ``20240218`` …).

    The first full date found in ``value``; ``None`` when there is none (a bare year is not a date).
    """
    if not value:
        return None
    value = value.strip()
    m = _DATE_COMPACT.match(_ascii_digits(value))
    if m:
        return _iso(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    dates = find_dates(value)
    return dates[0][0] if dates else None


_DATE_LABEL = re.compile(
    r"(?:成文日期|发文日期|发布日期|印发日期|公布日期|发布时间|公开日期|日期)[ \t\u3000]*[:：][ \t\u3000]*"
)
_LINE_OPEN = "（(〔[【—–―-－ \u3000"
_LINE_CLOSE = "）)〕]】。. \u3000"


def _date_only(line: str) -> str | None:
    """The date when ``line`` is nothing but a date (possibly in brackets)."""
    core = line.strip(_LINE_OPEN + _LINE_CLOSE)
    dates = find_dates(core)
    if len(dates) == 1 and dates[0][1] == 0 and dates[0][2] == len(core):
        return dates[0][0]
    return None


def _leading_date(line: str) -> str | None:
    """The date a line starts with (after brackets or dashes): ``（2024年2月18日…通过）``."""
    core = line.lstrip(_LINE_OPEN)
    dates = find_dates(core[:24])
    if dates and dates[0][1] == 0:
        return dates[0][0]
    return None


def extract_date(text: str) -> str | None:
    """The document's own date (成文/发布日期) as ISO, or ``None``.

    In order: a labelled date (``发布日期：2024-02-18``) near the top; a date line in the
    signature block (last lines), or a date line under an organisation line further up (a
    notice printed before its attachment); a header line that starts with a date (``（2024年2月18日
    国务院第25次常务会议通过）``, ``——2022年3月5日在…会议上``); a date ending the text.
    Dates mentioned inside sentences (``自2024年1月1日起施行``) are never taken.
    """
    head = text[:3000]
    m = _DATE_LABEL.search(head)
    if m:
        dates = find_dates(head[m.end() : m.end() + 30])
        if dates and dates[0][1] == 0:
            return dates[0][0]
    for line in reversed(_tail_lines(text)[-6:]):
        iso = _date_only(line) if len(line) <= 40 else None
        if iso:
            return iso
    # a signature block further up (a notice that prints its attachment after it)
    head_lines = _head_lines(text, 6000)
    for prev, line in zip(head_lines, head_lines[1:], strict=False):
        if len(line) <= 40 and len(prev) <= 40:
            iso = _date_only(line)
            if iso and _issuers_in(prev):
                return iso
    for line in _head_lines(text)[:8]:
        if len(line) > 200:
            break
        iso = _leading_date(line)
        if iso:
            return iso
    tail = text.rstrip(" \t\n\u3000\xa0\u200b。.")[-40:]
    tail_dates = find_dates(tail)
    if tail_dates:
        iso, _start, end = tail_dates[-1]
        rest = tail[end:].strip(" \t\n\u3000\xa0。.")
        if _TAIL_REST_OK.match(rest):
            return iso
    return None


# --------------------------------------------------------------------------------------------
# 发文字号
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocNumberMatch:
    """A 发文字号 found in a text: its normalised form and where it was."""

    number: str
    start: int
    end: int


_NUM = "0-9零〇○一二三四五六七八九十百千"
_BRACKET = re.compile(
    rf"([{_CJK}]{{1,10}})[ \t\u3000]*[〔\[［（(【][ \t\u3000]*((?:19|20)\d{{2}})[ \t\u3000]*[〕\]］）)】]"
    r"[ \t\u3000]*第?[ \t\u3000]*(\d{1,5})[ \t\u3000]*号"
)
_DECREE = re.compile(
    rf"((?:[{_CJK}]{{2,30}}[、，])*[{_CJK}]{{2,30}}?)令[ \t\u3000]*第[ \t\u3000]*([{_NUM}]{{1,6}})[ \t\u3000]*号"
)
_ANNOUNCE_YEAR = re.compile(
    rf"((?:[{_CJK}]{{2,20}}[ \t\u3000、]+){{0,5}}[{_CJK}]{{2,20}}?)[ \t\u3000]*公告[ \t\u3000]*((?:19|20)\d{{2}})[ \t\u3000]*年[ \t\u3000]*"
    r"第[ \t\u3000]*(\d{1,4})[ \t\u3000]*号"
)
_ANNOUNCE_NO_YEAR = re.compile(
    rf"([{_CJK}]{{2,40}}?)公告[ \t\u3000]*第[ \t\u3000]*([{_NUM}]{{1,6}})[ \t\u3000]*号"
)
_BODY_NUMBER_HINT = re.compile(r"号(?:令|[ \t\u3000]*(?:公布|发布))")
#: ``海关总署第61号令``, ``杭州市人民代表大会常务委员会第25号公布``: an issuing body right before 第N号.
_BODY_NUMBER = re.compile(
    rf"([{_CJK}、]{{2,60}}?)第[ \t\u3000]*([{_NUM}]{{1,6}})[ \t\u3000]*号(令|(?=[ \t\u3000]*(?:公布|发布)))"
)

#: Words that precede a doc number in running text and are not part of it.
_LEAD_WORDS = (
    "根据",
    "依据",
    "按照",
    "依照",
    "参照",
    "对照",
    "贯彻",
    "落实",
    "执行",
    "印发",
    "转发",
    "下发",
    "发布",
    "公布",
    "通过",
    "经过",
    "经",
    "文件",
    "详见",
    "见",
    "即",
    "了",
    "以",
    "由",
    "是",
    "为",
    "在",
    "和",
    "与",
    "及",
)
_ABBR_STOP = re.compile("[的以即在对将把被了和与及或据照按由经见从并]")
_ABBR_STOP_WORDS = re.compile("通知|通告|公告|意见|办法|规定|决定|批复|方案|报告|文件|精神|要求|附件")
_DECREE_STOP = re.compile("[的以即在将把被了据按由见从并]")
_PRC = "中华人民共和国"


def _strip_lead_words(prefix: str) -> str:
    changed = True
    while changed and prefix:
        changed = False
        for word in _LEAD_WORDS:
            if prefix.startswith(word) and len(prefix) > len(word):
                prefix = prefix[len(word) :]
                changed = True
    return prefix


def _cut_at_stop(prefix: str, stop: re.Pattern[str]) -> str:
    last = None
    for m in stop.finditer(prefix):
        last = m
    if last is not None:
        prefix = prefix[last.end() :]
    return _strip_lead_words(prefix)


def _clean_decree_prefix(prefix: str) -> str:
    parts = re.split("[、，]", prefix)
    whole = _strip_lead_words(parts[0])
    if not (is_org_name(whole) or is_org_name(whole.removeprefix(_PRC))):
        parts[0] = _cut_at_stop(parts[0], _DECREE_STOP)
    else:
        parts[0] = whole
    cleaned = []
    for part in parts:
        if part.startswith(_PRC) and len(part) > len(_PRC):
            part = part[len(_PRC) :]
        cleaned.append(part)
    return "、".join(p for p in cleaned if p)


def find_doc_numbers(text: str) -> list[DocNumberMatch]:
    """Every 发文字号 in ``text``, normalised, in text order.

    Forms: ``X〔YYYY〕N号`` (any of ``〔〕 [] ［］ （） () 【】``, output with ``〔〕``),
    ``X令第N号``, ``X公告YYYY年第N号`` (joint issuers separated by spaces kept),
    ``X公告第N号`` where X names a body. A year, a phone number or ``第3号`` alone are not
    doc numbers.
    """
    if "号" not in text:
        return []
    norm = _ascii_digits(text)
    found: list[DocNumberMatch] = []
    taken: list[tuple[int, int]] = []
    has_announce = "公告" in norm

    def overlaps(start: int, end: int) -> bool:
        return any(start < e and s < end for s, e in taken)

    def add(number: str, start: int, end: int) -> None:
        if not overlaps(start, end):
            taken.append((start, end))
            found.append(DocNumberMatch(number, start, end))

    for m in _ANNOUNCE_YEAR.finditer(norm) if has_announce else ():
        raw_parts = [p for p in re.split(r"[ \t\u3000、]+", m.group(1)) if p]
        if not raw_parts:
            continue
        raw_parts[0] = _cut_at_stop(raw_parts[0], _DECREE_STOP)
        # keep the trailing run of parts that name bodies (joint announcements)
        keep: list[str] = []
        for part in reversed(raw_parts):
            if part and is_org_name(part):
                keep.insert(0, part)
            else:
                break
        if not keep:
            last = raw_parts[-1]
            if len(last) < 2:
                continue
            keep = [last]
        issuer = " ".join(keep)
        start = m.start(1) + m.group(1).rfind(keep[0])
        add(f"{issuer}公告{m.group(2)}年第{int(m.group(3))}号", start, m.end())

    for m in _BRACKET.finditer(norm):
        prefix = _cut_at_stop(_cut_at_stop(m.group(1), _ABBR_STOP), _ABBR_STOP_WORDS)
        if not prefix or prefix in ("公告", "令"):
            continue
        start = m.end(1) - len(prefix)
        add(f"{prefix}〔{m.group(2)}〕{int(m.group(3))}号", start, m.end())

    for m in _DECREE.finditer(norm) if "令" in norm else ():
        prefix = _clean_decree_prefix(m.group(1))
        if len(prefix) < 2:
            continue
        number = m.group(2)
        if number.isdigit():
            number = str(int(number))
        first = re.split("[、，]", m.group(1))[0]
        start = m.start(1) + len(first) - len(_clean_decree_prefix(first))
        add(f"{prefix}令第{number}号", start, m.end())

    for m in _ANNOUNCE_NO_YEAR.finditer(norm) if has_announce else ():
        prefix = _cut_at_stop(m.group(1), _DECREE_STOP)
        if prefix.startswith(_PRC) and len(prefix) > len(_PRC):
            prefix = prefix[len(_PRC) :]
        if not (is_org_name(prefix) or prefix.endswith("主席团")):
            continue
        number = m.group(2)
        if number.isdigit():
            number = str(int(number))
        add(f"{prefix}公告第{number}号", m.end(1) - len(prefix), m.end())

    for m in _BODY_NUMBER.finditer(norm) if _BODY_NUMBER_HINT.search(norm) else ():
        prefix = _clean_decree_prefix(m.group(1))
        if not all(is_org_name(p) for p in prefix.split("、")):
            continue
        number = m.group(2)
        if number.isdigit():
            number = str(int(number))
        first = re.split("[、，]", m.group(1))[0]
        start = m.start(1) + len(first) - len(_clean_decree_prefix(first))
        add(f"{prefix}令第{number}号" if m.group(3) else f"{prefix}第{number}号", start, m.end())

    found.sort(key=lambda d: d.start)
    return found


_DOC_NUMBER_LABEL = re.compile(r"(?:发文字号|文号|文件编号)[ \t\u3000]*[:：]")
_REFERENCE_CONTEXT = re.compile(r"根据|依据|按照|依照|参照|贯彻|落实|转发|印发|《|》")


def extract_doc_number(text: str) -> str | None:
    """The document's own 发文字号, or ``None``.

    A labelled number (``发文字号：…``); else a header line (first 10 lines) that holds nothing
    but a number (brackets and an issuer line around it allowed); else a number within the first
    150 characters that is not a reference to another document (``根据《…》（国发〔2020〕1号）``).
    """
    head = text[:3000]
    m = _DOC_NUMBER_LABEL.search(head)
    if m:
        nums = find_doc_numbers(head[m.end() : m.end() + 60])
        if nums:
            return nums[0].number
    for line in _head_lines(head)[:10]:
        if len(line) > 60:
            continue
        nums = find_doc_numbers(line)
        if len(nums) == 1:
            rest = (line[: nums[0].start] + line[nums[0].end :]).strip(" \t\u3000（）()〔〕[]【】")
            if not rest:
                return nums[0].number
    for num in find_doc_numbers(text[:150]):
        before = text[max(0, num.start - 40) : num.start]
        if not _REFERENCE_CONTEXT.search(before):
            return num.number
    return None


_PROMULGATION_ORG = re.compile(
    rf"(?:(?P<local>[{_CJK}]{{2,12}}?[省市区县州盟])第[{_NUM}]+届)?(?P<body>[{_CJK}]{{0,8}}?(?:全国)?人民代表大会(?:常务委员会)?)"
)


_MEETING_ORG = re.compile(rf"([{_CJK}]{{2,30}}?)(?:\d{{4}}年)?第[{_NUM}]+次[{_CJK}]{{0,4}}会议")


def issuer_from_promulgation(lines: list[str]) -> str | None:
    """The enacting body named in promulgation lines (``2018年11月6日 中华人民共和国国务院令第706号公布``).

    ``X令第N号`` → X (without ``中华人民共和国``); ``…最高人民法院审判委员会第N次会议通过`` →
    最高人民法院; ``…全国人民代表大会常务委员会第N次会议通过`` → 全国人民代表大会常务委员会;
    ``上海市第十五届人民代表大会常务委员会…`` → 上海市人民代表大会常务委员会. The last line
    that names one wins (the current version's enactor), except approval lines (``…批准``) after
    an enactor was found.
    """
    issuer: str | None = None
    repaired: list[str] = []
    for raw in lines:  # a date broken over two entries: "2014年9月26" + "日山东省…"
        if repaired and raw.startswith("日") and repaired[-1][-1:].isdigit():
            repaired[-1] += raw
        else:
            repaired.append(raw)
    for raw in repaired:
        if issuer is not None and "批准" in raw:
            continue  # the approving body (省人大常委会 for a city's regulation) is not the enactor
        line = _ascii_digits(raw)
        found: str | None = None
        nums = [n for n in find_doc_numbers(line) if "令第" in n.number]
        if nums:
            prefix = nums[-1].number.split("令第")[0]
            if prefix and not prefix.endswith(
                "主席"
            ):  # 主席令 promulgates what the NPC (standing committee) adopted
                found = prefix
        if found is None:
            for name in ("最高人民法院", "最高人民检察院"):
                if name in line:
                    found = name
                    break
        if found is None and "国务院" in line and ("常务会议" in line or "批准" in line or "发布" in line):
            found = "国务院"
        if found is None:
            for _iso_date, d_start, d_end in find_dates(line):
                line = line[:d_start] + " " * (d_end - d_start) + line[d_end:]
            m = _PROMULGATION_ORG.search(line)
            if m:
                body = m.group("body")
                body = body[body.find("全国") :] if "全国" in body else body
                local = m.group("local")
                if local:
                    found = _strip_lead_words(local) + body
                elif body.startswith("全国"):
                    found = body
        if found is None:
            for m2 in _MEETING_ORG.finditer(line):
                candidate = _strip_lead_words(m2.group(1))
                if candidate.startswith(_PRC):
                    candidate = candidate[len(_PRC) :]
                if is_org_name(candidate):
                    found = candidate
        if found:
            issuer = found
    return issuer


# --------------------------------------------------------------------------------------------
# organisations and issuers
# --------------------------------------------------------------------------------------------

_ORG_SUFFIXES = (
    "人民政府办公厅",
    "人民政府办公室",
    "人民政府",
    "人民代表大会",
    "主席团",
    "办公厅",
    "办公室",
    "委员会",
    "管委会",
    "常委会",
    "联合会",
    "贸促会",
    "协会",
    "商会",
    "工会",
    "总局",
    "总署",
    "海关",
    "指挥部",
    "领导小组",
    "工作组",
    "国务院",
    "法院",
    "检察院",
    "银行",
    "政府",
    "党委",
    "市委",
    "省委",
    "县委",
    "区委",
    "中央",
    "研究院",
    "科学院",
    "管理处",
)
_ORG_SINGLE = ("部", "委", "局", "厅", "署", "办", "院", "处")
#: Ordinary words that end like an organisation.
_NOT_ORG_ENDINGS = (
    "大局",
    "格局",
    "全局",
    "开局",
    "布局",
    "结局",
    "新局",
    "变局",
    "僵局",
    "残局",
    "棋局",
    "饭局",
    "骗局",
    "当局",
    "全部",
    "内部",
    "外部",
    "局部",
    "干部",
    "中部",
    "西部",
    "东部",
    "北部",
    "南部",
    "底部",
    "顶部",
    "头部",
    "腹部",
    "一部",
    "好处",
    "用处",
    "益处",
    "到处",
    "难处",
    "医院",
    "学院",
    "剧院",
    "庭院",
    "书院",
    "法院院",
    "合办",
    "举办",
    "主办",
    "承办",
    "创办",
    "开办",
    "兴办",
    "督办",
    "交办",
    "查办",
    "包办",
    "怎么办",
    "党中央",
)
_ORG_CHARS = re.compile(rf"^[{_CJK}（）()]+$")


def is_org_name(name: str) -> bool:
    """Whether ``name`` looks like the name of one issuing body (``青岛市人民政府``, ``财政部``)."""
    name = name.strip()
    if not 2 <= len(name) <= 40 or not _ORG_CHARS.match(name):
        return False
    if name.endswith(_NOT_ORG_ENDINGS):
        return False
    if name.endswith(_ORG_SUFFIXES):
        return True
    return len(name) >= 3 and name.endswith(_ORG_SINGLE)


def _issuers_in(line: str) -> str | None:
    """``line`` as one or more bodies separated by spaces or 、 (``财政部 税务总局``), else None."""
    parts = _merge_spaced([p for p in re.split(r"[\s、]+", line.strip()) if p])
    if not parts or len(parts) > 6:
        return None
    if all(is_org_name(p) for p in parts):
        return " ".join(parts)
    return None


_TITLE_ISSUER = re.compile(r"^(.{2,60}?)(?:关于|印发|转发)")
_MEETING_NAME = re.compile(rf"^(?:第[{_NUM}]+届)?(.+?)第[{_NUM}]+次(?:全体)?会议$")
_WORK_REPORT = re.compile(r"^(?:\d{4}年)?(?:中华人民共和国)?(.{2,30}?)政府工作报告$")
_RED_HEAD = re.compile(r"^(.{2,40}?)[ \t\u3000]*文件$")
_BYLINE = re.compile(
    r"^[□■◆●▲★]?[ \t\u3000]*([\u4e00-\u9fff]{2,10}?(?:日报|晚报|早报|商报|时报|新闻网|通讯社|新闻社|报社|电视台|广播电视台|融媒体中心))"
    r"(?:[/／、][^ \t\u3000]*)?[ \t\u3000]*(?:记者|通讯员|讯|电)"
)
_TAIL_REST_OK = re.compile(r"^(?:印发|发布|公布|[（(]此件[^）)]{0,10}[）)])?$")
_STOP_PHRASES = re.compile(r"特此(?:通告|公告|通知|函告|批复|公示)?|此复")


def _merge_spaced(parts: list[str]) -> list[str]:
    """``['财', '政', '部']`` (letter-spaced signature) → ``['财政部']``."""
    out: list[str] = []
    run = ""
    for part in parts:
        if len(part) == 1:
            run += part
            continue
        if run:
            out.append(run)
            run = ""
        out.append(part)
    if run:
        out.append(run)
    return out


def extract_issuer(text: str, title: str | None = None) -> str | None:
    """The 发文机关, or ``None``.

    In order: the title's part before ``关于/印发/转发`` when it names bodies
    (``国务院办公厅关于…的通知`` → 国务院办公厅); an organisation line or ``…文件`` red head in
    the first lines; a newspaper byline (``□青岛日报/观海新闻记者 …`` → 青岛日报); the signature
    block: an organisation line followed by a date line, or an organisation and a date ending the
    text.
    """
    if title:
        m = _TITLE_ISSUER.match(title.strip())
        if m:
            found = _issuers_in(m.group(1))
            if found:
                return found
            meeting = _MEETING_NAME.match(m.group(1))  # 第十四届全国人民代表大会第三次会议关于…的决议
            if meeting and is_org_name(meeting.group(1)):
                return meeting.group(1)
        report = _WORK_REPORT.match(title.strip())
        if report:
            body = report.group(1)
            if is_org_name(body):
                return body
            if is_org_name(body + "政府"):  # 青岛市 + 政府工作报告
                return body + "政府"
    lines = _head_lines(text)
    for line in lines[:12]:
        by = _BYLINE.match(line)
        if by:
            return by.group(1)
    for line in lines[:5]:
        if len(line) > 60:
            first = re.split(r"[ \t\u3000\xa0]+", line, maxsplit=1)[0]
            found = _issuers_in(first) if first != line and len(first) <= 40 else None
            if found:
                return found
            continue
        red = _RED_HEAD.match(line)
        if red:
            found = _issuers_in(red.group(1))
            if found:
                return found
        found = _issuers_in(line)
        if found:
            return found
    tail = _tail_lines(text)[-8:]
    if not tail:
        return None
    for i in range(len(tail) - 1, 0, -1):
        if len(tail[i]) <= 40 and _date_only(tail[i]):
            found = _issuers_in(tail[i - 1])
            if found:
                return found
    # organisation(s) and date ending the last line (one-line documents)
    last = tail[-1]
    window = last[-80:]
    dates = find_dates(window)
    if dates:
        _iso, start, end = dates[-1]
        rest = window[end:].strip(" \t\u3000\xa0。.")
        if _TAIL_REST_OK.match(rest):
            before = last[: len(last) - len(window) + start][-120:]
            before = _STOP_PHRASES.sub("。", before)
            segment = re.split(r"[。！？；：，,;:!?）)》」”\]]", before)[-1]
            parts = _merge_spaced([p for p in re.split(r"[\s、]+", segment) if p])
            for k in range(min(len(parts), 6), 0, -1):
                if all(is_org_name(p) for p in parts[-k:]):
                    return " ".join(parts[-k:])
    return None


# --------------------------------------------------------------------------------------------
# titles and document types
# --------------------------------------------------------------------------------------------

_BYLINE_START = re.compile(
    r"^(?:[□■◆●▲★]|本报记者|本报讯|记者|通讯员|来源[:：]|作者[:：]|发布时间|发布日期|编辑[:：]|责任编辑)"
)
_KEY_VALUE = re.compile(r"^[\u4e00-\u9fff]{2,6}[ \t\u3000]*[:：]")
_SENTENCE_END = re.compile(r"[。！？!?]")
_CLAUSE_BREAK = re.compile(r"[，、；：,;:]")
_SPACE_RUN = re.compile(r"\s+")
#: A first line that holds a title and the start of the body (``…的通知 各区市：…``).
_TITLE_BODY_MIX = re.compile(r"\S\s+\S[^。：:]*[。：:]")
_TITLE_SUFFIX_JOIN = re.compile(
    r"(?:通知|意见|办法|规定|条例|决定|公告|通告|批复|方案|法|报告|规划|计划|细则|函|措施|指引|纲要)$"
)


def first_sentence(text: str, max_chars: int = 60) -> str:
    """A title made from the start of ``text``: up to the first space run or sentence end.

    Space-separated issuer names before a ``关于…`` title are kept with it
    (``财政部 税务总局 关于…的公告``), as is the rest of a ``关于…`` title broken by a space.
    At most ``max_chars`` characters, cut at a comma or 、 when it must be shortened.
    """
    text = text.strip(" \t\n\u3000\xa0\u200b\ufeff")
    if not text:
        return ""
    segments = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[: max_chars * 3])][:8]
    end = len(text)
    if segments:
        end = segments[0][1]
        i = 0
        while i + 1 < len(segments):
            cur = text[segments[0][0] : end]
            nxt = text[segments[i + 1][0] : segments[i + 1][1]]
            seg = text[segments[i][0] : segments[i][1]]
            joins = (
                (is_org_name(seg) and (is_org_name(nxt) or nxt.startswith(("关于", "印发", "转发"))))
                or len(seg) < 4
                or (
                    "关于" in cur
                    and not _TITLE_SUFFIX_JOIN.search(cur)
                    and _TITLE_SUFFIX_JOIN.search(nxt) is not None
                )
            )
            if not joins or _SENTENCE_END.search(seg):
                break
            i += 1
            end = segments[i][1]
    se = _SENTENCE_END.search(text, 0, end)
    if se:
        end = se.end()
    cand = text[:end]
    for num in find_doc_numbers(cand):  # 关于…的通知人社部发〔2020〕11号
        if num.start > 0 and _TITLE_SUFFIX_JOIN.search(cand[: num.start].rstrip()):
            cand = cand[: num.start]
            break
    if len(cand) > max_chars:
        cut = None
        for m in _CLAUSE_BREAK.finditer(cand, 0, max_chars):
            if m.start() >= 10:
                cut = m.start()
        cand = cand[:cut] if cut else cand[:max_chars]
    return _SPACE_RUN.sub(" ", cand).rstrip("，、；：,;: ")


def _is_header_noise(line: str) -> bool:
    """Lines above a title that are not the title: bylines, red heads, numbers, dates, labels."""
    if _BYLINE_START.match(line) or _BYLINE.match(line):
        return True
    if len(line) <= 40 and _date_only(line):
        return True
    red = _RED_HEAD.match(line)
    if red and _issuers_in(red.group(1)):
        return True
    if len(line) <= 40 and not _TITLE_SUFFIX_JOIN.search(line) and find_doc_numbers(line):
        return True
    return bool(_KEY_VALUE.match(line) and len(line) <= 40)


def extract_title(text: str, max_chars: int = 80) -> str | None:
    """The title: the first line that is not a byline, red head, doc number, date or label line.

    A title broken over two lines (``国务院办公厅关于印发`` / ``《…》的通知``) is joined. A first
    line longer than ``max_chars`` (one-line documents) gives :func:`first_sentence` of it.
    """
    lines = _head_lines(text)[:10]
    for i, line in enumerate(lines):
        if _is_header_noise(line):
            continue
        if len(line) > max_chars or _TITLE_BODY_MIX.search(line):
            return first_sentence(line, min(max_chars, 60)) or None
        if (
            not _TITLE_SUFFIX_JOIN.search(line)
            and i + 1 < len(lines)
            and _TITLE_SUFFIX_JOIN.search(lines[i + 1])
            and len(line) + len(lines[i + 1]) <= max_chars
            and not _SENTENCE_END.search(line)
            and (line.endswith(("关于", "印发", "转发", "的", "和", "及", "《")) or "关于" in line)
        ):
            return line + lines[i + 1]
        if _issuers_in(line) and i + 1 < len(lines) and _TITLE_SUFFIX_JOIN.search(lines[i + 1]):
            continue  # an issuer line above the real title
        return line
    return None


#: Title endings → document type; longer endings first.
_DOC_TYPES: tuple[tuple[str, str], ...] = (
    ("政府工作报告", "报告"),
    ("实施细则", "细则"),
    ("实施办法", "办法"),
    ("暂行办法", "办法"),
    ("管理办法", "办法"),
    ("实施意见", "意见"),
    ("指导意见", "意见"),
    ("若干意见", "意见"),
    ("暂行规定", "规定"),
    ("若干规定", "规定"),
    ("实施方案", "方案"),
    ("工作方案", "方案"),
    ("行动方案", "方案"),
    ("行动计划", "计划"),
    ("工作要点", "要点"),
    ("若干措施", "措施"),
    ("政策措施", "措施"),
    ("宪法修正案", "宪法修正案"),
    ("修正案", "修正案"),
    ("司法解释", "司法解释"),
    ("的解释", "解释"),
    ("办法", "办法"),
    ("通知", "通知"),
    ("意见", "意见"),
    ("规定", "规定"),
    ("条例", "条例"),
    ("决定", "决定"),
    ("决议", "决议"),
    ("公告", "公告"),
    ("通告", "通告"),
    ("公报", "公报"),
    ("通报", "通报"),
    ("批复", "批复"),
    ("方案", "方案"),
    ("细则", "细则"),
    ("规则", "规则"),
    ("规划", "规划"),
    ("纲要", "纲要"),
    ("计划", "计划"),
    ("报告", "报告"),
    ("措施", "措施"),
    ("指引", "指引"),
    ("指南", "指南"),
    ("解释", "解释"),
    ("答复", "答复"),
    ("命令", "命令"),
    ("章程", "章程"),
    ("标准", "标准"),
    ("宪法", "宪法"),
    ("函", "函"),
    ("令", "令"),
    ("法", "法"),
)
_NUMBERED_TITLE = re.compile(rf"(令|公告|通告)(?:(?:19|20)\d{{2}}年)?第[{_NUM}]+号$")
_TRAILING_PAREN = re.compile(r"[（(][^（）()]{1,20}[）)]$")


def doc_type_from_title(title: str | None) -> str | None:
    """Document type from the title's ending (``…的通知`` → 通知, ``…管理办法（试行）`` → 办法)."""
    if not title:
        return None
    t = title.strip().rstrip("。 \u3000")
    for _ in range(2):  # （试行）, （2024年修订）, （草案）
        t2 = _TRAILING_PAREN.sub("", t).rstrip()
        if t2 == t:
            break
        t = t2
    t = t.rstrip("》」”")
    numbered = _NUMBERED_TITLE.search(t)  # …令第13号, …公告2020年第8号
    if numbered:
        return numbered.group(1)
    for ending, kind in _DOC_TYPES:
        if t.endswith(ending):
            if ending == "法" and t.endswith(
                ("方法", "做法", "说法", "看法", "想法", "用法", "手法", "算法", "语法")
            ):
                return None
            return kind
    return None


# --------------------------------------------------------------------------------------------
# everything at once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtractedMeta:
    """What :func:`extract_metadata` found; ``None`` where the text does not say."""

    title: str | None
    issuer: str | None
    doc_number: str | None
    date: str | None
    doc_type: str | None


def extract_metadata(text: str, title: str | None = None) -> ExtractedMeta:
    """Title, issuer, doc number, date and type from ``text`` (``title`` given wins for the title)."""
    found_title = title.strip() if title and title.strip() else extract_title(text)
    return ExtractedMeta(
        title=found_title,
        issuer=extract_issuer(text, found_title),
        doc_number=extract_doc_number(text),
        date=extract_date(text),
        doc_type=doc_type_from_title(found_title),
    )


def fill_missing(meta: DocMeta, text: str, title: str | None = None) -> DocMeta:
    """Fill the empty fields of ``meta`` (issuer, doc_number, date, doc_type) from ``text``.

    Fields already set are kept as they are. Returns ``meta`` (changed in place).
    """
    if meta.issuer and meta.doc_number and meta.date and meta.doc_type:
        return meta
    found = extract_metadata(text, title)
    if not meta.issuer:
        meta.issuer = found.issuer
    if not meta.doc_number:
        meta.doc_number = found.doc_number
    if not meta.date:
        meta.date = found.date
    if not meta.doc_type:
        meta.doc_type = found.doc_type
    return meta
