"""The banned-word engine on its own: every evasion of DOMAIN.md §3, look-alikes, spans."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robots.engine.words import BannedWord, WordMatcher, normalise
from robots.pagescan.inputs import load_allowlist, load_banned_words

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "demo-shop"


@pytest.fixture(scope="module")
def matcher() -> WordMatcher:
    return WordMatcher(
        load_banned_words(SCENARIO / "banned-words.txt"),
        load_allowlist(SCENARIO / "allowlist.txt"),
    )


@pytest.mark.parametrize(
    ("text", "word", "span"),
    [
        ("本店最好的衣服", "最好", "最好"),
        ("全网ＮＯ．１爆款", "NO.1", "ＮＯ．１"),  # full-width
        ("最　好的面料", "最好", "最　好"),  # ideographic space inside
        ("最 好", "最好", "最 好"),
        ("最*好", "最好", "最*好"),  # symbol inside
        ("顶·级做工", "顶级", "顶·级"),
        ("最😊好", "最好", "最😊好"),  # emoji inside
        ("A❤️货", "A货", "A❤️货"),  # emoji with a variation selector
        ("國家級品質", "国家级", "國家級"),  # traditional
        ("銷量冠軍", "销量冠军", "銷量冠軍"),
        ("爆款no.1!", "NO.1", "no.1"),  # mixed case
        ("tOP1推荐", "Top1", "tOP1"),
        ("TG产品", "特供", "TG"),  # pinyin initials
        ("zg货源", "专供", "zg"),
        ("最最最好", "最好", "最最最好"),  # repeated characters
        ("全全网销量第一", "全网销量第一", "全全网销量第一"),
    ],
)
def test_every_evasion_is_caught_with_its_original_span(
    matcher: WordMatcher, text: str, word: str, span: str
) -> None:
    hits = matcher.find(text)
    assert [(h.word.word, h.matched_text) for h in hits] == [(word, span)]
    assert text[hits[0].start : hits[0].end] == span


@pytest.mark.parametrize(
    "text",
    [
        "最近很多顾客回购",
        "第一次购买的朋友",
        "最后一件 售完即止",
        "唯一的缺点是容易起球",
        "第一步：选择颜色",
        "下单后第一时间发货",
        "第一件原价 第二件半价",
        "Style: outgoing",  # tg inside a Latin word
        "色号No.12",  # no1 inside a longer number
        "laptop1 pocket",  # top1 inside a Latin word
        "piano 1",  # no1 across a space, glued to 'pia'
        "最，好评如潮",  # a sentence break between the characters
    ],
)
def test_normal_speech_is_not_flagged(matcher: WordMatcher, text: str) -> None:
    assert matcher.find(text) == []


def test_a_longer_word_wins_over_the_word_inside_it(matcher: WordMatcher) -> None:
    hits = matcher.find("全网销量第一，第一品牌")
    assert [h.word.word for h in hits] == ["全网销量第一", "第一品牌"]


def test_allowlisted_phrase_does_not_hide_a_real_hit_next_to_it(matcher: WordMatcher) -> None:
    hits = matcher.find("第一次买就选最好的")
    assert [h.word.word for h in hits] == ["最好"]


def test_latin_words_stand_alone_even_without_separators(matcher: WordMatcher) -> None:
    assert [h.word.word for h in matcher.find("NO.1 TOP1")] == ["NO.1", "Top1"]


def test_context_marks_the_span(matcher: WordMatcher) -> None:
    (hit,) = matcher.find("这是一件非常舒服的最*好的衬衫，值得购买")
    assert hit.context == "这是一件非常舒服的【最*好】的衬衫，值得购买"


def test_normalised_text_maps_back_to_the_original() -> None:
    n = normalise("Ａ😊b　國")
    assert n.text == "ab国"
    assert [(s, e) for s, e in zip(n.starts, n.ends, strict=True)] == [(0, 1), (2, 3), (4, 5)]


WORDS = [BannedWord(w, "极限词", "high") for w in ("国家级", "最好", "顶级", "独一无二")]
SEPARATORS = st.sampled_from([" ", "\u3000", "*", "·", "_", "-", "~", "😊", "🔥", "✨", "/"])


@given(
    word=st.sampled_from(WORDS),
    cuts=st.lists(st.tuples(st.integers(1, 3), SEPARATORS), max_size=3),
    before=st.sampled_from(["", "本店", "【", "款式 "]),
    after=st.sampled_from(["", "品质", "】", " 包邮"]),
)
def test_separators_anywhere_inside_a_word_are_seen_through(
    word: BannedWord, cuts: list[tuple[int, str]], before: str, after: str
) -> None:
    spelled = word.word
    for position, sep in cuts:
        i = min(position, len(spelled) - 1)
        spelled = spelled[:i] + sep + spelled[i:]
    text = before + spelled + after
    hits = WordMatcher(WORDS).find(text)
    assert [h.word.word for h in hits] == [word.word]
    assert hits[0].matched_text.replace(" ", "") in text.replace(" ", "")
    assert normalise(hits[0].matched_text).text == normalise(word.word).text


@given(st.text(alphabet="国家级最好顶独一无二的是 *😊，。Ａ", max_size=40))
def test_every_hit_spans_a_spelling_of_its_word(text: str) -> None:
    for hit in WordMatcher(WORDS).find(text):
        assert normalise(hit.matched_text).text == normalise(hit.word.word).text
        assert text[hit.start : hit.end] == hit.matched_text
