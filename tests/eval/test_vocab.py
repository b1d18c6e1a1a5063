"""vocab fertility / vocab extend on real text with a real SentencePiece tokenizer.

The tokenizer is Mistral 7B v0.1's (32,000 pieces, byte fallback), shipped in the mistral-common wheel. The text is
the translated messages of the gettext catalogs installed on the machine (zh_TW, th) and their English msgids,
plus chatterbot-corpus English. Extension is trained on 80% of the messages and measured on the other 20%.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import regex

from corpusforge.cli import main
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import CorpusforgeError, OutputError, SourceError
from corpusforge.eval import Doc, extend_tokenizer, iter_docs, measure_fertility, tokenizer_view
from corpusforge.eval.vocab.extend import is_heldout
from corpusforge.eval.vocab.fertility import NO_THAI_SEGMENTER, WordCount
from tests.support import corpus_texts, gettext_messages, write_jsonl

HELDOUT = 0.2
ADD = 8000
_HAN, _THAI = regex.compile(r"\p{Han}"), regex.compile(r"\p{Thai}")


def mistral_model_file() -> Path:
    import mistral_common

    path = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    assert path.is_file(), f"{path} missing: mistral-common (test extra) should ship Mistral's SentencePiece model"
    return path


@pytest.fixture(scope="module")
def messages() -> dict[str, list[tuple[str, str]]]:
    found = {locale: gettext_messages(locale) for locale in ("zh_TW", "th")}
    # The fetched catalogs (tests/text/fetch-catalogs.sh) hold ~25,000 zh_TW and ~4,100 th translated messages.
    assert len(found["zh_TW"]) > 5000 and len(found["th"]) > 2000, {k: len(v) for k, v in found.items()}
    return found


@pytest.fixture(scope="module")
def english(messages) -> list[str]:
    texts = list(dict.fromkeys([m for m, _ in messages["th"]] + corpus_texts("english")))
    assert len(texts) > 3000
    return texts


@pytest.fixture(scope="module")
def mistral_hf(tmp_path_factory) -> Path:
    """Mistral's tokenizer as an HF folder: tokenizer.model plus the tokenizer.json transformers converts it to."""
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("mistral-v1")
    shutil.copyfile(mistral_model_file(), folder / "tokenizer.model")
    LlamaTokenizer.from_pretrained(folder, add_bos_token=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, messages) -> Path:
    rows = [{"text": t, "language": "zh_Hant"} for _, t in messages["zh_TW"]]
    rows += [{"text": t, "language": "th"} for _, t in messages["th"]]
    rows += [{"text": m, "language": "en"} for m, _ in messages["th"]]
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "messages.jsonl", rows)


def heldout_texts(messages, locale: str, script) -> list[str]:
    """Held-out translations written mostly in the target script (not format strings or option lists)."""
    out = []
    for _, text in messages[locale]:
        visible = "".join(text.split())
        if is_heldout(text, HELDOUT) and len(script.findall(visible)) >= 0.5 * len(visible):
            out.append(text)
    return out


# -- fertility ----------------------------------------------------------------------------------------------------
def test_fertility_on_real_chinese_and_thai(messages, mistral_hf):
    docs = [Doc(t, "zh_Hant") for _, t in messages["zh_TW"][:5000]] + [Doc(t, "th") for _, t in messages["th"]]
    docs += [Doc(m, "en") for m, _ in messages["th"]]
    sp = measure_fertility(str(mistral_model_file()), docs).languages
    zh, th, en = sp["zh_Hant"], sp["th"], sp["en"]

    # Mistral's 32k vocabulary holds a few hundred common Han characters: the rest fall back to 3 UTF-8 bytes.
    assert 0.9 < zh.tokens_per_char < 1.4 and zh.byte_share > 0.08 and zh.word_unit == "CJK char"
    # Thai letters are single pieces, so Thai costs about one token per character and several per word.
    assert th.tokens_per_char > 0.85 and th.word_unit == "newmm" and th.tokens_per_word > 3.5
    assert en.tokens_per_char < 0.4 and en.word_unit == "spaced" and en.tokens_per_word < 2.0
    assert zh.unk_share == th.unk_share == 0.0

    # The fast tokenizer transformers builds from the same model counts the same (it splits runs of spaces
    # differently, hence not exactly).
    hf = measure_fertility(str(mistral_hf), docs, segment_words=False).languages
    for lang in ("zh_Hant", "th", "en"):
        assert hf[lang].tokens == pytest.approx(sp[lang].tokens, rel=2e-3)
        assert hf[lang].byte_tokens == sp[lang].byte_tokens


