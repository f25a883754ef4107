"""How chat keywords compare: case-, accent- and typo-tolerant, shared by the engine and the linter.

A word matches a keyword when both normalise to the same letters, or, from five letters up, when
they are one edit apart (a missing, extra, wrong or swapped letter). Two entries of one channel
whose words match each other are ambiguous: the linter refuses them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Final

from .schema import ChannelEntries

__all__ = ["TYPO_MIN_LENGTH", "close", "edit_distance", "keyword_words", "normalise_word"]

TYPO_MIN_LENGTH: Final = 5


def normalise_word(word: str) -> str:
    """``Alertés`` -> ``alertes``: no accents, no case, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap two neighbours)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[len(a)][len(b)]


def close(word: str, known: str) -> bool:
    """Whether ``word`` may stand for the keyword ``known`` (both normalised)."""
    if word == known:
        return True
    return min(len(word), len(known)) >= TYPO_MIN_LENGTH and edit_distance(word, known) <= 1


def keyword_words(entries: ChannelEntries) -> Iterator[tuple[str, str, str]]:
    """``(entry name, language, normalised word)`` for every keyword of a channel."""
    for name, entry in entries.keywords.items():
        for language, words in entry.words.items():
            for word in words:
                yield name, language, normalise_word(word)
