"""Token counts, the token budget and source mixing: exact, deterministic, independent of the task split."""

from __future__ import annotations

import pytest

import corpusforge as cf
from tests.support import make_recipe, write_jsonl


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory, real_texts):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]", "<s>"], show_progress=False)
    tok.train_from_iterator(real_texts["zh_Hant"] + real_texts["en"], trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, real_texts):
    folder = tmp_path_factory.mktemp("in")
    zh = [{"id": f"zh{i}", "text": "\n".join(real_texts["zh_Hant"][i * 4 : i * 4 + 4])} for i in range(240)]
    en = [{"id": f"en{i}", "text": "\n".join(real_texts["en"][i * 4 : i * 4 + 4])} for i in range(600)]
    for part in range(3):
        write_jsonl(folder / "zh" / f"p{part}.jsonl", zh[part::3])
        write_jsonl(folder / "en" / f"p{part}.jsonl", en[part::3])
    return folder


def recipe(tmp_path, inputs, tokenizer_file, budget=None, tasks=3, workers=1):
    r = make_recipe(
        tmp_path,
        str(inputs / "zh" / "*.jsonl"),
        steps=[{"tokens": {"tokenizer": str(tokenizer_file)}}],
        source={"name": "zh", "id_field": "id"},
        executor={"tasks": tasks, "workers": workers},
    )
    r["sources"].append({"name": "en", "glob": str(inputs / "en" / "*.jsonl"), "id_field": "id"})
    if budget:
        r["budget"] = budget
    return cf.Recipe.from_dict(r)


def test_token_counts_match_raw_tokenizers(tmp_path, inputs, tokenizer_file):
    from tokenizers import Tokenizer

    result = cf.run(recipe(tmp_path, inputs, tokenizer_file))
    ds = result.load()
    raw = Tokenizer.from_file(str(tokenizer_file)).encode_batch(ds["text"], add_special_tokens=False)
    assert ds["n_tokens"] == [len(e.ids) for e in raw]
    assert result.manifest["tokens"] == sum(ds["n_tokens"])
    tokens_step = next(s for s in result.manifest["steps"] if s["step"] == "tokens")
    assert tokens_step["tokens"] == sum(ds["n_tokens"])


def test_budget_stops_within_one_document_and_is_deterministic(tmp_path, inputs, tokenizer_file):
    full = cf.run(recipe(tmp_path / "full", inputs, tokenizer_file)).load()
    total = sum(full["n_tokens"])
    budget = total // 3
    a = cf.run(recipe(tmp_path / "a", inputs, tokenizer_file, {"tokens": budget}))
    b = cf.run(recipe(tmp_path / "b", inputs, tokenizer_file, {"tokens": budget}, tasks=2, workers=2))
    got = sum(a.load()["n_tokens"])
    assert budget - max(full["n_tokens"]) < got <= budget
    assert a.manifest["budget"]["tokens"] == got == a.manifest["tokens"]
    # the same rows whatever the task split or worker count
    assert sorted(a.load()["id"]) == sorted(b.load()["id"])
    budget_row = a.manifest["steps"][-1]
    assert budget_row["step"] == "budget" and budget_row["out"] == a.manifest["rows"] < budget_row["in"]
    # rerunning the finished build changes nothing
    again = cf.run(recipe(tmp_path / "a", inputs, tokenizer_file, {"tokens": budget}))
    assert again.load().to_list() == a.load().to_list()


def test_mixing_ratio_within_one_percent(tmp_path, inputs, tokenizer_file):
    full = cf.run(recipe(tmp_path / "full", inputs, tokenizer_file)).load()
    zh_tokens = sum(n for n, s in zip(full["n_tokens"], full["source"]) if s == "zh")
    budget = int(zh_tokens / 0.9 * 0.8)  # feasible: zh is not exhausted
    result = cf.run(
        recipe(tmp_path / "mix", inputs, tokenizer_file, {"tokens": budget, "mix": {"zh": 0.9, "en": 0.1}})
    )
    ds = result.load()
    by_source = {s: sum(n for n, src in zip(ds["n_tokens"], ds["source"]) if src == s) for s in ("zh", "en")}
    total = sum(by_source.values())
    assert abs(by_source["zh"] / total - 0.9) < 0.01 and abs(by_source["en"] / total - 0.1) < 0.01
    assert abs(total - budget) / budget < 0.01
    assert result.manifest["budget"]["tokens_by_source"] == by_source


def test_mix_without_total_is_limited_by_the_scarcest_source(tmp_path, inputs, tokenizer_file):
    result = cf.run(recipe(tmp_path / "mix", inputs, tokenizer_file, {"mix": {"zh": 0.5, "en": 0.5}}))
    summary = result.manifest["budget"]
    assert summary["limited_by"] in ("zh", "en")
    scarce = summary["limited_by"]
    assert summary["tokens_by_source"][scarce] > 0.99 * summary["available_tokens"][scarce]
    shares = {k: v / summary["tokens"] for k, v in summary["tokens_by_source"].items()}
    assert abs(shares["zh"] - 0.5) < 0.01


