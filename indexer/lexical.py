"""Lexical ranking: BM25 over the product texts, built with each index version.

bm25s stores the BM25 weight of every (token, product) pair as a sparse matrix, so a
query costs one sparse column sum. Stored with the version's FAISS index, it gives every
replica the same ranking without a database-specific full-text engine.

Tokens keep model numbers, sizes and units intact: "WM624", "3/8", "1-1/2" and "2.5"
are single tokens. A compound token adds its parts ("1-1/2" also yields "1" and "2"), so
that "18 volt" in a query still matches "18-volt" in a title. Alphabetic tokens are stemmed
with the Snowball stemmer of the configured language and its stop words are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import bm25s
import bm25s.stopwords
import numpy as np
import Stemmer

LANGUAGES: dict[str, frozenset[str]] = {
    "english": frozenset(bm25s.stopwords.STOPWORDS_EN),
    "german": frozenset(bm25s.stopwords.STOPWORDS_GERMAN),
    "french": frozenset(bm25s.stopwords.STOPWORDS_FRENCH),
    "spanish": frozenset(bm25s.stopwords.STOPWORDS_SPANISH),
    "italian": frozenset(bm25s.stopwords.STOPWORDS_ITALIAN),
    "dutch": frozenset(bm25s.stopwords.STOPWORDS_DUTCH),
    "portuguese": frozenset(bm25s.stopwords.STOPWORDS_PORTUGUESE),
    "danish": frozenset(bm25s.stopwords.STOPWORDS_DANISH),
    "norwegian": frozenset(bm25s.stopwords.STOPWORDS_NORWEGIAN),
    "swedish": frozenset(bm25s.stopwords.STOPWORDS_SWEDISH),
    "russian": frozenset(bm25s.stopwords.STOPWORDS_RUSSIAN),
    "turkish": frozenset(bm25s.stopwords.STOPWORDS_TURKISH),
    "none": frozenset(),
}
"""Languages with both a Snowball stemmer and a stop-word list; `none` only lowercases."""

TOKEN = re.compile(r"[^\W_]+(?:[./-][^\W_]+)*")
"""A run of letters and digits, possibly joined by `.`, `/` or `-` inside it."""

SEPARATOR = re.compile(r"[./-]")

FOLDER = "lexical"
"""Sub-folder of a version folder that contains the BM25 files."""


@dataclass(frozen=True)
class Tokenizer:
    """Split text into the BM25 tokens of one language."""

    language: str = "english"

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(
                f"unknown lexical language {self.language!r}, expected one of {', '.join(sorted(LANGUAGES))}"
            )

    @cached_property
    def _stemmer(self) -> Any:
        return None if self.language == "none" else Stemmer.Stemmer(self.language)

    def tokenize(self, text: str) -> list[str]:
        """Return the tokens of `text`: compounds, then their parts, stemmed, without stop words."""
        stop_words = LANGUAGES[self.language]
        tokens: list[str] = []
        for word in TOKEN.findall(text.lower()):
            pieces = [word]
            if SEPARATOR.search(word):
                pieces.extend(part for part in SEPARATOR.split(word) if part)
            tokens.extend(self._stem(piece) for piece in pieces if piece not in stop_words)
        return tokens

    def _stem(self, token: str) -> str:
        # Only words are stemmed: "m18" or "3/8" must stay exactly as typed.
        if self._stemmer is None or not token.isalpha():
            return token
        stemmed: str = self._stemmer.stemWord(token)
        return stemmed


class LexicalIndex:
    """BM25 scores of the products of one index version, in FAISS position order."""

    def __init__(self, retriever: bm25s.BM25, tokenizer: Tokenizer) -> None:
        self._retriever = retriever
        self.tokenizer = tokenizer

    @property
    def product_count(self) -> int:
        return int(self._retriever.scores["num_docs"])

    def description(self) -> dict[str, Any]:
        """Describe the index for the version manifest; `language` is needed to load it."""
        return {"library": "bm25s", "method": self._retriever.method, "k1": self._retriever.k1,
                "b": self._retriever.b, "language": self.tokenizer.language,
                "folder": FOLDER}

    @classmethod
    def build(cls, texts: Sequence[str], language: str) -> LexicalIndex:
        """Index `texts`; the position of a text is its product's position in the version."""
        tokenizer = Tokenizer(language)
        retriever = bm25s.BM25()
        # A text without any token still needs its row so that positions line up; bm25s
        # gives it the empty token, which no query contains.
        retriever.index([tokenizer.tokenize(text) or [""] for text in texts], show_progress=False)
        return cls(retriever, tokenizer)

    def save(self, folder: Path) -> list[Path]:
        """Write the BM25 files into `folder`; returns the paths written."""
        folder.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(folder), show_progress=False)
        return sorted(path for path in folder.iterdir() if path.is_file())

    @classmethod
    def load(cls, folder: Path, language: str) -> LexicalIndex:
        """Load BM25 files written by `save`; the arrays are memory-mapped, not copied."""
        retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False, verbosity=0)
        return cls(retriever, Tokenizer(language))

    def scores(self, query: str) -> np.ndarray | None:
        """Return the BM25 score of every product for `query`, or None when none of the
        query's tokens occurs in any product."""
        token_ids = self._retriever.get_tokens_ids(self.tokenizer.tokenize(query))
        if not token_ids:
            return None
        scores: np.ndarray = self._retriever.get_scores_from_ids(token_ids)
        return scores
