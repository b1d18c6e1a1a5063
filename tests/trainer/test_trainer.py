"""The thin trainer on a tiny Llama built here (CPU): no double BOS on InsCP text, labels exactly on assistant
tokens, packed loss = unpacked loss, loss goes down, resume continues the step count, LoRA save/load/merge,
vocabulary extension initialises new rows from the original tokenizer's pieces."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import corpusforge as cf
from tests.support import corpus_texts, make_recipe, write_jsonl

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from corpusforge.testing import tiny_chat_tokenizer, tiny_llama  # noqa: E402
from corpusforge_trainer import ConfigError, merge, train  # noqa: E402
from corpusforge_trainer.cli import main as trainer_main  # noqa: E402
from corpusforge_trainer.config import config_from_dict  # noqa: E402
from corpusforge_trainer.data import DataError, open_shards, render_with_mask, tokenize_sources  # noqa: E402
from corpusforge_trainer.model import ModelError, init_new_embeddings  # noqa: E402
from corpusforge_trainer.packing import (  # noqa: E402
    IGNORE_INDEX,
    PackedCollator,
    PackedDataset,
    best_fit_decreasing,
    build_plan,
    select_documents,
)
from corpusforge_trainer.run import prepare_data  # noqa: E402

BOS, EOT = "<|begin_of_text|>", "<|eot_id|>"


def _tokenizer(texts: list[str], vocab_size: int = 600):
    return tiny_chat_tokenizer(texts, vocab_size, bos_by_default=True, pad_token=None)


def _model(vocab_size: int, seed: int = 0):
    return tiny_llama(vocab_size, seed=seed, bos_token_id=0, eos_token_id=4)


def _conversations(n: int) -> list[dict]:
    """KD-shaped rows from real chatterbot conversations: single and multi-turn, some with a system prompt."""
    en, th = corpus_texts("english"), corpus_texts("thai")
    rows = []
    for i in range(n):
        q, a = en[(2 * i) % len(en)], th[(2 * i + 1) % len(th)]
        messages = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if i % 3 == 1:
            messages = [{"role": "system", "content": "Answer in Thai."}, *messages]
        if i % 3 == 2:
            messages += [{"role": "user", "content": en[(2 * i + 5) % len(en)]}]
            messages += [{"role": "assistant", "content": th[(2 * i + 6) % len(th)]}]
        rows.append(
            {
                "id": f"kd-{i}",
                "messages": messages,
                "kind": "recovery",
                "source_id": f"src-{i}",
                "model": "tiny",
                "params_hash": "0",
                "finish_reason": "stop",
                "n_tokens": 0,
            }
        )
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model folder, a CP shard built by a real InsCP recipe, a plain-text CP shard and a KD shard."""
    from datasets import Dataset

    root = tmp_path_factory.mktemp("trainer")
    en, th = corpus_texts("english"), corpus_texts("thai")
    tok = _tokenizer(en + th)
    model = _model(len(tok))
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")

    docs = [{"id": f"d{i}", "text": " ".join(en[i * 4 : i * 4 + 4])} for i in range(60)]
    write_jsonl(root / "in" / "docs.jsonl", docs)
    recipe = make_recipe(root, str(root / "in" / "*.jsonl"), steps=[{"tag": {"template": "llama3"}}])
    recipe["output"]["path"] = str(root / "cp")
    cf.run(cf.Recipe.model_validate(recipe), report=False)

    Dataset.from_list([{"id": d["id"], "text": d["text"], "source": "x"} for d in docs]).save_to_disk(root / "plain")
    Dataset.from_list(_conversations(24)).save_to_disk(root / "kd")
    return {"root": root, "tok": tok, "model_dir": root / "model"}


