"""Golden cases of metadata extraction: 发文字号, dates, issuer, title, type."""

from __future__ import annotations

import pytest

from policyqa.corpus.metadata import (
    doc_type_from_title,
    extract_date,
    extract_doc_number,
    extract_issuer,
    extract_metadata,
    extract_title,
    fill_missing,
    find_dates,
    find_doc_numbers,
    first_sentence,
    is_org_name,
    issuer_from_promulgation,
    parse_date,
)
from policyqa.corpus.models import DocMeta

# --------------------------------------------------------------------------------------------
# 发文字号
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("国发〔2024〕3号", "国发〔2024〕3号"),
        ("青政办字〔2023〕12号", "青政办字〔2023〕12号"),
        ("国办发[2020]6号", "国办发〔2020〕6号"),
        ("国办发［2020］6号", "国办发〔2020〕6号"),
        ("京政发（2020）7号", "京政发〔2020〕7号"),
        ("鲁政办字(2021)15号", "鲁政办字〔2021〕15号"),
        ("税总发〔2020〕第14号", "税总发〔2020〕14号"),
        ("国办发明电〔2020〕5号", "国办发明电〔2020〕5号"),
        ("国卫办医函〔2020〕83号", "国卫办医函〔2020〕83号"),
        ("法释〔2021〕11号", "法释〔2021〕11号"),
        ("国发〔２０２４〕３号", "国发〔2024〕3号"),
        ("国务院令第706号", "国务院令第706号"),
        ("中华人民共和国国务院令第706号", "国务院令第706号"),
        ("中华人民共和国国务院令 第 706 号", "国务院令第706号"),
        ("中华人民共和国主席令第三号", "主席令第三号"),
        ("国家发展和改革委员会令第1号", "国家发展和改革委员会令第1号"),
        ("中华人民共和国对外贸易经济合作部令第3号", "对外贸易经济合作部令第3号"),
        (
            "中华人民共和国国务院、中华人民共和国中央军事委员会令第290号",
            "国务院、中央军事委员会令第290号",
        ),
        ("海关总署第61号令", "海关总署令第61号"),
        ("财政部 税务总局公告2020年第8号", "财政部 税务总局公告2020年第8号"),
        ("国家税务总局公告2020年第4号", "国家税务总局公告2020年第4号"),
        ("海关总署公告2020年第17号", "海关总署公告2020年第17号"),
        ("全国人民代表大会常务委员会公告第1号", "全国人民代表大会常务委员会公告第1号"),
        ("浙江省第十二届人民代表大会常务委员会公告第５号", "浙江省第十二届人民代表大会常务委员会公告第5号"),
        (
            "江西省新型冠状病毒感染的肺炎疫情防控应急指挥部令第13号",
            "江西省新型冠状病毒感染的肺炎疫情防控应急指挥部令第13号",
        ),
    ],
)
def test_doc_number_forms(text: str, expected: str) -> None:
    assert [m.number for m in find_doc_numbers(text)] == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("根据国发〔2024〕3号文件精神", "国发〔2024〕3号"),
        ("按照青政办字〔2023〕12号要求", "青政办字〔2023〕12号"),
        ("1993年8月7日 最高人民法院以法发〔1993〕15号通知印发", "法发〔1993〕15号"),
        ("关于阶段性减免企业社会保险费的通知人社部发〔2020〕11号", "人社部发〔2020〕11号"),
        ("2018年11月6日 中华人民共和国国务院令第706号公布", "国务院令第706号"),
        ("（交运明电〔2020〕37号）", "交运明电〔2020〕37号"),
    ],
)
def test_doc_number_in_running_text(text: str, expected: str) -> None:
    found = find_doc_numbers(text)
    assert [m.number for m in found] == [expected]
    assert text[found[0].start : found[0].end].endswith("号")


