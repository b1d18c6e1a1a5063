"""normalize and length on CJK/Thai text; map steps registered with @corpusforge.step."""

from __future__ import annotations

import pytest
from datatrove.data import Document

import corpusforge as cf
from corpusforge.steps.length import Length, LengthParams, visible_length
from corpusforge.steps.normalize import Normalize, NormalizeParams
from tests.support import make_recipe, write_jsonl


def run_step(step, texts):
    return [d.text for d in step.run(iter(Document(text=t, id=str(i)) for i, t in enumerate(texts)))]


def test_normalize_controls_whitespace_and_width():
    step = Normalize(NormalizeParams(form="NFKC"))
    out = run_step(step, ["ＡＢＣ１２３\x00\u3000全形空白", "a  b\t\tc   \r\n\n\n\nnext\ufeff", "\x00\x01 "])
    assert out == ["ABC123 全形空白", "a b c\n\nnext"]  # the all-control document is dropped
    assert step.stats["dropped_empty_after_normalize"].total == 1


FULL_WIDTH = "，：？！（）；、。「」"


def test_shipped_recipes_keep_full_width_punctuation_of_real_text():
    """Every recipe we ship normalizes real Traditional Chinese (chatterbot-corpus) without changing one mark;
    the text survives byte for byte. NFKC, asked for explicitly, would fold the marks (documented)."""
    from pathlib import Path

    from tests.support import REPO, corpus_texts

    texts = [t for t in dict.fromkeys(corpus_texts("traditionalchinese")) if any(c in FULL_WIDTH for c in t)]
    marks = sum(c in FULL_WIDTH for t in texts for c in t)
    assert len(texts) > 50 and marks > 100
    checked = 0
    for path in sorted(Path(REPO, "recipes").glob("*.yaml")):
        recipe = cf.Recipe.from_yaml(path)
        for step in recipe.steps:
            if step.name == "normalize":
                out = run_step(Normalize(NormalizeParams(**step.params)), texts)
                assert out == texts, path.name  # unchanged, byte for byte
                checked += 1
    assert checked >= 4
    folded = run_step(Normalize(NormalizeParams(form="NFKC")), texts)
    assert not any(c in "，：？！（）；" for t in folded for c in t)  # what NFKC does: every one folded to ASCII


def test_width_fold_alnum_keeps_punctuation_and_invalid_code_points_go():
    step = Normalize(NormalizeParams(width="fold_alnum"))
    assert run_step(step, ["型號ＲＦＫＢ－２３，售價１２０元！"]) == ["型號RFKB－23，售價120元！"]
    # the ideographic space is typography, kept; lone surrogates and noncharacters are not characters
    assert run_step(Normalize(NormalizeParams()), ["\u3000\u3000第一段\ud800\ufffe\U0010ffff。"]) == [
        "\u3000\u3000第一段。"
    ]


def test_normalize_opencc_taiwan_phrases():
    out = run_step(Normalize(NormalizeParams(opencc="s2twp")), ["软件和网络的信息"])
    assert out == ["軟體和網路的資訊"]
    with pytest.raises(ValueError, match="unknown OpenCC conversion 's2tw_p' — did you mean 's2twp'"):
        NormalizeParams(opencc="s2tw_p")


def test_visible_length_counts_cjk_and_thai_sensibly():
    assert visible_length("台灣 夜市") == 4
    # น้ำ = น + ้ (tone mark) + ำ (sara am, a spacing vowel): two visible characters, not three code points
    assert visible_length("น้ำ") == 2
    assert visible_length("café") == 4 and visible_length("cafe\u0301") == 4
    step = Length(LengthParams(min_chars=3, max_chars=5))
    assert run_step(step, ["一二", "一二三", "一 二 三 四 五 六"]) == ["一二三"]
    assert step.stats["dropped_too_short"].total == 1 and step.stats["dropped_too_long"].total == 1
    with pytest.raises(ValueError, match="max_chars"):
        LengthParams(min_chars=10, max_chars=5)


def test_step_decorator_maps_and_drops(tmp_path):
    @cf.step(name="upper_or_drop")
    def upper_or_drop(doc, drop="x"):
        if doc.text == drop:
            return None
        doc.text = doc.text.upper()
        return doc

    write_jsonl(tmp_path / "in.jsonl", [{"text": "abc"}, {"text": "x"}])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"upper_or_drop": {"drop": "x"}}])
    assert cf.run(cf.Recipe.from_dict(recipe)).load()["text"] == ["ABC"]


def test_builtin_names_cannot_be_taken():
    with pytest.raises(ValueError, match="built-in step name"):
        cf.filter(name="language")(lambda doc: True)