def _config(world, tmp_path, mode="cp", source="cp", **sections) -> dict:
    config = {
        "mode": mode,
        "method": "full",
        "model": {"path": str(world["model_dir"])},
        "data": {
            "sources": [{"path": str(world["root"] / source)}],
            "seq_len": 128,
            "cache_dir": str(tmp_path / "cache"),
        },
        "optim": {"lr": 3e-3, "warmup": 0, "scheduler": "constant"},
        "train": {
            "output_dir": str(tmp_path / "run"),
            "max_steps": 8,
            "batch_size": 2,
            "logging_steps": 1,
            "save_steps": 100,
            "report_to": ["none"],
            "trainer_args": {"disable_tqdm": True},
        },
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


# ---------------------------------------------------------------------------------------------------- data path
def test_a_corpus_at_a_url_trains_like_the_same_folder(world, tmp_path):
    """A corpus built to an object store is read through its URL (here memory://: the tagged build, uploaded): the
    same tokens, and the manifest still says it is InsCP-tagged."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.put(str(world["root"] / "cp"), "/corpora/cp", recursive=True)
    local = config_from_dict(_config(world, tmp_path))
    remote = config_from_dict(
        _config(
            world, tmp_path, data={"sources": [{"path": "memory://corpora/cp"}], "cache_dir": str(tmp_path / "c2")}
        )
    )
    (here,) = tokenize_sources(local, world["tok"], open_shards(local))
    (there,) = tokenize_sources(remote, world["tok"], open_shards(remote))
    assert there["input_ids"] == here["input_ids"] and there["loss_mask"] == here["loss_mask"]
    assert len(here) == 60
    missing = config_from_dict(_config(world, tmp_path, data={"sources": [{"path": "memory://corpora/none"}]}))
    with pytest.raises(Exception, match="memory://corpora/none"):
        open_shards(missing)


def test_inscp_text_keeps_one_bos(world, tmp_path):
    tok = world["tok"]
    config = config_from_dict(_config(world, tmp_path))
    (tagged,) = tokenize_sources(config, tok, open_shards(config))
    texts = open_shards(config)[0]["text"]
    assert texts[0].startswith(BOS) and texts[0].endswith(EOT)  # the recipe really tagged it
    assert tok(texts[0])["input_ids"][:2] == [tok.bos_token_id] * 2  # the hazard: a naive call doubles BOS
    for text, ids in zip(texts, tagged["input_ids"]):
        assert ids == tok(text, add_special_tokens=False)["input_ids"]
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1

    config = config_from_dict(_config(world, tmp_path, source="plain"))
    (plain,) = tokenize_sources(config, tok, open_shards(config))
    # Llama-3-Instruct's EOS is <|eot_id|>, the end of a chat turn: a plain document ends with <|end_of_text|>
    assert tok.eos_token == EOT
    for ids in plain["input_ids"]:
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
        assert ids[-1] == tok.convert_tokens_to_ids("<|end_of_text|>") and tok.eos_token_id not in ids


def test_tokenized_shards_are_cached(world, tmp_path):
    config = config_from_dict(_config(world, tmp_path))
    first = tokenize_sources(config, world["tok"], open_shards(config))[0]
    again = tokenize_sources(config, world["tok"], open_shards(config))[0]
    assert [f["filename"] for f in again.cache_files] == [f["filename"] for f in first.cache_files]
    assert Path(first.cache_files[0]["filename"]).parent == tmp_path / "cache"
    assert not list((world["root"] / "cp").glob("cache-*"))  # the shard folder is left untouched


def _assistant_spans(text: str, messages: list[dict]) -> list[tuple[int, int]]:
    """Character spans of each assistant content + <|eot_id|>, found by walking the Llama-3 layout."""
    spans, pos = [], 0
    for m in messages:
        header = f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n"
        pos = text.index(header, pos) + len(header)
        body = m["content"].strip() + EOT
        assert text[pos : pos + len(body)] == body
        if m["role"] == "assistant":
            spans.append((pos, pos + len(body)))
        pos += len(body)
    return spans


def test_labels_exactly_on_assistant_tokens(world):
    tok = world["tok"]
    for row in _conversations(9):
        messages = row["messages"]
        ids, mask = render_with_mask(tok, messages, row["id"])
        text = tok.apply_chat_template(messages, tokenize=False)
        assert ids == tok(text, add_special_tokens=False)["input_ids"]
        spans = _assistant_spans(text, messages)
        offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        for t, (s, e) in enumerate(offsets):
            inside = [lo <= s and e <= hi for lo, hi in spans]
            outside = all(e <= lo or s >= hi for lo, hi in spans)
            assert any(inside) or outside, f"token {t} straddles an assistant boundary"
            assert mask[t] == int(any(inside)), f"row {row['id']} token {t} {text[s:e]!r}"
        # and token by token, the trained tokens spell exactly each assistant turn with its end-of-turn token
        turns = [m["content"].strip() + EOT for m in messages if m["role"] == "assistant"]
        runs, previous = [], 0
        for i, keep in zip(ids, mask):
            if keep and not previous:
                runs.append([])
            if keep:
                runs[-1].append(i)
            previous = keep
        assert [tok.decode(run) for run in runs] == turns


def test_generation_blocks_give_the_same_mask(world):
    """A template with {% generation %} goes through transformers' own masks; both ways agree."""
    tok = world["tok"]
    marked = tok.__class__.from_pretrained(world["model_dir"])
    marked.chat_template = (
        "{% for m in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
        "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' }}"
        "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
        "{% else %}{{ m['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    )
    for row in _conversations(6):
        assert render_with_mask(marked, row["messages"]) == render_with_mask(tok, row["messages"])


def test_rows_without_assistant_turn_fail_loudly(world, tmp_path):
    from datasets import Dataset

    rows = _conversations(3)
    rows[1]["messages"] = [{"role": "user", "content": "hello"}]
    Dataset.from_list(rows).save_to_disk(tmp_path / "bad")
    config = config_from_dict(_config(world, tmp_path, mode="sft", source="kd"))
    config.data.sources[0].path = str(tmp_path / "bad")
    with pytest.raises(DataError, match=r"row 'kd-1'.*no assistant token"):
        tokenize_sources(config, world["tok"], open_shards(config))


def test_template_that_rewrites_history_fails_loudly(world):
    tok = world["tok"].__class__.from_pretrained(world["model_dir"])
    # Drops earlier assistant turns (as some reasoning templates drop old thoughts): not prefix-stable.
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    rows = _conversations(3)
    with pytest.raises(DataError, match="kd-2.*prefix-stable"):
        render_with_mask(tok, rows[2]["messages"], rows[2]["id"])


# ------------------------------------------------------------------------------------------------------ packing
def test_best_fit_decreasing_and_blocks():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=500)
    bins = best_fit_decreasing(lengths, 128)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(lengths[b].sum() <= 128 for b in bins)
    assert lengths.sum() / (128 * len(bins)) > 0.98

    docs = np.arange(500)
    plan = build_plan(docs, lengths, 128, "blocks", "split")
    sizes = [int((plan.row(i)[2] - plan.row(i)[1]).sum()) for i in range(len(plan))]
    assert sizes[:-1] == [128] * (len(plan) - 1) and sum(sizes) == lengths.sum()

    long = np.array([300, 20, 50])
    split = build_plan(np.arange(3), long, 128, "flatten", "split")
    assert split.stats["tokens"] == 370 and split.stats["lost_tokens"] == 0
    dropped = build_plan(np.arange(3), long, 128, "flatten", "drop")
    assert dropped.stats["dropped_documents"] == 1 and dropped.stats["tokens"] == 70
    truncated = build_plan(np.arange(3), long, 128, "pad", "truncate")
    assert truncated.stats["tokens"] == 198 and len(truncated) == 3


def test_weights_repeat_and_subsample():
    docs = select_documents([10, 40], [2.0, 0.5], seed=1)
    assert (docs < 10).sum() == 20 and np.bincount(docs[docs < 10]).tolist() == [2] * 10
    assert (docs >= 10).sum() == 20 and len(set(docs[docs >= 10].tolist())) == 20


def test_packed_loss_equals_unpacked(world):
    """Per-document losses from packed batches — one flattened sequence (flash-attention layout) or rows holding
    several documents (SDPA layout) — equal each document run alone: no cross-document attention. The same tokens
    with positions that do not restart (naive concatenation), or with a KV cache, give other losses."""
    tok = world["tok"]
    model = _model(len(tok))
    texts = [" ".join(corpus_texts("english")[i : i + n]) for i, n in ((0, 3), (10, 7), (30, 1), (40, 5))]
    docs = [np.array(tok(t)["input_ids"]) for t in texts]
    lengths = [len(d) for d in docs]
    rows = [
        {
            "input_ids": np.concatenate(pair),
            "labels": np.concatenate(pair),
            "seq_lengths": np.array([len(d) for d in pair]),
        }
        for pair in (docs[:2], docs[2:])
    ]

    def losses_of(logits, labels, seq_lengths):
        losses, start = [], 0
        for n in seq_lengths:
            lg, lb = logits[start : start + n - 1], labels[start + 1 : start + n]
            losses.append(torch.nn.functional.cross_entropy(lg, torch.as_tensor(lb)).item())
            start += n
        return losses

    def forward(batch, **change):
        inputs = {k: batch[k] for k in ("input_ids", "position_ids", "use_cache")} | change
        return model(**inputs).logits

    flat = PackedCollator("flatten", 0, varlen=True)(rows)
    by_row = PackedCollator("flatten", 0)(rows)
    assert flat["input_ids"].shape == (1, sum(lengths)) and by_row["input_ids"].shape == (
        2,
        max(map(len, (r["input_ids"] for r in rows))),
    )
    assert "attention_mask" not in flat and flat["use_cache"] is False  # with a KV cache transformers ignores packing
    assert flat["num_real_tokens"] == by_row["num_real_tokens"] == sum(lengths)
    with torch.no_grad():
        alone = [model(torch.as_tensor(d)[None], labels=torch.as_tensor(d)[None]).loss.item() for d in docs]
        all_ids = np.concatenate(docs)
        packed_flat = losses_of(forward(flat)[0], all_ids, lengths)
        logits = forward(by_row)
        packed_rows = losses_of(logits[0], rows[0]["input_ids"], lengths[:2]) + losses_of(
            logits[1], rows[1]["input_ids"], lengths[2:]
        )
        naive = losses_of(forward(flat, position_ids=torch.arange(sum(lengths))[None])[0], all_ids, lengths)
        cached = losses_of(forward(flat, use_cache=True)[0], all_ids, lengths)
        single = [{"input_ids": d, "labels": d, "seq_lengths": np.array([len(d)])} for d in docs]
        padded_loss = model(**PackedCollator("pad", 0)(single)).loss.item()
    np.testing.assert_allclose(packed_flat, alone, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(packed_rows, alone, rtol=1e-5, atol=1e-5)
    for leaky in (naive, cached):
        assert max(abs(a - b) for a, b in zip(leaky[1:], alone[1:])) > 1e-2
    # labels: -100 on every document's first token, on the filler, and nowhere else
    starts = np.cumsum([0] + lengths[:-1])
    assert (flat["labels"][0] == IGNORE_INDEX).nonzero().flatten().tolist() == starts.tolist()
    filler = by_row["position_ids"][1, lengths[2] + lengths[3] :]
    assert (by_row["labels"][1, lengths[2] + lengths[3] :] == IGNORE_INDEX).all() and filler[0] == 0
    weights = np.array(lengths) - 1
    np.testing.assert_allclose(padded_loss, (np.array(alone) * weights).sum() / weights.sum(), rtol=1e-5)


def test_packed_sft_rows_carry_the_masks(world, tmp_path):
    tok = world["tok"]
    config = config_from_dict(_config(world, tmp_path, mode="sft", source="kd", data={"seq_len": 256}))
    tokens, plan = prepare_data(config, tok)
    dataset = PackedDataset(tokens, plan)
    row = dataset[0]
    docs, starts, ends = plan.row(0)
    expected = []
    for d, s, e in zip(docs, starts, ends):
        ids, mask = tokens[int(d)]["input_ids"][s:e], tokens[int(d)]["loss_mask"][s:e]
        expected += [i if m else IGNORE_INDEX for i, m in zip(ids, mask)]
    assert row["labels"].tolist() == expected
    assert plan.stats["row_fill"] > 0.5
    # conversations longer than seq_len: dropped by default; truncated ones are kept only if an answer survives
    short = config_from_dict(_config(world, tmp_path, mode="sft", source="kd", data={"seq_len": 40}))
    tokens_d, plan_d = prepare_data(short, tok)
    too_long = sum(n > 40 for n in tokens_d["length"])
    assert short.overlong == "drop" and plan_d.stats["dropped_documents"] == too_long > 0
    short.data.overlong = "truncate"
    tokens_t, plan_t = prepare_data(short, tok)
    kept = plan_t.stats["documents"] - plan_t.stats["dropped_documents"]
    assert 24 - too_long < kept < 24 and plan_t.stats["lost_tokens"] > 0
    packed = PackedDataset(tokens_t, plan_t)
    for row in (packed[i] for i in range(len(packed))):
        starts = np.cumsum([0, *row["seq_lengths"][:-1]])
        for start, n in zip(starts, row["seq_lengths"]):
            assert (row["labels"][start + 1 : start + n] != IGNORE_INDEX).any()  # every segment trains something
    # dataloader workers receive the memory-mapped dataset by path, not the data
    shipped = pickle.dumps(dataset)
    assert len(shipped) < 50_000 and pickle.loads(shipped)[0]["labels"].tolist() == expected


def test_cp_text_and_kd_messages_mix_in_one_run(world, tmp_path):
    """InsCP text (every token trained) beside recovery KD (loss on the answer only): one run, per-source mode."""
    tok = world["tok"]
    data = {
        "sources": [{"path": str(world["root"] / "cp")}, {"path": str(world["root"] / "kd"), "mode": "sft"}],
        "seq_len": 256,
    }
    config = config_from_dict(_config(world, tmp_path, data=data))
    tokens, plan = prepare_data(config, tok)
    cp_rows, kd_rows = (len(open_shards(config)[i]) for i in (0, 1))
    assert len(tokens) == cp_rows + kd_rows
    cp_masks, kd_masks = tokens["loss_mask"][:cp_rows], tokens["loss_mask"][cp_rows:]
    assert all(all(m) for m in cp_masks)  # cp: every token
    assert all(0 < sum(m) < len(m) for m in kd_masks)  # sft: the assistant turns, not the prompt
    kd_only = config_from_dict(_config(world, tmp_path, data={"sources": [{"path": str(world["root"] / "kd")}]}))
    with pytest.raises(ConfigError, match="mode cp reads the 'text' column.*set `mode: sft`"):
        prepare_data(kd_only, tok)


# ------------------------------------------------------------------------------------------------------ training
def _history(run: Path) -> list[dict]:
    return json.loads((run / "trainer_state.json").read_text())["log_history"]


def test_loss_decreases_and_stats_are_written(world, tmp_path):
    config = _config(world, tmp_path, optim={"lr": 6e-3}, train={"max_steps": 12, "save_steps": 12})
    result = train(config_from_dict(config))
    losses = [h["loss"] for h in _history(result.output_dir / "checkpoint-12") if "loss" in h]
    assert len(losses) == 12 and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    stats = json.loads((result.output_dir / "train_stats.json").read_text())
    assert stats["global_step"] == 12 and 0.9 < stats["real_token_share"] <= 1.0 and stats["tokens_per_second"] > 0
    data = json.loads((result.output_dir / "data_stats.json").read_text())
    assert data["packing"] == "flatten" and data["row_fill"] == data["tokens"] / (data["rows"] * 128)
    assert (result.output_dir / "model.safetensors").is_file()


def test_pad_packing_reports_its_padding(world, tmp_path):
    config = config_from_dict(
        _config(world, tmp_path, source="kd", mode="sft", data={"packing": "pad"}, train={"max_steps": 3})
    )
    stats = train(config).train_stats
    assert 0.3 < stats["real_token_share"] < 1.0
    assert stats["loss_tokens"] < stats["real_tokens"]  # sft: prompts carry no loss


def test_resume_continues_the_step_count(world, tmp_path, capfd):
    overrides = {"train": {"max_steps": 4, "save_steps": 2}}
    first = train(config_from_dict(_config(world, tmp_path, **overrides)))
    assert first.global_step == 4
    # stderr is not a terminal here: the run ends with a plain progress line, not a tqdm bar
    last = [line for line in capfd.readouterr().err.splitlines() if line.startswith("training steps: ")][-1]
    assert last.startswith("training steps: 4 / 4 (100%)") and " · loss " in last and last.endswith(" · done")
    with pytest.raises(ConfigError, match=r"train\.resume.*checkpoint-4"):
        train(config_from_dict(_config(world, tmp_path, train={"max_steps": 6})))
    second = train(config_from_dict(_config(world, tmp_path, train={"max_steps": 6, "save_steps": 2, "resume": True})))
    assert second.global_step == 6 and second.train_stats["resumed_from"].endswith("checkpoint-4")
    steps = [h["step"] for h in _history(second.output_dir / "checkpoint-6") if "loss" in h]
    assert steps == [1, 2, 3, 4, 5, 6]  # continued: steps 1-4 were not run again
    assert "training steps: 6 / 6 (100%)" in capfd.readouterr().err
    assert second.train_stats["real_tokens"] < first.train_stats["real_tokens"]  # two steps of work, not six


def test_the_same_lora_config_trains_the_same_adapter(world, tmp_path):
    """The LoRA matrices are drawn before Trainer seeds itself: without seeding them, two runs of one config gave
    two models (the example's scorecard read 38% and 24% Traditional Chinese answers on two identical runs)."""
    from safetensors.torch import load_file

    weights = []
    for run in ("a", "b"):
        config = _config(world, tmp_path, method="lora", lora={"r": 4, "alpha": 8}, train={"max_steps": 2})
        config["train"]["output_dir"] = str(tmp_path / run)
        weights.append(load_file(str(train(config_from_dict(config)).output_dir / "adapter_model.safetensors")))
    assert weights[0].keys() == weights[1].keys() and weights[0]
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0)


def test_lora_adapter_saves_loads_and_merges(world, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = config_from_dict(
        _config(
            world,
            tmp_path,
            mode="sft",
            source="kd",
            method="lora",
            lora={
                "r": 4,
                "alpha": 8,
                "target_modules": ["q_proj", "v_proj"],
                "modules_to_save": ["embed_tokens", "lm_head"],
            },
            train={"max_steps": 3, "save_steps": 3, "gradient_checkpointing": True},
        )
    )
    run = train(config).output_dir
    assert (run / "adapter_config.json").is_file() and not (run / "model.safetensors").exists()
    ids = torch.as_tensor(world["tok"]("hello สวัสดี")["input_ids"])[None]
    base = AutoModelForCausalLM.from_pretrained(world["model_dir"])
    with torch.no_grad():
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, str(run)).eval()
        adapted_logits = adapted(ids).logits
    assert (adapted_logits - base_logits).abs().max() > 1e-3  # the adapter changed something

    merged_dir = merge(run, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    assert not (merged_dir / "adapter_config.json").exists()
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted_logits, rtol=1e-4, atol=1e-4)
    # a checkpoint merges too (the run info is found in its parent), here through the command line
    assert trainer_main(["merge", str(run / "checkpoint-3"), "--output", str(tmp_path / "merged-ckpt")]) == 0
    ckpt = AutoModelForCausalLM.from_pretrained(tmp_path / "merged-ckpt")
    with torch.no_grad():
        torch.testing.assert_close(ckpt(ids).logits, adapted_logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ModelError, match="no adapter_config.json"):
        merge(tmp_path / "merged", tmp_path / "again")


# ------------------------------------------------------------------------------------------ vocabulary extension
def test_new_rows_are_the_mean_of_the_original_pieces(world, tmp_path):
    base_tok = world["tok"]
    extended = base_tok.__class__.from_pretrained(world["model_dir"])
    new_words = ["สวัสดีครับ", " conversation", "<|th|>"]
    extended.add_tokens(new_words)
    model = _model(len(base_tok), seed=3)
    before_in = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone()

    new = init_new_embeddings(model, extended, base_tok)
    assert len(new) == 3 and model.get_input_embeddings().weight.shape[0] == len(extended)
    for word, i in zip(new_words, new):
        pieces = base_tok(word, add_special_tokens=False)["input_ids"]
        assert len(pieces) > 1
        torch.testing.assert_close(model.get_input_embeddings().weight[i], before_in[pieces].mean(0))
        torch.testing.assert_close(model.get_output_embeddings().weight[i], before_out[pieces].mean(0))
    torch.testing.assert_close(model.get_input_embeddings().weight[: len(base_tok)], before_in)

    renumbered = base_tok.__class__.from_pretrained(world["model_dir"])
    renumbered.backend_tokenizer.model = type(renumbered.backend_tokenizer.model)(
        vocab={t: (i + 1) % len(base_tok) for t, i in base_tok.backend_tokenizer.get_vocab(False).items()},
        merges=[],
    )
    with pytest.raises(ModelError, match="renumbers"):
        init_new_embeddings(_model(len(base_tok)), renumbered, base_tok)


def test_pieces_of_a_vocab_extend_tokenizer(world, tmp_path):
    """`corpusforge vocab extend` adds byte-level BPE pieces, often partial UTF-8 characters: each new row is the
    mean of the base pieces the original BPE model splits the piece string into."""
    from transformers import AutoTokenizer

    from corpusforge.eval import extend_tokenizer as grow_tokenizer

    corpus = tmp_path / "th.txt"
    corpus.write_text("\n".join(corpus_texts("thai") * 3), encoding="utf-8")
    grow_tokenizer(str(world["model_dir"]), [corpus], 40, tmp_path / "tok-ext", heldout=0.0)
    extended = AutoTokenizer.from_pretrained(tmp_path / "tok-ext")
    base_tok = world["tok"]
    model = _model(len(base_tok), seed=4)
    before = model.get_input_embeddings().weight.detach().clone()
    new = init_new_embeddings(model, extended, base_tok)
    assert len(new) == len(extended) - len(base_tok) > 10
    bpe = base_tok.backend_tokenizer.model
    for i in new:
        pieces = [t.id for t in bpe.tokenize(extended.convert_ids_to_tokens(i))]
        assert len(pieces) > 1 and max(pieces) < len(base_tok)
        torch.testing.assert_close(model.get_input_embeddings().weight[i], before[pieces].mean(0))


def test_training_with_an_extended_tokenizer(world, tmp_path):
    extended = world["tok"].__class__.from_pretrained(world["model_dir"])
    extended.add_tokens(["สวัสดีครับ"])
    extended.save_pretrained(tmp_path / "tok")
    config = _config(world, tmp_path, train={"max_steps": 1})
    config["model"]["tokenizer"] = str(tmp_path / "tok")
    run = train(config_from_dict(config)).output_dir
    info = json.loads((run / "corpusforge_train.json").read_text())
    assert info["vocabulary"] == {
        "rows_before": len(world["tok"]),
        "rows_after": len(world["tok"]) + 1,
        "new_tokens": 1,
        "base_tokenizer": str(world["model_dir"]),
    }
    # without a base tokenizer to take pieces from, a bigger tokenizer is an error naming the key
    config = _config(world, tmp_path / "b", train={"max_steps": 1})
    extended.save_pretrained(tmp_path / "model-ext")
    _model(len(world["tok"])).save_pretrained(tmp_path / "model-ext")
    config["model"]["path"] = str(tmp_path / "model-ext")
    with pytest.raises(ConfigError, match=r"model\.base_tokenizer"):
        train(config_from_dict(config))


def test_a_trl_style_block_of_standard_names_trains_the_same_run(world, tmp_path):
    """Hyper-parameters written with TrainingArguments' own names (as for TRL or LLaMA-Factory) carry over: the run
    is the one our names give, step for step."""
    ours = _config(world, tmp_path, optim={"lr": 4e-3, "warmup": 0.25, "scheduler": "linear"})
    ours["train"].update(
        max_steps=4, save_steps=4, batch_size=2, grad_accum=2, seed=3, output_dir=str(tmp_path / "ours")
    )
    standard = _config(world, tmp_path)
    del standard["optim"]
    standard["train"] = {
        "output_dir": str(tmp_path / "standard"),
        "learning_rate": 4e-3,
        "lr_scheduler_type": "linear",
        "warmup_ratio": 0.25,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "max_steps": 4,
        "seed": 3,
        "logging_steps": 1,
        "save_steps": 4,
        "report_to": "none",
        "disable_tqdm": True,  # not ours: passed through to TrainingArguments
    }
    parsed = config_from_dict(standard)
    assert (parsed.optim.lr, parsed.optim.warmup, parsed.train.grad_accum) == (4e-3, 0.25, 2)
    assert parsed.train.trainer_args == {"disable_tqdm": True}
    runs = [train(config_from_dict(c)).output_dir for c in (ours, standard)]
    history = [
        [(h["step"], h["loss"], h["learning_rate"]) for h in _history(r / "checkpoint-4") if "loss" in h] for r in runs
    ]
    assert len(history[0]) == 4 and history[0] == history[1]
    with pytest.raises(ConfigError, match=r"train.learning_rate and optim.lr both set"):
        config_from_dict({**standard, "optim": {"lr": 1e-3}})
