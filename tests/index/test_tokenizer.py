"""Golden tokenizer output: pinned so a jieba or dictionary change is noticed."""

from __future__ import annotations

import pytest

from policyqa.index.tokenizer import ChineseTokenizer, normalize_text


@pytest.fixture(scope="module")
def tok() -> ChineseTokenizer:
    t = ChineseTokenizer()
    t.warm_up()
    return t


GOLDEN = [
    (
        "青岛海关将如何促进贸易便利化？",
        ["青岛", "海关", "青岛海关", "促进", "贸易", "便利", "便利化", "贸易便利化"],
    ),
    ("貿易便利化", ["贸易", "便利", "便利化", "贸易便利化"]),
    (
        "青岛市南区一季度计划落地多少个重点项目？",
        [
            "青岛",
            "市南",
            "南区",
            "市南区",
            "一季",
            "季度",
            "一季度",
            "计划",
            "落地",
            "重点",
            "项目",
            "重点项目",
        ],
    ),
    (
        "力争一季度落地重点项目２８个",
        ["力争", "一季", "季度", "一季度", "落地", "重点", "项目", "重点项目", "28"],
    ),
    (
        "小微企业和个体工商户的税费优惠",
        ["小微", "企业", "小微企业", "个体", "工商", "商户", "工商户", "个体工商户", "税费", "优惠"],
    ),
    ("稳岗返还的比例是多少？", ["稳岗", "返还", "稳岗返还", "比例"]),
    ("ＡＢＣ　Ｐｏｌｉｃｙ", ["abc", "policy"]),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN)
def test_golden_tokens(tok: ChineseTokenizer, text: str, expected: list[str]) -> None:
    assert tok.tokenize(text) == expected


def test_traditional_and_fullwidth_normalise_to_the_same_tokens(tok: ChineseTokenizer) -> None:
    assert tok("貿易便利化") == tok("贸易便利化")
    assert tok("２０２４年") == tok("2024年")


def test_normalize_text() -> None:
    assert normalize_text("國務院辦公廳ＡＢ１２") == "国务院办公厅ab12"


def test_stopwords_and_punctuation_are_dropped(tok: ChineseTokenizer) -> None:
    assert tok("的了吗？！，。") == []
    assert "的" not in tok("营商环境的优化")


def test_user_dictionary_is_used(tok: ChineseTokenizer) -> None:
    # 上合示范区 is in the shipped policy-term dictionary, so search mode keeps the whole term
    assert "上合示范区" in tok("高水平建设上合示范区")


def test_extra_user_dictionary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    extra = tmp_path / "dict.txt"
    extra.write_text("三码合一 100 n\n", encoding="utf-8")
    assert "三码合一" in ChineseTokenizer(user_dict=extra).tokenize("推行三码合一")


def test_missing_user_dictionary_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="POLICYQA_USER_DICT"):
        ChineseTokenizer(user_dict=tmp_path / "nope.txt")


def test_config_identifies_the_tokenizer(tok: ChineseTokenizer) -> None:
    cfg = tok.config()
    assert cfg["name"] == "jieba-search" and cfg["normalize"] == ["nfkc", "t2s", "lower"]
    assert tok.fingerprint() == ChineseTokenizer().fingerprint()


def test_parallel_tokenization_equals_serial(tok: ChineseTokenizer) -> None:
    from policyqa.index.tokenizer import join_tokens, tokenize_parallel

    texts = [t for t, _ in GOLDEN] * 20
    serial = [join_tokens(tok.terms(t)) for t in texts]
    assert tokenize_parallel(tok, texts, workers=2, min_parallel=1) == serial


def test_terms_are_the_words_then_the_character_bigrams(tok: ChineseTokenizer) -> None:
    text = "青岛海关将如何促进贸易便利化？"
    words = tok.tokenize(text)
    terms = tok.terms(text)
    assert terms[: len(words)] == words
    # overlapping pairs of the run 青岛海关将如何促进贸易便利化, the stopword pair 如何 left out
    assert terms[len(words) :] == [
        "青岛", "岛海", "海关", "关将", "将如", "何促", "促进", "进贸", "贸易", "易便", "便利", "利化",
    ]  # fmt: skip


def test_bigrams_match_names_the_segmenter_cuts_differently(tok: ChineseTokenizer) -> None:
    # search mode gives 复工 and 复工复产 for one text and 复产 for the other: no shared word,
    # but the bigram 复产 is shared
    a, b = "复工复产", "复产"
    assert tok.tokenize(a) == ["复工", "复工复产"] and tok.tokenize(b) == ["复产"]
    assert set(tok.terms(a)) & set(tok.terms(b)) == {"复产"}


def test_bigrams_are_normalised_and_skip_punctuation_and_latin(tok: ChineseTokenizer) -> None:
    assert tok.terms("貿易，便利") == tok.terms("贸易，便利")
    assert tok.terms("ABC税费") == ["abc", "税费", "税费"]
    assert "易便" not in tok.terms("贸易，便利")  # no pair across punctuation


def test_settings_turn_bigrams_off() -> None:
    from policyqa.settings import Settings

    assert ChineseTokenizer.from_settings(Settings(char_bigrams=False)).char_bigrams is False
    assert ChineseTokenizer.from_settings(Settings()).char_bigrams is True


def test_terms_without_bigrams_are_the_words() -> None:
    plain = ChineseTokenizer(char_bigrams=False)
    assert plain.terms("促进贸易便利化") == plain.tokenize("促进贸易便利化")
    assert plain.config()["char_bigrams"] is False
    assert plain.fingerprint() != ChineseTokenizer().fingerprint()
