"""Chinese tokenizer for the lexical index.

Text is normalised first (NFKC, which folds full-width forms to half-width; traditional to
simplified characters; lower case), then segmented with jieba in search mode using the shipped
policy-term user dictionary, and stopwords, whitespace and punctuation are dropped. The same
object tokenizes documents and queries, so 貿易便利化 finds 贸易便利化.

What BM25 indexes (:meth:`ChineseTokenizer.terms`) is those words plus the overlapping character
bigrams of every run of Chinese characters (``疫情防控`` → 疫情, 情防, 防控). Bigrams are the
classic segmentation-free index terms for Chinese retrieval: they match where the segmenter cut a
name or term differently in the question and in the document (``京津冀`` vs ``京津``, names missing
from the dictionary) and they reward phrases that occur in the same order. Measured on ncpqa-dev
(document level, each half of the questions) and cmrc2018-dev, words plus bigrams beat words
alone for BM25 and for the hybrid; see eval/results. Bigrams that are stopwords (哪些, 什么, 如何)
are dropped like the words. :meth:`ChineseTokenizer.tokenize` stays word-level (used where words
are wanted, e.g. the reranker's query terms).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jieba

__all__ = ["ChineseTokenizer", "join_tokens", "normalize_text", "to_simplified", "tokenize_parallel"]

logger = logging.getLogger(__name__)

_DATA = resources.files("policyqa.index") / "data"
TOKENIZER_VERSION = 2

#: Runs of CJK unified ideographs (basic block and extension A) after normalisation.
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")


@lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    """Character-level traditional→simplified table from OpenCC's TSCharacters dictionary."""
    import opencc  # opencc-python-reimplemented ships the dictionaries as text files

    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    table: dict[int, str] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or len(parts[0]) != 1:
                continue
            target = parts[1].split(" ")[0]
            if target and target != parts[0]:
                table[ord(parts[0])] = target
    return table