def test_budget_errors(tmp_path, inputs, tokenizer_file):
    base = make_recipe(tmp_path, str(inputs / "zh" / "*.jsonl"), source={"name": "zh"})
    with pytest.raises(cf.RecipeError, match=r"budget: a budget needs token counts: add a `tokens` step"):
        cf.Recipe.from_dict({**base, "budget": {"tokens": 100}})
    with_tokens = {**base, "steps": [{"tokens": {"tokenizer": str(tokenizer_file)}}]}
    with pytest.raises(cf.RecipeError, match=r"budget\.mix\.english: no source is named 'english'"):
        cf.Recipe.from_dict({**with_tokens, "budget": {"mix": {"zh": 0.9, "english": 0.1}}})
    with pytest.raises(cf.RecipeError, match="mix shares must sum to 1"):
        cf.Recipe.from_dict({**with_tokens, "budget": {"mix": {"zh": 0.8}}})
    with pytest.raises(cf.RecipeError, match=r"steps\[0\]\.tokens\.tokenizer: tokenizer '/nope/tok' does not exist"):
        cf.Recipe.from_dict({**base, "steps": [{"tokens": {"tokenizer": "/nope/tok"}}]})


def test_crash_while_trimming_resumes_the_same_selection(tmp_path, inputs, tokenizer_file, monkeypatch):
    import corpusforge.shards.budget as budget_mod

    full = cf.run(recipe(tmp_path / "full", inputs, tokenizer_file)).load()
    budget = {"tokens": sum(full["n_tokens"]) // 2}
    clean = cf.run(recipe(tmp_path / "clean", inputs, tokenizer_file, budget)).load()

    real_rewrite, calls = budget_mod._rewrite, []

    def crash_on_second(path, keep, tmp_dir):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed while trimming")
        real_rewrite(path, keep, tmp_dir)

    monkeypatch.setattr(budget_mod, "_rewrite", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        cf.run(recipe(tmp_path / "crash", inputs, tokenizer_file, budget))
    monkeypatch.setattr(budget_mod, "_rewrite", real_rewrite)
    resumed = cf.run(recipe(tmp_path / "crash", inputs, tokenizer_file, budget)).load()
    assert resumed.to_list() == clean.to_list()


def test_rehydrated_copies_count_toward_the_budget(tmp_path, real_texts, tokenizer_file):
    """A cluster of 3 copies, FineWeb-2's rehydration: the survivor is written 3 times and the budget counts its
    tokens 3 times (available, kept); a budget the plain build fits in trims the rehydrated one."""
    docs = [{"id": f"zh{i}", "text": "\n".join(real_texts["zh_Hant"][i * 4 : i * 4 + 4])} for i in range(120)]
    docs += [{"id": f"again{k}", "text": docs[7]["text"]} for k in range(2)]  # zh7 has two copies: a cluster of 3
    path = write_jsonl(tmp_path / "in" / "zh.jsonl", docs)

    def build(name, rehydrate=None, budget=None):
        dedup = {"num_buckets": 4} | ({"rehydrate": rehydrate} if rehydrate else {})
        r = make_recipe(
            tmp_path / name,
            str(path),
            steps=[{"dedup": dedup}, {"tokens": {"tokenizer": str(tokenizer_file)}}],
            source={"name": "zh", "id_field": "id"},
            executor={"tasks": 2, "workers": 1},
        )
        return cf.run(cf.Recipe.from_dict({**r, **({"budget": budget} if budget else {})}), report=False)

    plain = build("plain").load()
    assert "zh7" in plain["id"] and not any(i.startswith("again") for i in plain["id"])
    per_doc = dict(zip(plain["id"], plain["n_tokens"]))
    plain_tokens = sum(per_doc.values())

    roomy = build("roomy", "fineweb2", {"tokens": 10 * plain_tokens})
    rows = roomy.load()
    assert [i for i in rows["id"] if i.split("#")[0] == "zh7"] == ["zh7", "zh7#2", "zh7#3"]
    budget = roomy.manifest["budget"]
    assert budget["available_tokens"] == {"all": plain_tokens + 2 * per_doc["zh7"]}
    assert budget["tokens"] == sum(rows["n_tokens"]) == roomy.manifest["tokens"] == plain_tokens + 2 * per_doc["zh7"]
    assert budget["rows_in"] == budget["rows_out"] == len(plain) + 2

    tight = build("tight", "fineweb2", {"tokens": plain_tokens})
    assert tight.manifest["budget"]["rows_in"] == len(plain) + 2
    assert tight.manifest["budget"]["rows_out"] < len(plain) + 2  # the copies' tokens do not fit
    assert sum(tight.load()["n_tokens"]) <= plain_tokens
