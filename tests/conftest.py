"""Shared fixtures: real multilingual text (chatterbot-corpus, a test dependency) and a tiny tokenizer with the real
Llama-3 chat template. Helpers (recipes, JSONL, real text, processes of a run) are in tests/support."""

from __future__ import annotations

import pytest

from tests.support import corpus_texts


@pytest.fixture(scope="session")
def real_texts() -> dict[str, list[str]]:
    return {
        "zh_Hant": corpus_texts("traditionalchinese"),
        "zh_Hans": corpus_texts("chinese"),
        "ja": corpus_texts("japanese"),
        "th": corpus_texts("thai"),
        "en": corpus_texts("english"),
    }


@pytest.fixture(scope="session")
def llama3_tokenizer(tmp_path_factory):
    """A tiny fast tokenizer (BPE trained on the fly) carrying the real Llama-3-8B-Instruct chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from corpusforge.templates import preset

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(["hello world 你好 世界 สวัสดี"] * 20, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    hf.chat_template = preset("llama3").template
    folder = tmp_path_factory.mktemp("llama3-tok")
    hf.save_pretrained(folder)
    return hf, folder