@pytest.mark.parametrize(
    "text",
    [
        "第3号",
        "公告第3号",
        "联系电话：0532-85911234",
        "2024年",
        "（2024）",
        "国发〔2024〕",
        "第二批储备冻猪肉投放市场",
        "3号楼2单元",
        "本办法自2024年1月1日起施行。",
        "",
    ],
)
def test_not_doc_numbers(text: str) -> None:
    assert find_doc_numbers(text) == []


def test_several_doc_numbers_in_order() -> None:
    text = "根据《国务院关于…的通知》（国发〔2020〕1号）和《关于…的公告》（财政部 税务总局公告2020年第8号）"
    assert [m.number for m in find_doc_numbers(text)] == ["国发〔2020〕1号", "财政部 税务总局公告2020年第8号"]


def test_own_doc_number_from_header_line() -> None:
    text = "青岛市人民政府办公厅文件\n\n青政办字〔2023〕12号\n\n青岛市人民政府办公厅关于…的通知\n正文。"
    assert extract_doc_number(text) == "青政办字〔2023〕12号"


def test_own_doc_number_in_brackets_line() -> None:
    assert extract_doc_number("国务院关于…的通知\n（国发〔2024〕3号）\n各省：") == "国发〔2024〕3号"


def test_labelled_doc_number() -> None:
    text = "索引号：000014349/2024-00012\n发文字号：国办发〔2024〕5号\n标题：…"
    assert extract_doc_number(text) == "国办发〔2024〕5号"


def test_referenced_doc_number_is_not_own() -> None:
    text = "各区市：\n根据《国务院办公厅关于推动外贸稳规模优结构的意见》（国办发〔2023〕10号）精神，结合我市实际，现提出如下措施。"
    assert extract_doc_number(text) is None


def test_doc_number_in_one_line_header() -> None:
    text = "关于充分发挥税收职能作用的通知 税总发〔2020〕14号 国家税务总局各省、自治区税务局：为贯彻落实……"
    assert extract_doc_number(text) == "税总发〔2020〕14号"


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024年2月18日", "2024-02-18"),
        ("2024年02月08日", "2024-02-08"),
        ("2024 年 2 月 18 日", "2024-02-18"),
        ("2024-02-18", "2024-02-18"),
        ("2024/2/18", "2024-02-18"),
        ("2024.2.18", "2024-02-18"),
        ("二〇二四年二月十八日", "2024-02-18"),
        ("二○二○年十二月三十一日", "2020-12-31"),
        ("一九九三年八月七日", "1993-08-07"),
        ("１９９３年８月７日", "1993-08-07"),
        ("2024-02-18 10:30:00", "2024-02-18"),
        ("20240218", "2024-02-18"),
    ],
)
def test_parse_date(text: str, expected: str) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2024年", "2月18日", "2024年2月30日", "2024-13-01", "v1.2.3", "0532-85911234", "", None, "1850年1月1日"],
)
def test_not_dates(text: str | None) -> None:
    assert parse_date(text) is None


def test_find_dates_offsets() -> None:
    text = "自2024年1月1日起施行，2023-12-29公布。"
    assert find_dates(text) == [("2024-01-01", 1, 10), ("2023-12-29", 14, 24)]


def test_date_from_signature_block() -> None:
    text = "各区市：\n现将有关事项通知如下。\n自2024年1月1日起施行。\n\n青岛市人民政府\n2023年12月20日\n\n（此件公开发布）"
    assert extract_date(text) == "2023-12-20"


def test_date_in_hanzi_signature() -> None:
    assert extract_date("……特此通知。\n\n国务院办公厅\n二〇二四年二月十八日") == "2024-02-18"


def test_date_from_header_line() -> None:
    assert (
        extract_date("国务院关于…的决定\n（2024年2月18日国务院第25次常务会议通过）\n第一条……") == "2024-02-18"
    )
    assert (
        extract_date("政府工作报告\n——2022年3月5日在第十三届全国人民代表大会第五次会议上\n各位代表：")
        == "2022-03-05"
    )


def test_labelled_date() -> None:
    assert extract_date("标题：关于…的通知\n发布日期：2020-02-10\n正文……") == "2020-02-10"