def test_word_units_by_script():
    words = WordCount()
    words.add("你好 world, 世界!  42", None)
    assert (words.cjk, words.spaced) == (4, 2)

    thai = WordCount()
    thai.add("ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรค", None)
    assert thai.total == 0 and thai.thai_unsegmented

    report = measure_fertility(str(mistral_model_file()), [Doc("ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรค", "th")])
    assert report.languages["th"].words is not None  # pythainlp is in the test extra
    assert report.languages["th"].words >= 8


def test_fertility_without_thai_segmenter(monkeypatch):
    from corpusforge.eval.vocab import fertility

    monkeypatch.setattr(fertility, "thai_segmenter", lambda: None)
    th = measure_fertility(str(mistral_model_file()), [Doc("ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรค", "th")]).languages["th"]
    assert th.words is None and th.tokens_per_word is None and th.note == NO_THAI_SEGMENTER
    assert th.tokens_per_char > 0.5


def test_byte_level_tokens_that_split_characters_count_as_bytes(llama3_tokenizer):
    _, folder = llama3_tokenizer
    view = tokenizer_view(str(folder))
    assert view.byte_level
    report = measure_fertility(view, [Doc("hello world 世界", "x"), Doc("สวัสดี", "th")]).languages
    assert report["x"].tokens == 3 and report["x"].byte_share == 0.0  # whole tokens: hello, Ġworld, Ġ世界
    # The tiny BPE merged across a Thai character boundary: สวัสดี → [ส + 2 bytes of ว] [last byte of ว] ั สด ี
    assert report["th"].tokens == 5 and report["th"].byte_share == pytest.approx(0.4)


