"""Offline zero-shot choice with a text-embedding model: no network, no API key.

``EmbeddingChooser(options)`` picks, for a list of item names (e.g. detected objects), the
option (e.g. a room) most similar to them: with unit embeddings ``e(.)``,

    choice(items) = argmax_o  mean_{i in items} cos(e(i), e(text_o))

ties go to the first option (no randomness). Embeddings of item names are memoised, so each
distinct name is embedded once.

The embedding model is WordLlama (``pip install wordllama``; MIT), whose 256-dimensional weights
ship inside the PyPI package; it is loaded from the package folder with downloads disabled.

Example:
    >>> chooser = EmbeddingChooser({"kitchen": "kitchen", "bathroom": "bathroom"})   # doctest: +SKIP
    >>> chooser.choose(["stove", "kettle"])                                           # doctest: +SKIP
    'kitchen'
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, final

import numpy as np

__all__ = ["EmbeddingChooser", "EmbeddingUnavailable", "wordllama_embedder"]

Embedder = Callable[[list[str]], np.ndarray]


class EmbeddingUnavailable(ImportError):
    """The offline embedding model is not installed."""


@functools.lru_cache(maxsize=1)
def wordllama_embedder() -> Embedder:
    """``embed(texts) -> [len(texts), 256]`` unit vectors from the WordLlama weights shipped on PyPI."""
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError:
        raise EmbeddingUnavailable(
            "the offline room-naming program needs WordLlama: pip install 'wordllama>=0.4' "
            "(or pip install 'blackprop[embedding]')"
        ) from None
    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)

    def embed(texts: list[str]) -> np.ndarray:
        vectors = np.asarray(model.embed(texts, norm=True), dtype=np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    return embed


@final
class EmbeddingChooser:
    """Choose the option whose text is most similar (mean cosine) to a list of item names.

    Args:
        options: option value -> the text that describes it (e.g. ``{"living": "living room"}``).
        embed: texts -> unit vectors (default: WordLlama).
        ignore: item names to drop before choosing (e.g. a "nothing detected" label).
    """

    def __init__(self, options: Mapping[Any, str], embed: Embedder | None = None, ignore: Iterable[str] = ()):
        if not options:
            raise ValueError("EmbeddingChooser(options=...): give at least one option, e.g. {'kitchen': 'kitchen'}")
        self.values = list(options)
        self.embed = embed or wordllama_embedder()
        self.option_vectors = self.embed([options[v] for v in self.values])
        self.ignore = frozenset(ignore)
        self._similarity: dict[str, np.ndarray] = {}

    def similarity(self, item: str) -> np.ndarray:
        """Cosine similarity of one item name to every option ``[len(options)]``."""
        if item not in self._similarity:
            self._similarity[item] = self.embed([item])[0] @ self.option_vectors.T
        return self._similarity[item]

    def choose(self, items: Iterable[str]) -> Any:
        """The option closest on average to the distinct items; None when no item is left."""
        names = sorted({str(i) for i in items} - self.ignore)
        if not names:
            return None
        scores = np.mean([self.similarity(n) for n in names], axis=0)
        return self.values[int(np.argmax(scores))]

    def __call__(self, items: Iterable[str]) -> Any:
        return self.choose(items)
