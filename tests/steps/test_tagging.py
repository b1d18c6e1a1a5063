"""InsCP tagging is byte-identical to the tokenizer's own apply_chat_template."""

from __future__ import annotations

import pytest

from corpusforge.steps.tagging import InsCPTag, TagParams
from corpusforge.templates import PRESETS, TemplateError, load_template, preset

DOCS = [
    "台灣的夜市文化非常有名。\n\n  第二段有前後空白。  ",
    "สวัสดีครับ ยินดีต้อนรับ",
    "plain English, with {braces} and <tags>",
    "x",
]


def inscp(text):
    return [{"role": "user", "content": ""}, {"role": "assistant", "content": text}]


@pytest.mark.parametrize("text", DOCS)
def test_llama3_preset_matches_transformers(llama3_tokenizer, text):
    tokenizer, _ = llama3_tokenizer
    expected = tokenizer.apply_chat_template(inscp(text), tokenize=False)
    tagged = InsCPTag(TagParams(template="llama3")).tag(text)
    assert tagged == expected
    assert tagged.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|eot_id|>")
    assert tagged.endswith("<|eot_id|>")


def test_local_model_folder_matches_transformers(llama3_tokenizer):
    tokenizer, folder = llama3_tokenizer
    step = InsCPTag(TagParams(template=str(folder)))
    for text in DOCS:
        assert step.tag(text) == tokenizer.apply_chat_template(inscp(text), tokenize=False)
    # the text already carries BOS: tokenizing it must not add a second one
    ids = tokenizer(step.tag(DOCS[0]), add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_matches_transformers(name):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    template = preset(name)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **template.special_tokens)
    tokenizer.chat_template = template.template
    for text in DOCS:
        assert template.render(inscp(text)) == tokenizer.apply_chat_template(inscp(text), tokenize=False)


def test_system_prompt_and_custom_user_turn(llama3_tokenizer):
    tokenizer, _ = llama3_tokenizer
    step = InsCPTag(TagParams(template="llama3", system="You are helpful.", user="續寫："))
    messages = [{"role": "system", "content": "You are helpful."}] + inscp("正文")
    messages[1]["content"] = "續寫："
    assert step.tag("正文") == tokenizer.apply_chat_template(messages, tokenize=False)


def test_split_qa_makes_two_data_points():
    from datatrove.data import Document

    step = InsCPTag(TagParams(template="chatml", split_qa="answer"))
    docs = [
        Document(text="什麼是夜市？", id="a", metadata={"answer": "夜市是晚上營業的市集。"}),
        Document(text="沒有答案", id="b", metadata={}),
    ]
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == ["a/q", "a/a"]
    assert out[0].text == "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n什麼是夜市？<|im_end|>\n"
    assert "夜市是晚上營業的市集。" in out[1].text
    assert step.stats["dropped_missing_answer"].total == 1


def test_gemma_rejects_a_system_prompt():
    with pytest.raises(TemplateError, match="System role not supported"):
        InsCPTag(TagParams(template="gemma", system="sys")).tag("text")


def test_unknown_template_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'llama3'"):
        TagParams(template="llama-3")
    with pytest.raises(TemplateError, match="no chat template"):
        load_template(str(tmp_path))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_system_none_is_the_rendering_without_any_system_block(name):
    """Llama 3.1 writes a date block by itself; `none` removes exactly that. The others write no default: `none`
    changes nothing."""
    template = preset(name)
    none = InsCPTag(TagParams(template=name, system="none"))
    for text in DOCS:
        default = template.render(inscp(text))
        if name == "llama3_1":
            assert "Cutting Knowledge Date" in default
            assert none.tag(text) == preset("llama3").render(inscp(text))  # 3.0 is 3.1 without the block
        else:
            assert none.tag(text) == default
