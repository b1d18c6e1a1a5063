"""perplexity: the step's scores equal a one-document-at-a-time hand computation with a tiny Llama loaded from a
local folder; thresholds drop with their reasons; the score reaches the shards' metadata column."""

from __future__ import annotations

import json
import pickle
from functools import cache

import pytest
from datatrove.data import Document

import corpusforge as cf
from corpusforge.errors import RecipeError
from corpusforge.steps.perplexity import Perplexity, PerplexityParams
from tests.support import corpus_texts, make_recipe, write_jsonl

torch = pytest.importorskip("torch")

SEEN = "The quick brown fox jumps over the lazy dog."  # the tiny model is trained on this sentence
UNSEEN = "zq xv wp kj mm rr lo pqz"


@cache
def english() -> list[str]:
    return corpus_texts("english")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 2-layer Llama (head_dim 64) with a BPE trained on real English text, overfit on SEEN, saved to a folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(english(), trainer)
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    assert tokenizer.bos_token_id == 0

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    ids = tokenizer(" ".join([SEEN] * 4), return_tensors="pt").input_ids
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, tokenizer, model


def hand_ppl(tokenizer, model, text: str, max_length: int) -> float:
    add_bos = not text.startswith(tokenizer.bos_token)
    ids = tokenizer(text, add_special_tokens=add_bos, return_tensors="pt").input_ids[:, :max_length]
    with torch.no_grad():
        return model(ids, labels=ids).loss.exp().item()


def score(step, texts):
    out = list(step.run(iter(Document(text=t, id=str(i)) for i, t in enumerate(texts))))
    return [d.id for d in out], [d.metadata["perplexity"] for d in out]


def docs_of_many_lengths():
    return [
        english()[3],
        SEEN,
        " ".join(english()[10:40]),  # longer than max_length: truncated
        UNSEEN,
        "<s>" + english()[7],  # already carries BOS: `auto` adds none
        english()[50] + " " + english()[51],
    ]


def test_scores_equal_hand_computation_in_padded_batches(tiny_lm):
    folder, tokenizer, model = tiny_lm
    texts = docs_of_many_lengths()
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert max(lengths) > 64 and min(lengths) < 32  # one padded batch holds very different lengths

    expected = [hand_ppl(tokenizer, model, t, max_length=64) for t in texts]
    results = {}
    for batch_size in (1, 4, 8):
        step = Perplexity(PerplexityParams(model=str(folder), batch_size=batch_size, max_length=64, device="cpu"))
        ids, scores = score(step, texts)
        assert ids == [str(i) for i in range(len(texts))]  # input order, although sorted by length inside
        assert scores == pytest.approx(expected, rel=1e-4)
        results[batch_size] = scores
    assert results[1] == pytest.approx(results[4], rel=1e-5) and results[4] == pytest.approx(results[8], rel=1e-5)
    # what was trained scores far lower than what was not
    assert expected[1] < 3 and expected[3] > 100


def test_bos_handling_changes_the_score(tiny_lm):
    folder, tokenizer, model = tiny_lm
    text = english()[3]
    with_bos = Perplexity(PerplexityParams(model=str(folder), device="cpu"))
    without = Perplexity(PerplexityParams(model=str(folder), device="cpu", add_special_tokens=False))
    (_, [a]), (_, [b]) = score(with_bos, [text]), score(without, [text])
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        assert b == pytest.approx(model(ids, labels=ids).loss.exp().item(), rel=1e-4)
    assert a == pytest.approx(hand_ppl(tokenizer, model, text, 1024), rel=1e-4)
    assert a != pytest.approx(b, rel=1e-3)