def test_cli_fertility_on_a_saved_dataset(tmp_path, messages, capsys):
    import datasets

    texts = [t for _, t in messages["th"][:200]] + [t for _, t in messages["zh_TW"][:300]]
    langs = ["th"] * 200 + ["zh_Hant"] * 300
    datasets.Dataset.from_dict({"text": texts, "language": langs}).save_to_disk(str(tmp_path / "out"))
    code = main(["vocab", "fertility", "-t", str(mistral_model_file()), str(tmp_path / "out"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vocab_size"] == 32000 and not report["byte_level"]
    assert {k: v["docs"] for k, v in report["languages"].items()} == {"zh_Hant": 300, "th": 200}

    assert [d.language for d in iter_docs([tmp_path / "out"], max_docs=7)] == ["th"] * 7


def test_inscp_wrapper_is_measured_apart(tmp_path, messages):
    import datasets

    from corpusforge.steps.tagging import InsCPTag, TagParams

    raw = [t for _, t in messages["th"][:50]]
    tag = InsCPTag(TagParams(template="llama3"))
    out = tmp_path / "tagged"
    datasets.Dataset.from_dict({"text": [tag.tag(t) for t in raw], "language": ["th"] * 50}).save_to_disk(str(out))
    recipe = {"name": "t", "steps": [{"length": {"min_chars": 4}}, {"tag": {"template": "llama3", "user": ""}}]}
    (out / "manifest.json").write_text(json.dumps({"recipe": recipe}), encoding="utf-8")

    assert [d.text for d in iter_docs([out])] == [t.strip() for t in raw]
    tagged = [d.text for d in iter_docs([out], untag=False)]
    assert tagged[0].startswith("<|begin_of_text|><|start_header_id|>user") and tagged[0].endswith("<|eot_id|>")


def test_bad_corpus_and_tokenizer_inputs(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    with pytest.raises(SourceError, match="not a corpusforge output"):
        list(iter_docs([tmp_path / "folder"]))
    (tmp_path / "rows.jsonl").write_text('{"content": "x"}\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"rows.jsonl:1: no string field 'text' \(pass --text-field"):
        list(iter_docs([tmp_path / "rows.jsonl"]))
    code = main(["vocab", "fertility", "-t", str(tmp_path / "missing"), str(tmp_path / "rows.jsonl")])
    assert code == 2 and "missing' does not exist" in capsys.readouterr().err


# -- extension ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extended(tmp_path_factory, corpus, mistral_hf) -> Path:
    out = tmp_path_factory.mktemp("ext") / "tok"
    args = ["vocab", "extend", "-t", str(mistral_hf), str(corpus), "--add", str(ADD), "-o", str(out)]
    assert main([*args, "--heldout", str(HELDOUT), "--max-docs", "0"]) == 0
    return out


def test_extended_tokenizer_loads_and_keeps_every_base_id(extended, mistral_hf):
    from transformers import AutoTokenizer

    base, ext = AutoTokenizer.from_pretrained(mistral_hf), AutoTokenizer.from_pretrained(extended)
    report = json.loads((extended / "vocab_extension.json").read_text(encoding="utf-8"))
    assert report["base_size"] == 32000 and report["added"] > 0.8 * ADD
    assert len(ext) == 32000 + report["added"]
    assert all(ext.convert_tokens_to_ids(t) == i for t, i in base.get_vocab().items())
    assert ext.convert_ids_to_tokens(32000) == report["added_pieces"][0]
    assert (ext.bos_token_id, ext.eos_token_id, ext.unk_token_id) == (1, 2, 0)
    # Held-out before/after is in the report, and English did not move.
    assert report["token_reduction"]["en"] == 1.0 and report["token_reduction"]["th"] > 2.5


def test_extended_tokenizer_needs_far_fewer_tokens_on_heldout_target_text(extended, mistral_hf, messages):
    from transformers import AutoTokenizer

    base, ext = AutoTokenizer.from_pretrained(mistral_hf), AutoTokenizer.from_pretrained(extended)
    for locale, script in (("zh_TW", _HAN), ("th", _THAI)):
        texts = heldout_texts(messages, locale, script)
        assert len(texts) > 300, (locale, len(texts))
        before = sum(len(ids) for ids in base(texts, add_special_tokens=False)["input_ids"])
        after = sum(len(ids) for ids in ext(texts, add_special_tokens=False)["input_ids"])
        assert before / after >= 1.8, f"{locale}: {before} → {after} tokens ({before / after:.2f}×)"


def test_english_ids_identical_token_by_token(extended, mistral_hf, english):
    from transformers import AutoTokenizer

    base, ext = AutoTokenizer.from_pretrained(mistral_hf), AutoTokenizer.from_pretrained(extended)
    old, new = base(english)["input_ids"], ext(english)["input_ids"]
    changed = [(t, o, n) for t, o, n in zip(english, old, new) if o != n]
    assert not changed, f"{len(changed)} of {len(english)} English texts tokenize differently, e.g. {changed[0]}"
    assert sum(map(len, new)) > 30_000


def test_fast_and_sentencepiece_agree_after_extension(extended, mistral_hf, messages):
    """Wherever the base's fast tokenizer matches SentencePiece, the extended ones match too (Thai and Chinese)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    texts = [t for _, t in messages["th"]] + [t for _, t in messages["zh_TW"][:6000]]
    base_sp = spm.SentencePieceProcessor(model_file=str(mistral_hf / "tokenizer.model"))
    ext_sp = spm.SentencePieceProcessor(model_file=str(extended / "tokenizer.model"))
    base, ext = AutoTokenizer.from_pretrained(mistral_hf), AutoTokenizer.from_pretrained(extended)
    assert ext_sp.GetPieceSize() == len(ext)
    base_fast, ext_fast = (
        base(texts, add_special_tokens=False)["input_ids"],
        ext(texts, add_special_tokens=False)["input_ids"],
    )
    comparable = [i for i, ids in enumerate(base_fast) if ids == base_sp.encode(texts[i])]
    assert len(comparable) > 0.95 * len(texts)
    differ = [texts[i] for i in comparable if ext_fast[i] != ext_sp.encode(texts[i])]
    assert not differ, f"{len(differ)} texts differ between tokenizer.json and tokenizer.model, e.g. {differ[0]!r}"


def test_mean_init_resize_and_one_training_step(extended, mistral_hf, messages):
    """The trainer's resize takes the extended folder as it is: new rows = mean of the base pieces."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    trainer_model = pytest.importorskip("corpusforge_trainer.model")

    base, ext = AutoTokenizer.from_pretrained(mistral_hf), AutoTokenizer.from_pretrained(extended)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(base), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
        num_key_value_heads=1, head_dim=64, max_position_embeddings=256, tie_word_embeddings=False,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()

    assert trainer_model.init_new_embeddings(model, ext, base) == list(range(len(base), len(ext)))
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == len(ext) == model.config.vocab_size
    assert torch.equal(emb[: len(base)], old_in) and torch.equal(head[: len(base)], old_out)
    # A new piece starts at the mean of the base pieces it used to be split into.
    piece_id = len(base) + 5
    piece = ext.convert_ids_to_tokens(piece_id)
    parts = [t.id for t in base.backend_tokenizer.model.tokenize(piece)]
    assert len(parts) >= 2
    assert torch.allclose(emb[piece_id], old_in[parts].mean(0)) and torch.allclose(
        head[piece_id], old_out[parts].mean(0)
    )

    texts = [t for _, t in messages["zh_TW"][:8]] + [t for _, t in messages["th"][:8]]
    ext.pad_token = ext.pad_token or ext.unk_token
    batch = ext(texts, return_tensors="pt", padding="longest", truncation=True, max_length=64)
    used = batch["input_ids"][batch["input_ids"] >= len(base)].unique()
    assert len(used) > 10
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(**batch, labels=labels).loss
    loss.backward()
    before_step = emb.detach().clone()
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(model.get_input_embeddings().weight.detach()[used], before_step[used])


@pytest.fixture(scope="module")
def english_byte_bpe(tmp_path_factory, english) -> Path:
    """A GPT-2-style byte-level BPE (all 256 bytes, 2,000 ids) trained on English only: Thai costs 3 bytes a letter."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(english, trainer)
    folder = tmp_path_factory.mktemp("byte-bpe")
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(folder)
    return folder


def test_byte_level_extension_keeps_english_ids(tmp_path, english_byte_bpe, messages, english):
    from transformers import AutoTokenizer

    folder = english_byte_bpe
    rows = [{"text": t, "language": "th"} for _, t in messages["th"]]
    ext = extend_tokenizer(
        str(folder), [write_jsonl(tmp_path / "th.jsonl", rows)], 1000, tmp_path / "ext", heldout=HELDOUT
    )
    assert ext.method == "byte-level-bpe" and len(ext.added) == 1000
    reduction = ext.before.languages["th"].tokens / ext.after.languages["th"].tokens
    assert reduction > 1.8, reduction
    base, new = AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(tmp_path / "ext")
    assert len(new) == len(base) + 1000
    sample = english[:1500]
    assert base(sample)["input_ids"] == new(sample)["input_ids"]
    # again into the same folder: --overwrite replaces what the first extension wrote, and only that
    again = extend_tokenizer(
        str(folder), [tmp_path / "th.jsonl"], 500, tmp_path / "ext", heldout=HELDOUT, overwrite=True
    )
    assert len(AutoTokenizer.from_pretrained(tmp_path / "ext")) == len(base) + len(again.added)
    assert Ledger(tmp_path / "ext").unrecorded() == []


def test_extend_refuses_bad_requests(tmp_path, corpus, mistral_hf):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="--overwrite"):
        extend_tokenizer(str(mistral_hf), [corpus], 100, tmp_path / "busy", max_docs=50)
    with pytest.raises(OutputError, match=r"did not write \(keep.txt\)"):  # --overwrite never removes a user's file
        extend_tokenizer(str(mistral_hf), [corpus], 100, tmp_path / "busy", max_docs=50, overwrite=True)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "x"
    with pytest.raises(OutputError, match="is the base tokenizer's folder"):
        extend_tokenizer(str(mistral_hf), [corpus], 100, mistral_hf, overwrite=True)
    with pytest.raises(CorpusforgeError, match="--add must be a positive"):
        extend_tokenizer(str(mistral_hf), [corpus], 0, tmp_path / "x")
    with pytest.raises(SourceError, match=r"no training document with a language in \['ko'\]"):
        extend_tokenizer(str(mistral_hf), [corpus], 100, tmp_path / "x", languages=["ko"], max_docs=200)
    with pytest.raises(SourceError, match="a SentencePiece .model file or a mistral-common tekken .json"):
        extend_tokenizer(str(corpus), [corpus], 100, tmp_path / "x")


@pytest.mark.slow
def test_extend_real_byte_level_tekken(tmp_path, corpus, english):
    """Mistral NeMo's tekken (131,072-id byte-level BPE), converted by transformers, grows without moving English."""
    from transformers import AutoTokenizer
    from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

    tekken = mistral_model_file().parent / "tekken_240911.json"
    ext = extend_tokenizer(str(tekken), [corpus], 4000, tmp_path / "ext", heldout=HELDOUT, max_docs=None)
    assert ext.method == "byte-level-bpe" and ext.base_size == 131072 and len(ext.added) > 2000
    reduction = {k: v.tokens / ext.after.languages[k].tokens for k, v in ext.before.languages.items()}
    assert reduction["en"] == 1.0 and reduction["zh_Hant"] > 1.4 and reduction["th"] > 1.3, reduction
    base_folder = tmp_path / "base"
    ext_tok = AutoTokenizer.from_pretrained(tmp_path / "ext")
    convert_tekken_tokenizer(str(tekken)).save_pretrained(base_folder)
    base = AutoTokenizer.from_pretrained(base_folder)
    assert base(english)["input_ids"] == ext_tok(english)["input_ids"]