def test_date_ending_one_line_text() -> None:
    text = "关于…的通知 各区：为做好疫情防控工作，现通知如下。一、……。 国家税务总局 2020年2月10日"
    assert extract_date(text) == "2020-02-10"
    assert extract_date(text + " （此件公开发布）") == "2020-02-10"


def test_dates_inside_sentences_are_not_the_document_date() -> None:
    text = "第一条 为了……制定本办法。\n第二条 本办法自2024年1月1日起施行，2018年3月1日发布的办法同时废止。"
    assert extract_date(text) is None


def test_signature_before_attachment() -> None:
    text = (
        "青岛市人民政府办公厅关于印发…的通知\n各区市：\n现印发给你们，请认真贯彻执行。\n"
        "青岛市人民政府办公厅\n2023年6月5日\n（此件公开发布）\n" + "附件正文一段。\n" * 10
    )
    assert extract_date(text) == "2023-06-05"


# --------------------------------------------------------------------------------------------
# issuers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("国务院办公厅关于进一步优化营商环境的意见", "国务院办公厅"),
        ("青岛市人民政府办公厅关于印发青岛市促进外贸稳规模优结构若干措施的通知", "青岛市人民政府办公厅"),
        ("财政部 税务总局关于支持新型冠状病毒感染的肺炎疫情防控有关税收政策的公告", "财政部 税务总局"),
        ("国家卫生健康委办公厅关于进一步加强县域医疗救治工作的通知", "国家卫生健康委办公厅"),
        ("市商务局关于做好外资企业复工复产服务的通知", "市商务局"),
        ("商务部印发《关于推动商务领域企业有序复工复产的通知》", "商务部"),
        ("国务院办公厅转发国家发展改革委关于…的通知", "国务院办公厅"),
        ("第十四届全国人民代表大会第三次会议关于政府工作报告的决议", "全国人民代表大会"),
        ("2025年中华人民共和国国务院政府工作报告", "国务院"),
    ],
)
def test_issuer_from_title(title: str, expected: str) -> None:
    assert extract_issuer("", title) == expected


def test_issuer_from_red_head() -> None:
    assert extract_issuer("青岛市人民政府文件\n\n青政发〔2024〕3号\n\n关于…的通知") == "青岛市人民政府"


def test_issuer_from_header_org_line() -> None:
    assert extract_issuer("中华人民共和国海关总署\n公告\n为……") == "中华人民共和国海关总署"


def test_issuer_from_signature_block() -> None:
    text = "关于做好春节期间安全生产工作的通知\n各有关单位：\n请认真落实。\n\n青岛市应急管理局\n2024年2月5日"
    assert extract_issuer(text, "关于做好春节期间安全生产工作的通知") == "青岛市应急管理局"


def test_joint_issuers_ending_one_line_text() -> None:
    text = "关于阶段性减免企业社会保险费的通知 各省：……确保各项政策措施落实到位。 人力资源社会保障部\u2002财政部\u2002税务总局 2020年2月20日"
    assert extract_issuer(text, "关于阶段性减免企业社会保险费的通知") == "人力资源社会保障部 财政部 税务总局"


def test_letter_spaced_signature() -> None:
    text = (
        "关于…的通知 各省：……坚决打赢疫情防控阻击战。 \u3000\u3000财 \xa0政 \xa0部 \u3000\u30002020年1月31日"
    )
    assert extract_issuer(text, "关于…的通知") == "财政部"


def test_issuer_from_newspaper_byline() -> None:
    text = "稳扎稳打有干头\n\n新春开新局\n\n□青岛日报/观海新闻记者 刘兰星 杨光\n\n正文……"
    assert extract_issuer(text, "稳扎稳打有干头") == "青岛日报"