def to_simplified(text: str) -> str:
    """Traditional characters replaced by simplified ones, one for one (offsets are kept)."""
    return text.translate(_t2s_table())


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), traditional → simplified, lower case."""
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def _is_content_token(token: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in token)


def _file_digest(path: Path | Any) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


_JIEBA_LOCK = threading.Lock()
_JIEBA_CACHE: dict[tuple[str, ...], jieba.Tokenizer] = {}


def _jieba_for(user_dicts: tuple[Path, ...]) -> jieba.Tokenizer:
    key = tuple(str(p) for p in user_dicts)
    with _JIEBA_LOCK:
        tok = _JIEBA_CACHE.get(key)
        if tok is None:
            tok = jieba.Tokenizer()
            tok.initialize()
            for path in user_dicts:
                with open(path, "rb") as fh:
                    tok.load_userdict(fh)
            _JIEBA_CACHE[key] = tok
        return tok


class ChineseTokenizer:
    """jieba search-mode tokenizer with normalisation, a user dictionary and stopwords.

    The constructor is cheap; the jieba dictionary is loaded on first use (or by
    :meth:`warm_up`). ``user_dict`` adds to the shipped policy-term dictionary;
    ``stopwords`` replaces the shipped stopword list.
    """

    def __init__(
        self,
        user_dict: Path | None = None,
        stopwords: Path | None = None,
        hmm: bool = True,
        char_bigrams: bool = True,
    ) -> None:
        if user_dict is not None and not Path(user_dict).is_file():
            raise FileNotFoundError(f"user dictionary {user_dict} does not exist; fix POLICYQA_USER_DICT")
        if stopwords is not None and not Path(stopwords).is_file():
            raise FileNotFoundError(f"stopword list {stopwords} does not exist; fix POLICYQA_STOPWORDS")
        self.user_dict = Path(user_dict) if user_dict else None
        self.stopwords_path = Path(stopwords) if stopwords else None
        self.hmm = hmm
        self.char_bigrams = char_bigrams
        self._jieba: jieba.Tokenizer | None = None
        self._stopwords: frozenset[str] | None = None

    # -- loading -----------------------------------------------------------------------------
    def _dict_paths(self) -> tuple[Path, ...]:
        shipped = Path(str(_DATA / "policy_terms.txt"))
        return (shipped, self.user_dict) if self.user_dict else (shipped,)

    def warm_up(self) -> None:
        """Load the jieba dictionary and the stopword list."""
        if self._jieba is None:
            self._jieba = _jieba_for(self._dict_paths())
        if self._stopwords is None:
            source = self.stopwords_path or Path(str(_DATA / "stopwords_zh.txt"))
            words = source.read_text(encoding="utf-8").split()
            self._stopwords = frozenset(normalize_text(w) for w in words)

    @property
    def stopwords(self) -> frozenset[str]:
        self.warm_up()
        assert self._stopwords is not None  # set by warm_up
        return self._stopwords

    # -- tokenizing --------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """Tokens of one text, in order, stopwords and punctuation removed."""
        self.warm_up()
        assert self._jieba is not None and self._stopwords is not None
        stop = self._stopwords
        out: list[str] = []
        for token in self._jieba.cut_for_search(normalize_text(text), HMM=self.hmm):
            token = token.strip()
            if token and token not in stop and _is_content_token(token):
                out.append(token)
        return out

    def terms(self, text: str) -> list[str]:
        """What BM25 indexes and searches: :meth:`tokenize`'s words, then the character bigrams.

        Bigrams are the overlapping pairs of each run of Chinese characters in the normalised
        text, in order, stopwords left out; without ``char_bigrams`` this is :meth:`tokenize`.
        """
        words = self.tokenize(text)
        if not self.char_bigrams:
            return words
        return words + self.bigrams(text)

    def bigrams(self, text: str) -> list[str]:
        """The character bigrams :meth:`terms` adds (whatever ``char_bigrams`` says), in order.

        The overlapping pairs of each run of Chinese characters in the normalised text, stopwords
        left out.
        """
        stop = self.stopwords
        pairs = (
            run[i : i + 2]
            for m in _HAN_RUN.finditer(normalize_text(text))
            for run in (m.group(),)
            for i in range(len(run) - 1)
        )
        return [b for b in pairs if b not in stop]

    def __call__(self, text: str) -> list[str]:
        return self.tokenize(text)

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]

    def config(self) -> dict[str, Any]:
        """What identifies this tokenizer's output; stored in the index manifest."""
        dicts = self._dict_paths()
        stop = self.stopwords_path or Path(str(_DATA / "stopwords_zh.txt"))
        return {
            "name": "jieba-search",
            "version": TOKENIZER_VERSION,
            "jieba": getattr(jieba, "__version__", "unknown"),
            "hmm": self.hmm,
            "char_bigrams": self.char_bigrams,
            "normalize": ["nfkc", "t2s", "lower"],
            "user_dicts": [_file_digest(p) for p in dicts],
            "stopwords": _file_digest(stop),
        }

    def fingerprint(self) -> str:
        return hashlib.sha1(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_settings(cls, settings: Any) -> ChineseTokenizer:
        return cls(
            user_dict=settings.user_dict,
            stopwords=settings.stopwords,
            char_bigrams=getattr(settings, "char_bigrams", True),
        )


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens as one space-separated string (jieba tokens never contain spaces after strip)."""
    return " ".join(tokens)


_WORKER_TOKENIZER: ChineseTokenizer | None = None


def _init_worker(tokenizer: ChineseTokenizer) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = tokenizer
    tokenizer.warm_up()


def _tokenize_joined(text: str) -> str:
    assert _WORKER_TOKENIZER is not None  # set by _init_worker
    return join_tokens(_WORKER_TOKENIZER.terms(text))


def tokenize_parallel(
    tokenizer: ChineseTokenizer,
    texts: Sequence[str],
    workers: int = 0,
    progress: Any = None,
    min_parallel: int = 2000,
) -> list[str]:
    """Space-joined BM25 terms (:meth:`ChineseTokenizer.terms`) of every text, by ``workers`` processes.

    jieba is pure Python and the slowest stage of indexing, so large batches are spread over
    processes (forked, so the loaded dictionary is shared); small ones stay in-process.
    ``workers=0`` uses every core. ``progress`` is an optional tqdm-like object.
    """
    import multiprocessing as mp
    import os

    n_workers = workers or (os.cpu_count() or 1)
    if n_workers <= 1 or len(texts) < min_parallel or "fork" not in mp.get_all_start_methods():
        out = []
        for text in texts:
            out.append(join_tokens(tokenizer.terms(text)))
            if progress is not None:
                progress.update(1)
        return out
    tokenizer.warm_up()
    results: list[str] = []
    with mp.get_context("fork").Pool(n_workers, initializer=_init_worker, initargs=(tokenizer,)) as pool:
        for tokens in pool.imap(_tokenize_joined, texts, chunksize=64):
            results.append(tokens)
            if progress is not None:
                progress.update(1)
    return results
