"""The repeated n-gram algorithm of the `quality` rule `dup_ngram_fraction`, and the encoding that makes word
n-grams substrings, as character n-grams are.

The n-gram rules stay cheap because a document whose n-grams are all distinct needs no more counting, and an n-gram
can only repeat where its (n-1)-gram prefix repeats, so each larger n is checked at the positions the smaller one
left (the sums equal datatrove's `find_all_duplicate`, which a test checks).
"""

from __future__ import annotations

from collections import Counter


def _word_sequence(words: list[str]) -> str:
    """One character per distinct word, so word n-grams are substrings (hashable, sliced in C)."""
    ids: dict[str, int] = {}
    codes = [ids.setdefault(w, len(ids)) for w in words]
    return "".join([chr(c if c < 0xD800 else c + 0x800) for c in codes])  # skip the surrogate range


def repeated_ngram_chars(seq: str, sizes: list[int], offsets: list[int] | None = None):
    """Yield ``(n, characters in repeated n-grams)`` for each n of ``sizes`` (ascending), as Gopher counts them.

    The same sums as datatrove's ``find_all_duplicate``: scanning left to right, an n-gram seen before counts its
    characters and the scan skips past it. ``seq`` is the text (character n-grams) or one character per word
    (``_word_sequence``) with ``offsets`` the words' cumulative lengths. Only a position whose n-gram occurs more than
    once can start a repeated larger n-gram, so each larger n scans the positions left by the previous one.
    """
    positions: range | list[int] = range(len(seq))
    for n in sizes:
        last = len(seq) - n
        if isinstance(positions, range):
            positions = range(last + 1)
        elif positions and positions[-1] > last:
            positions = [i for i in positions if i <= last]
        grams = [seq[i : i + n] for i in positions]
        counts = Counter(grams)
        if len(counts) == len(grams):
            return  # nothing repeats at this n, so nothing at larger n
        positions = [i for i, g in zip(positions, grams) if counts[g] > 1]
        seen: set[str] = set()
        repeated = next_free = 0
        for i in positions:
            if i < next_free:
                continue
            g = seq[i : i + n]
            if g in seen:
                repeated += n if offsets is None else offsets[i + n] - offsets[i]
                next_free = i + n
            else:
                seen.add(g)
        yield n, repeated
