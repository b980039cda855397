"""Conversations: a follow-up question is searched together with the question it follows.

The chat page and ``POST /ask`` (``history``) send the earlier questions of a conversation;
:func:`contextualize` turns a follow-up (``那大型企业呢？``) into what is searched
(``中小微企业稳岗返还比例最高是多少？ 那大型企业呢？``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from policyqa.settings import QUERY_CHARS_LIMIT

__all__ = ["FOLLOW_UP_MAX_CHARS", "contextualize", "is_follow_up"]


_FOLLOW_UP_START = re.compile(
    r"^(?:那么?|那个|那些|还有|另外|此外|以及|并且|而且|同时|其|它|该|此|这|上述|前者|后者|和|与|及|或者?)"
)
_FOLLOW_UP_REF = re.compile(
    r"它们?|其[中他它余]|该[项类条款政策文件措施办法规定]|上述|前述|这[些个项条种]|那[些个项条种]|此[项类条]|前者|后者"
)
_FOLLOW_UP_END = re.compile(r"(?:呢|吗呢|又如何|怎么样|如何)[？?。!！\s]*$")
_PUNCT = re.compile(r"[\s，,。.？?！!：:；;、（）()“”\"'《》]+")
#: A question this short (in characters, punctuation not counted) is taken as a follow-up.
FOLLOW_UP_MAX_CHARS = 6


def is_follow_up(question: str) -> bool:
    """Whether a question leans on an earlier one: it starts with 那/还有/其/该 …, refers back
    (它, 上述, 这些 …), ends in 呢 / 怎么样, or is very short."""
    q = question.strip()
    core = _PUNCT.sub("", q)
    if not core:
        return False
    return bool(
        len(core) <= FOLLOW_UP_MAX_CHARS
        or _FOLLOW_UP_START.match(core)
        or _FOLLOW_UP_REF.search(core)
        or _FOLLOW_UP_END.search(q)
    )


def contextualize(question: str, history: Sequence[str] = (), max_chars: int = QUERY_CHARS_LIMIT) -> str:
    """The text to search for ``question`` in a conversation.

    A follow-up (:func:`is_follow_up`) is searched together with the topic question: the latest
    earlier question that was not itself a follow-up (so a chain of follow-ups keeps the
    topic). Any other question stands alone. ``history`` holds the earlier questions, oldest
    first; the topic is cut from the front so the result stays within ``max_chars``.
    """
    q = question.strip()
    if not is_follow_up(q):
        return q
    topic = ""
    for earlier in history:
        earlier = earlier.strip()
        if earlier and not is_follow_up(earlier):
            topic = earlier
    room = max_chars - len(q) - 1
    if not topic or room <= 0:
        return q
    return f"{topic[-room:]} {q}"