@pytest.mark.parametrize(
    "text",
    [
        "全力服务发展大局。加强协作。\n\n下一步，将加强项目招引谋划。",
        "关于做好春节期间安全生产工作的通知\n各有关单位：\n请认真落实。",
        "",
    ],
)
def test_no_issuer(text: str) -> None:
    assert extract_issuer(text, extract_title(text)) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("青岛市人民政府", True),
        ("财政部", True),
        ("国家税务总局南阳市税务局", True),
        ("青岛海关", True),
        ("市发展改革委", True),
        ("全国人民代表大会常务委员会", True),
        ("四川省应对新型冠状病毒肺炎疫情应急指挥部", True),
        ("全力服务发展大局", False),
        ("新格局", False),
        ("内部", False),
        ("全省高水平开放暨高质量招商引资大会", False),
        ("青岛市人民政府，", False),
        ("部", False),
    ],
)
def test_is_org_name(name: str, expected: bool) -> None:
    assert is_org_name(name) is expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["2018年9月6日 国务院第23次常务会议修订通过", "2018年11月6日 中华人民共和国国务院令第706号公布"],
            "国务院",
        ),
        (
            [
                "2002年8月29日 第九届全国人民代表大会常务委员会第二十九次会议通过",
                "2002年8月29日 中华人民共和国主席令第七十三号公布",
            ],
            "全国人民代表大会常务委员会",
        ),
        (["2021年5月31日 最高人民法院审判委员会第1840次会议通过", "法释〔2021〕11号"], "最高人民法院"),
        (
            ["2020年5月14日 上海市第十五届人民代表大会常务委员会第二十一次会议通过"],
            "上海市人民代表大会常务委员会",
        ),
        (["1996年9月19日 经国务院批准", "1996年10月3日 中华人民共和国交通部令第8号发布"], "交通部"),
        (["2021年11月16日 国家互联网信息办公室2021年第20次室务会议审议通过"], "国家互联网信息办公室"),
        (
            [
                "2014年7月23日 济南市第十五届人民代表大会常务委员会第十五次会议通过",
                "2014年9月26",
                "日山东省第十二届人民代表大会常务委员会第十次会议批准",
            ],
            "济南市人民代表大会常务委员会",
        ),
        (
            [
                "2016年3月15日 丽水市第三届人民代表大会第七次会议通过",
                "2016年3月31日 浙江省第十二届人民代表大会常务委员会第二十八次会议批准",
                "2016年4月15日 丽水市第三届人民代表大会常务委员会公告第1号公布",
            ],
            "丽水市人民代表大会常务委员会",
        ),
        ([], None),
    ],
)
def test_issuer_from_promulgation(lines: list[str], expected: str | None) -> None:
    assert issuer_from_promulgation(lines) == expected


# --------------------------------------------------------------------------------------------
# titles and types
# --------------------------------------------------------------------------------------------


def test_title_skips_red_head_and_number() -> None:
    text = "青岛市人民政府办公厅文件\n\n青政办字〔2023〕12号\n\n青岛市人民政府办公厅关于印发若干措施的通知\n\n各区市："
    assert extract_title(text) == "青岛市人民政府办公厅关于印发若干措施的通知"


def test_title_skips_byline() -> None:
    assert (
        extract_title("□青岛日报/观海新闻记者 王萌\n\n提升功能区发展能级\n\n正文。") == "提升功能区发展能级"
    )


def test_title_broken_over_two_lines() -> None:
    assert extract_title("国务院办公厅关于印发\n《促进外贸稳规模优结构若干措施》的通知\n各省：") == (
        "国务院办公厅关于印发《促进外贸稳规模优结构若干措施》的通知"
    )
    assert (
        extract_title("青岛市人民政府关于促进外贸\n稳规模优结构的通知\n各区市：")
        == "青岛市人民政府关于促进外贸稳规模优结构的通知"
    )