def test_thresholds_drop_with_reasons_and_label_only_keeps(tiny_lm):
    folder, _, _ = tiny_lm
    texts = [SEEN, UNSEEN, SEEN + " " + SEEN, UNSEEN + " " + UNSEEN, ""]
    step = Perplexity(PerplexityParams(model=str(folder), min=10, device="cpu"))
    ids, scores = score(step, texts)
    assert ids == ["1", "3"] and all(s > 10 for s in scores)
    assert step.stats["dropped_perplexity_low"].total == 2
    assert step.stats["dropped_perplexity_no_tokens"].total == 1  # "" is only BOS: nothing to predict

    step = Perplexity(PerplexityParams(model=str(folder), max=10, device="cpu"))
    assert score(step, texts)[0] == ["0", "2"]
    assert step.stats["dropped_perplexity_high"].total == 2 and step.stats["forwarded"].total == 2

    step = Perplexity(PerplexityParams(model=str(folder), min=10, max=1e9, label_only=True, device="cpu"))
    ids, scores = score(step, texts)
    assert ids == ["0", "1", "2", "3", "4"] and scores[4] is None
    assert scores[0] < 10 < scores[1]
    assert step.stats["dropped"].total == 0 and step.stats["forwarded"].total == 5


def test_step_pickles_without_its_model(tiny_lm):
    folder, _, _ = tiny_lm
    step = Perplexity(PerplexityParams(model=str(folder), device="cpu"))
    score(step, [SEEN])
    assert step._scorer is not None
    clone = pickle.loads(pickle.dumps(step))
    assert len(pickle.dumps(step)) < 20_000 and clone._scorer is None
    assert score(clone, [SEEN])[1] == score(step, [SEEN])[1]


def test_run_writes_score_into_metadata(tmp_path, tiny_lm):
    folder, tokenizer, model = tiny_lm
    rows = [{"id": "seen", "text": SEEN}, {"id": "unseen", "text": UNSEEN}, {"id": "seen2", "text": f"{SEEN} {SEEN}"}]
    write_jsonl(tmp_path / "in.jsonl", rows)
    recipe = make_recipe(
        tmp_path,
        str(tmp_path / "in.jsonl"),
        steps=[{"perplexity": {"model": str(folder), "max": 10}}],
        source={"id_field": "id"},
    )
    result = cf.run(cf.Recipe.from_dict(recipe))
    ds = result.load()
    assert sorted(ds["id"]) == ["seen", "seen2"]
    for row in ds:
        ppl = json.loads(row["metadata"])["perplexity"]
        assert ppl == pytest.approx(hand_ppl(tokenizer, model, row["text"], 1024), rel=1e-4)
    step = {s["step"]: s for s in result.manifest["steps"]}["perplexity"]
    assert step["in"] == 3 and step["out"] == 2 and step["dropped"] == {"perplexity_high": 1}


def test_bad_params_are_reported_at_validation(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match="model folder '.*no-such-model' does not exist"):
        PerplexityParams(model=str(missing))
    write_jsonl(tmp_path / "in.jsonl", [{"text": "x"}])
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"perplexity": {"model": "./models/llama"}}])
    with pytest.raises(RecipeError, match=r"steps\[0\]\.perplexity\.model: .*'./models/llama' does not exist"):
        cf.Recipe.from_dict(recipe)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        PerplexityParams(model=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"min \(30.0\) must be < max \(15.0\)"):
        PerplexityParams(model="org/model", min=30, max=15)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        PerplexityParams(model="org/model", device="gpu")
    assert PerplexityParams(model="meta-llama/Meta-Llama-3-8B-Instruct").model  # a Hub id: checked when loaded


def test_missing_torch_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ImportError, match=r"needs torch: pip install 'corpusforge\[ppl\]'"):
        Perplexity(PerplexityParams(model="org/model"))


def test_unscorable_documents_are_never_kept_by_a_threshold():
    class Fixed:  # a stand-in backend: the step only applies thresholds to what the scorer returns
        def score(self, texts):
            return [None if t == "none" else float(t) for t in texts]

    step = Perplexity(PerplexityParams(model="org/model", min=1, max=100))
    step._scorer = Fixed()
    ids, scores = score(step, ["nan", "none", "inf", "50.1234567", "0.5"])
    assert ids == ["3"] and scores == [50.1235]
    for reason in ("nan", "no_tokens", "high", "low"):
        assert step.stats[f"dropped_perplexity_{reason}"].total == 1
    step = Perplexity(PerplexityParams(model="org/model"))  # no threshold: annotate, keep all
    step._scorer = Fixed()
    assert score(step, ["nan", "none", "2"])[1] == [None, None, 2.0]
