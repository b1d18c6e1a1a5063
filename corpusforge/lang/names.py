"""Language codes: the labels language ID writes (lid.176's 176, plus `zh_Hant` / `zh_Hans`), the ways people write
them otherwise, their display names, which labels agree, and their BCP-47 form."""

from __future__ import annotations

from corpusforge.errors import did_you_mean

# The 176 labels of lid.176 (fastText language identification).
LID176_LABELS = frozenset(
    "af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co "
    "cs cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif "
    "hr hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo "
    "lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os "
    "pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta "
    "te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh ".split()
)
# lid.176 labels both Chinese scripts `zh`; the script census splits them (`zh` stays: written alike in both)
SCRIPT_LABELS = frozenset({"zh_Hant", "zh_Hans"})
CHINESE = frozenset({"zh", "zh_Hant", "zh_Hans"})
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

LANGUAGE_NAMES = {
    "en": "English",
    "th": "Thai",
    "zh": "Chinese",
    "zh_Hant": "Traditional Chinese (Taiwan)",
    "zh_Hans": "Simplified Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "ms": "Malay",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "ru": "Russian",
    "ar": "Arabic",
    "hi": "Hindi",
}


def language_name(code: str) -> str:
    """The English name of a language (`Thai`), or the code itself when it has none here."""
    return LANGUAGE_NAMES.get(code, code)


def check_language(code: str) -> str:
    """``code`` if language ID can write it (a lid.176 label, `zh_Hant`, `zh_Hans`), else a ValueError that suggests
    the label meant (`zh-tw` → `zh_Hant`)."""
    known = LID176_LABELS | SCRIPT_LABELS
    if code in known:
        return code
    raise ValueError(f"unknown language '{code}'{did_you_mean(code, known, LANGUAGE_ALIASES)}")


def languages_agree(detected: str, expected: str) -> bool:
    """`zh` (no script-distinguishing character) is acceptable for zh_Hant and zh_Hans, and either for `zh`."""
    if detected == expected:
        return True
    return detected in CHINESE and expected in CHINESE and "zh" in (detected, expected)


def base_language(code: str) -> str:
    """The language without its script: `zh_Hant` → `zh`."""
    return code.split("_")[0]


def bcp47(code: str) -> str:
    """The BCP-47 form of a label: `zh_Hant` → `zh-Hant`."""
    return code.replace("_", "-")