def test_title_of_one_line_text() -> None:
    text = (
        "泰州市人民政府关于支持中小企业抗疫情渡难关促发展的政策措施 各市（区）人民政府，泰州医药高新区管委会：为深入贯彻……"
        * 3
    )
    assert extract_title(text) == "泰州市人民政府关于支持中小企业抗疫情渡难关促发展的政策措施"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "财政部 税务总局 关于支持疫情防控有关税收政策的公告 财政部 税务总局公告2020年第8号 为支持……",
            "财政部 税务总局 关于支持疫情防控有关税收政策的公告",
        ),
        (
            "关于充分发挥税收职能作用 助力打赢疫情防控阻击战若干措施的通知 各省税务局：……",
            "关于充分发挥税收职能作用 助力打赢疫情防控阻击战若干措施的通知",
        ),
        (
            "严禁用审批简单粗暴限制企业复工复产！ 国务院联防联控机制2月11日上午召开新闻发布会",
            "严禁用审批简单粗暴限制企业复工复产！",
        ),
        (
            "国家税务总局南阳市税务局 国家税务总局各省辖市税务局，局内各单位：为坚决贯彻……",
            "国家税务总局南阳市税务局",
        ),
        (
            "这是一个没有任何标点也没有空格而且非常非常长的句子它会一直写下去直到超过六十个字符的限制为止然后还继续写更多更多更多的内容和文字",
            None,
        ),
    ],
)
def test_first_sentence(text: str, expected: str | None) -> None:
    got = first_sentence(text)
    if expected is None:
        assert len(got) == 60 and text.startswith(got)
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("国务院办公厅关于进一步优化营商环境的意见", "意见"),
        ("青岛市人民政府办公厅关于印发若干措施的通知", "通知"),
        ("青岛市促进外贸发展管理办法（试行）", "办法"),
        ("山东省电子政务和政务数据管理办法", "办法"),
        ("中华人民共和国刑法", "法"),
        ("中华人民共和国专利法实施细则", "细则"),
        ("优化营商环境条例", "条例"),
        ("国务院关于修改部分行政法规的决定", "决定"),
        ("关于同意设立青岛自贸片区的批复", "批复"),
        ("青岛市招商引资行动方案", "方案"),
        ("2024年国务院政府工作报告", "报告"),
        ("国家税务总局公告2020年第4号", "公告"),
        ("江西省疫情防控应急指挥部令第13号", "令"),
        ("内江经济技术开发区疫情应急指挥部通告（第8号）", "通告"),
        ("最高人民法院关于审理名誉权案件若干问题的解释", "解释"),
        ("北京市单位食堂新型冠状病毒感染的肺炎预防控制指引", "指引"),
        ("学习方法", None),
        ("稳扎稳打有干头", None),
        ("", None),
    ],
)
def test_doc_type_from_title(title: str, expected: str | None) -> None:
    assert doc_type_from_title(title) == expected


# --------------------------------------------------------------------------------------------
# all at once
# --------------------------------------------------------------------------------------------


def test_extract_metadata_of_notice() -> None:
    text = (
        "青岛市人民政府办公厅文件\n\n青政办字〔2023〕12号\n\n"
        "青岛市人民政府办公厅关于印发青岛市促进外贸稳规模优结构若干措施的通知\n\n"
        "各区、市人民政府，市政府各部门：\n\n《若干措施》已经市政府同意，现印发给你们，请认真贯彻执行。\n\n"
        "青岛市人民政府办公厅\n2023年6月5日\n\n（此件公开发布）\n"
    )
    meta = extract_metadata(text)
    assert meta.title == "青岛市人民政府办公厅关于印发青岛市促进外贸稳规模优结构若干措施的通知"
    assert meta.issuer == "青岛市人民政府办公厅"
    assert meta.doc_number == "青政办字〔2023〕12号"
    assert meta.date == "2023-06-05"
    assert meta.doc_type == "通知"


def test_fill_missing_keeps_known_fields() -> None:
    text = "国务院关于…的通知\n国发〔2024〕3号\n各省：\n……\n国务院\n2024年2月18日"
    meta = DocMeta(issuer="国务院办公厅", date="2024-03-01", source="x.txt")
    fill_missing(meta, text, "国务院关于…的通知")
    assert meta.issuer == "国务院办公厅"
    assert meta.date == "2024-03-01"
    assert meta.doc_number == "国发〔2024〕3号"
    assert meta.doc_type == "通知"
    assert meta.source == "x.txt"
