"""`mode: dpo` on a tiny Llama built here (CPU): pairs tokenized as the sft path tokenizes assistant turns, packed
pairs scored as if each completion ran alone, the loss variants as their docstrings say, loss going down, one copy
of the base weights with LoRA, the precomputed reference cached and reused on resume, merge, config errors naming
the key — and, where TRL is installed (`make test-compat`), the same loss and gradient norm as TRL's DPOTrainer on
the same pairs and model, with TRL reading the rows unchanged."""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.support import corpus_texts

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from corpusforge.testing import tiny_chat_tokenizer, tiny_llama  # noqa: E402
from corpusforge_trainer import ConfigError, train  # noqa: E402
from corpusforge_trainer.cli import main as trainer_main  # noqa: E402
from corpusforge_trainer.config import config_from_dict, load_config  # noqa: E402
from corpusforge_trainer.data import DataError, TokenizePairs, open_shards, render_with_mask  # noqa: E402
from corpusforge_trainer.dpo import REFERENCE_DIR, completion_logps, preference_loss  # noqa: E402
from corpusforge_trainer.packing import PackedPairs, PairCollator  # noqa: E402
from corpusforge_trainer.run import build_trainer, prepare_data, setup_run  # noqa: E402

EOT = "<|eot_id|>"
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def _pairs(n: int, offset: int = 0) -> list[dict]:
    """Rows as the KD `preference` task writes them (TRL's conversational preference format, plus its own columns):
    an English question, the Traditional Chinese answer chosen over an English one."""
    en, zh = corpus_texts("english"), corpus_texts("traditionalchinese")
    rows = []
    for i in range(offset, offset + n):
        rows.append(
            {
                "id": f"pair-{i}",
                "prompt": [{"role": "user", "content": en[2 * i]}],
                "chosen": [{"role": "assistant", "content": zh[(2 * i + 1) % len(zh)]}],
                "rejected": [{"role": "assistant", "content": en[2 * i + 1]}],
                "scores": [0.9, 0.2],
                "reasons": ["answers in the prompt's target language", "answers in English"],
            }
        )
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model folder, a shard of 24 preference pairs and an sft shard."""
    from datasets import Dataset

    root = tmp_path_factory.mktemp("dpo")
    en, zh = corpus_texts("english"), corpus_texts("traditionalchinese")
    tok = tiny_chat_tokenizer(en + zh, 600, bos_by_default=True, pad_token=None)
    tiny_llama(len(tok), bos_token_id=0, eos_token_id=4).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    Dataset.from_list(_pairs(24)).save_to_disk(root / "pairs")
    Dataset.from_list(_pairs(4)).save_to_disk(root / "pairs4")
    sft = [{"id": r["id"], "messages": r["prompt"] + r["chosen"]} for r in _pairs(6)]
    Dataset.from_list(sft).save_to_disk(root / "kd")
    return {"root": root, "tok": tok, "model_dir": root / "model"}


def _config(world, tmp_path, method="lora", source="pairs", **sections) -> dict:
    config = {
        "mode": "dpo",
        "method": method,
        "model": {"path": str(world["model_dir"])},
        "data": {
            "sources": [{"path": str(world["root"] / source)}],
            "seq_len": 256,
            "cache_dir": str(tmp_path / "cache"),
        },
        "optim": {"lr": 1e-2 if method == "lora" else 3e-3, "warmup": 0, "scheduler": "constant"},
        "train": {
            "output_dir": str(tmp_path / "run"),
            "max_steps": 8,
            "batch_size": 2,
            "logging_steps": 1,
            "save_steps": 100,
            "trainer_args": {"disable_tqdm": True},
        },
    }
    if method == "lora":
        config["lora"] = dict(LORA)
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def _history(run: Path) -> list[dict]:
    return json.loads((run / "trainer_state.json").read_text())["log_history"]


def _alone(model, ids: list[int], mask: list[int]) -> float:
    """Summed log-probability of the masked tokens, the sequence run through the model by itself."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].double()
    logps = logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
    return float((logps * torch.tensor(mask[1:])).sum())


# ----------------------------------------------------------------------------------------------------- tokenizing
def test_pairs_are_tokenized_as_sft_assistant_turns(world):
    """prompt+chosen and prompt+rejected, each rendered by the chat template; the trained tokens are exactly the
    completion and its end-of-turn token, as for an sft assistant turn."""
    tok = world["tok"]
    rows = _pairs(5)
    out = TokenizePairs(tok, "pairs")({k: [r[k] for r in rows] for k in rows[0]})
    for row, ids, mask, cut in zip(rows, out["input_ids"], out["loss_mask"], out["chosen_length"]):
        for part, (lo, hi) in (("chosen", (0, cut)), ("rejected", (cut, len(ids)))):
            conversation = row["prompt"] + row[part]
            assert (ids[lo:hi], mask[lo:hi]) == render_with_mask(tok, conversation)
            prompt = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
            assert tok.decode(ids[lo:hi]).startswith(prompt)
            trained = [i for i, m in zip(ids[lo:hi], mask[lo:hi]) if m]
            assert tok.decode(trained) == row[part][0]["content"].strip() + EOT
            assert mask[lo:hi] == sorted(mask[lo:hi])  # one run at the end: the completion
    # a prompt that holds an earlier exchange: only the final answer is a completion
    row = _pairs(1)[0]
    earlier = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}]
    ids, mask = TokenizePairs(tok).one(earlier + row["prompt"], row["chosen"])
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == row["chosen"][0]["content"].strip() + EOT
    marked = tok.__class__.from_pretrained(world["model_dir"])
    marked.chat_template = (
        "{% for m in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
        "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' }}"
        "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
        "{% else %}{{ m['content'] | trim + '<|eot_id|>' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    )
    assert TokenizePairs(marked).one(earlier + row["prompt"], row["chosen"]) == (ids, mask)


def test_text_pairs_are_tokenized_as_trl_does(world):
    """The standard (non-conversational) form: prompt and completions are strings; EOS closes each completion."""
    tok = world["tok"]
    prompt, chosen = "Question: what is AI? Answer:", " The science of thinking machines."
    ids, mask = TokenizePairs(tok).one(prompt, chosen)
    assert ids == tok(prompt + chosen + tok.eos_token)["input_ids"]
    assert ids[: mask.index(1)] == tok(prompt)["input_ids"] and ids[-1] == tok.eos_token_id
    with pytest.raises(
        DataError,
        match=r"row 'x' in s: `prompt` and `rejected` must both be lists of messages.*got str and list \(empty\)",
    ):
        TokenizePairs(tok, "s")({"id": ["x"], "prompt": [prompt], "chosen": [chosen], "rejected": [[]]})


def test_a_completion_without_an_assistant_turn_names_the_row(world):
    row = _pairs(1)[0]
    row["rejected"] = [{"role": "user", "content": "not an answer"}]
    with pytest.raises(DataError, match=r"row 'pair-0' in s: `rejected` has no assistant turn.*roles: user"):
        TokenizePairs(world["tok"], "s")({k: [v] for k, v in row.items()})


# ------------------------------------------------------------------------------------------------------- batches
@pytest.mark.parametrize(("packing", "varlen"), [("flatten", False), ("flatten", True), ("pad", False)])
def test_packed_pairs_score_each_completion_as_if_alone(world, tmp_path, packing, varlen):
    """Several pairs in a packed row (or one flattened sequence, or TRL's padded layout): each completion's summed
    log-probability equals that sequence run through the model alone."""
    model = tiny_llama(len(world["tok"]), seed=1, bos_token_id=0, eos_token_id=4)
    config = config_from_dict(_config(world, tmp_path, data={"packing": packing}))
    tokens, plan = prepare_data(config, world["tok"])
    dataset = PackedPairs(tokens, plan)
    fullest = sorted(range(len(dataset)), key=lambda i: -len(plan.row(i)[0]))[:3]
    rows = [dataset[i] for i in fullest]
    assert packing == "pad" or len(rows[0]["pairs"]) > 1  # packed: several pairs in a row
    batch = PairCollator(packing, world["tok"].pad_token_id or 0, varlen)(rows)
    pairs = np.concatenate([r["pairs"] for r in rows]).tolist()
    assert batch["num_sequences"] == 2 * len(pairs)
    with torch.no_grad():
        sums, counts = completion_logps(model, batch)
    expected, lengths = [], []
    for half in (0, 1):
        for p in pairs:
            ids, mask, cut = tokens[p]["input_ids"], tokens[p]["loss_mask"], tokens[p]["chosen_length"]
            part = slice(0, cut) if half == 0 else slice(cut, len(ids))
            expected.append(_alone(model, ids[part], mask[part]))
            lengths.append(sum(mask[part]))
    np.testing.assert_allclose(sums.numpy(), expected, rtol=1e-5, atol=1e-4)
    assert counts.tolist() == lengths


def test_the_loss_variants_compute_what_they_say():
    """Two pairs, chosen first: policy and reference summed log-probs and completion lengths."""
    policy = torch.tensor([-10.0, -30.0, -14.0, -20.0], dtype=torch.float64)
    reference = torch.tensor([-12.0, -29.0, -13.0, -22.0], dtype=torch.float64)
    lengths = torch.tensor([5, 10, 7, 4])
    beta = 0.5
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    p, r, n = policy.numpy(), reference.numpy(), lengths.numpy()

    losses, chosen, rejected = preference_loss(policy, reference, lengths, beta)
    margin = (p[:2] - r[:2]) - (p[2:] - r[2:])
    np.testing.assert_allclose(losses.numpy(), -np.log(sig(beta * margin)))
    np.testing.assert_allclose(chosen.numpy(), beta * (p[:2] - r[:2]))
    np.testing.assert_allclose(rejected.numpy(), beta * (p[2:] - r[2:]))

    losses, *_ = preference_loss(policy, reference, lengths, beta, length_normalized=True)
    s = (p - r) / n
    np.testing.assert_allclose(losses.numpy(), -np.log(sig(beta * (s[:2] - s[2:]))))

    losses, chosen, _ = preference_loss(policy, None, lengths, beta)  # reference-free: log π_ref = 0
    np.testing.assert_allclose(losses.numpy(), -np.log(sig(beta * (p[:2] - p[2:]))))
    np.testing.assert_allclose(chosen.numpy(), beta * p[:2])

    losses, *_ = preference_loss(policy, None, lengths, beta, length_normalized=True)  # SimPO without its margin
    np.testing.assert_allclose(losses.numpy(), -np.log(sig(beta * (p[:2] / n[:2] - p[2:] / n[2:]))))

    losses, *_ = preference_loss(policy, reference, lengths, beta, "ipo")
    np.testing.assert_allclose(losses.numpy(), (s[:2] - s[2:] - 1 / (2 * beta)) ** 2)


def test_a_reference_free_length_normalized_step_is_simpo_without_margin(world, tmp_path):
    """The trainer's loss on a batch, end to end, against the formula on each completion scored alone."""
    config = config_from_dict(
        _config(world, tmp_path, method="full", dpo={"reference_free": True, "length_normalized": True, "beta": 2.0})
    )
    trainer = build_trainer(config, setup_run(config))
    assert not (tmp_path / "run" / REFERENCE_DIR).exists()  # nothing to precompute
    rows = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer._prepare_inputs(trainer.data_collator(rows))
    loss = trainer.compute_loss(trainer.model, batch)
    tokens, margins = trainer.train_dataset.tokens, []
    for p in np.concatenate([r["pairs"] for r in rows]).tolist():
        ids, mask, cut = tokens[p]["input_ids"], tokens[p]["loss_mask"], tokens[p]["chosen_length"]
        chosen = _alone(trainer.model, ids[:cut], mask[:cut]) / sum(mask[:cut])
        rejected = _alone(trainer.model, ids[cut:], mask[cut:]) / sum(mask[cut:])
        margins.append(chosen - rejected)
    expected = np.mean([-math.log(1 / (1 + math.exp(-2.0 * m))) for m in margins])
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------------------------------------ training
def test_lora_dpo_learns_resumes_and_merges(world, tmp_path):
    """The adapter starts at zero, so policy = reference and the first loss is log 2; the loss goes down and the
    chosen answers win; a rerun with `resume: true` continues the step count; the adapter merges."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    first = train(config_from_dict(_config(world, tmp_path, train={"max_steps": 8, "save_steps": 4})))
    history = [h for h in _history(first.output_dir / "checkpoint-8") if "loss" in h]
    losses = [h["loss"] for h in history]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4) and history[0]["rewards/margins"] == 0
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert history[-1]["rewards/accuracies"] == 1 and history[-1]["rewards/margins"] > 0
    assert {"rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"} <= set(history[-1])
    assert not (first.output_dir / REFERENCE_DIR).exists()  # the reference is the model with its adapter off

    again = _config(world, tmp_path, train={"max_steps": 10, "save_steps": 5, "resume": True})
    second = train(config_from_dict(again))
    assert second.global_step == 10 and second.train_stats["resumed_from"].endswith("checkpoint-8")
    assert [h["step"] for h in _history(second.output_dir / "checkpoint-10") if "loss" in h] == list(range(1, 11))

    run = second.output_dir
    assert trainer_main(["merge", str(run), "--output", str(tmp_path / "merged")]) == 0
    ids = torch.as_tensor(world["tok"]("hello 你好")["input_ids"])[None]
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(world["model_dir"]), str(run))
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
        torch.testing.assert_close(merged(ids).logits, adapted.eval()(ids).logits, rtol=1e-4, atol=1e-4)


def test_lora_dpo_holds_one_copy_of_the_base_weights(world, tmp_path, monkeypatch):
    """While the reference log-probabilities are computed (adapter off, no grad), the only tensors of the
    embedding's shape alive are the model's own: no second model, no copied weights."""
    import corpusforge_trainer.dpo as dpo_module

    config = config_from_dict(_config(world, tmp_path, train={"max_steps": 2, "gradient_checkpointing": True}))
    trainer = build_trainer(config, setup_run(config))
    model = trainer.model
    shape = model.get_input_embeddings().weight.shape
    own = {p.data_ptr() for p in model.parameters() if p.shape == shape}
    assert len(own) == 2  # embed_tokens and the untied lm_head
    base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    assert base == sum(p.numel() for p in tiny_llama(len(world["tok"])).parameters())
    assert not [v for v in vars(trainer).values() if isinstance(v, torch.nn.Module) and v is not model]

    seen = []
    real = dpo_module.completion_logps

    def watching(model, batch, keep_logits=True):
        if not torch.is_grad_enabled():  # the reference pass
            objects = gc.get_objects()
            alive = {t.data_ptr() for t in objects if issubclass(type(t), torch.Tensor) and t.shape == shape}
            seen.append(alive)
        return real(model, batch, keep_logits)

    monkeypatch.setattr(dpo_module, "completion_logps", watching)
    trainer.train()
    assert len(seen) == 2 and all(alive == own for alive in seen)


def test_full_dpo_precomputes_the_reference_once(world, tmp_path):
    """Full fine-tuning keeps no frozen copy: the loaded model scores every pair before step 1, into the run folder;
    a resumed run reads the file (the checkpoint's weights are not the reference)."""
    config = _config(world, tmp_path, method="full", train={"max_steps": 4, "save_steps": 2})
    first = train(config_from_dict(config))
    (cache,) = (first.output_dir / REFERENCE_DIR).glob("*.npy")
    reference = np.load(cache)
    tokens, _ = prepare_data(config_from_dict(config), world["tok"])
    model = tiny_llama(len(world["tok"]), bos_token_id=0, eos_token_id=4)
    for p in (0, 7):
        ids, mask, cut = tokens[p]["input_ids"], tokens[p]["loss_mask"], tokens[p]["chosen_length"]
        expected = [_alone(model, ids[:cut], mask[:cut]), _alone(model, ids[cut:], mask[cut:])]
        np.testing.assert_allclose(reference[p], expected, rtol=1e-5)
    losses = [h["loss"] for h in _history(first.output_dir / "checkpoint-4") if "loss" in h]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4) and losses[-1] < losses[0]

    written = cache.stat().st_mtime_ns
    config["train"].update(max_steps=6, resume=True)
    second = train(config_from_dict(config))
    assert second.global_step == 6 and cache.stat().st_mtime_ns == written
    assert list((first.output_dir / REFERENCE_DIR).glob("*.npy")) == [cache]


def test_the_kd_preference_task_rows_train_unchanged(world, tmp_path):
    """A shard the KD `preference` task wrote (its scripted endpoint, tests/kd/test_preference.py; a system prompt,
    multi-line answers, its score and reason columns) is a dpo source as it is."""
    import corpusforge as cf
    from tests.kd.test_preference import SeededChatServer, recipe, scripted_model

    with SeededChatServer(scripted_model(6)) as server:
        raw = recipe(tmp_path, server.url, {}, prompts={"system": "請用臺灣繁體中文回答。"})
        built = cf.run(cf.Recipe.from_dict(raw), report=False)
    pairs = len(built.load())
    assert pairs >= 3 and {"chosen_score", "chosen_reasons"} <= set(built.load().column_names)
    config = _config(world, tmp_path, data={"seq_len": 2048}, train={"max_steps": 2})
    config["data"]["sources"] = [{"path": str(built.path)}]
    result = train(config_from_dict(config))
    assert result.data_stats["documents"] == pairs and result.data_stats["dropped_documents"] == 0
    assert result.global_step == 2 and result.train_stats["loss_tokens"] > 0
    assert 0 < result.train_stats["train_loss"] <= math.log(2) + 1e-4  # step 1 is log 2: the adapter starts at zero


# -------------------------------------------------------------------------------------------------------- config
def test_a_dpo_run_on_the_wrong_rows_names_the_key(world, tmp_path):
    config = config_from_dict(_config(world, tmp_path, source="kd"))
    with pytest.raises(
        ConfigError,
        match=r"data.sources\[0\].path: mode dpo reads the 'prompt', 'chosen', 'rejected' columns "
        r"\(no 'prompt', 'chosen', 'rejected'\).*it looks like sft data: set `mode: sft`$",
    ):
        open_shards(config)
    cp = _config(world, tmp_path)
    cp.update(mode="sft")
    with pytest.raises(ConfigError, match=r"reads the 'messages' column.*it looks like dpo data: set `mode: dpo`$"):
        open_shards(config_from_dict(cp))


GOOD = """\
mode: dpo
method: lora
model:
  path: some/model
data:
  sources:
    - path: out/pairs
  seq_len: 1024
dpo:
  beta: 0.1
train:
  output_dir: runs/x
"""


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"    - path: out/pairs": "    - path: out/pairs\n      mode: sft"},
            r":8: data.sources\[0\].mode: .*own stage",
        ),
        ({"  seq_len: 1024": "  seq_len: 1024\n  packing: blocks"}, r":9: data.packing: dpo keeps each pair whole"),
        ({"  seq_len: 1024": "  seq_len: 1024\n  overlong: truncate"}, r":9: data.overlong: dpo drops pairs"),
        (
            {"method: lora": "method: full", "  beta: 0.1": "  reference: disabled_adapter"},
            r":10: dpo.reference: `disabled_adapter` needs `method: lora`",
        ),
        ({"  beta: 0.1": "  reference_free: true\n  reference: precomputed"}, r":11: dpo.reference: `reference_free"),
        ({"  beta: 0.1": "  loss_type: ipo\n  length_normalized: true"}, r":11: dpo.length_normalized: .*ipo"),
        ({"  beta: 0.1": "  beta: 0"}, r":10: dpo.beta: .*greater than 0"),
        ({"  beta: 0.1": "  betta: 0.1"}, r":10: dpo.betta: unknown key 'betta' — did you mean 'beta'"),
        ({"mode: dpo": "mode: sft"}, r":9: dpo: a `dpo:` section is only used with `mode: dpo`"),
    ],
)
def test_bad_dpo_configs_name_key_and_line(tmp_path, changes, message):
    text = GOOD
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_reference_follows_the_method(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_config(path).reference == "disabled_adapter"
    assert load_config(path, ["method=full"]).reference == "precomputed"
    assert load_config(path, ["dpo.reference=precomputed"]).reference == "precomputed"
    assert load_config(path, ["dpo.reference_free=true"]).reference is None


# ---------------------------------------------------------------------------------------------------- TRL interop
def _trl_trainer(world_or_dir, pairs_dir: Path, tmp_path: Path, method: str, loss_type: str):
    from datasets import load_from_disk
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(world_or_dir, dtype=torch.float32)
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=4,
        beta=0.1,
        loss_type=[loss_type],
        bf16=False,
        gradient_checkpointing=False,
        max_length=None,
        precompute_ref_log_probs=method == "full",
        report_to="none",
    )
    peft_config = None
    if method == "lora":
        peft_config = LoraConfig(
            r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0, target_modules=LORA["target_modules"]
        )
    rows = load_from_disk(str(pairs_dir))  # as written: extra columns and all
    tokenizer = AutoTokenizer.from_pretrained(world_or_dir)
    return DPOTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=peft_config)


def _grad_norm(model) -> float:
    return math.sqrt(sum(float(p.grad.double().norm() ** 2) for p in model.parameters() if p.grad is not None))


def test_trl_reads_the_pair_rows_unchanged(world, tmp_path):
    """The rows as the KD task writes them are TRL's conversational preference format: TRL takes them as they are
    (extra columns too) and tokenizes each pair into the tokens and completion mask the trainer uses."""
    pytest.importorskip("trl")
    from datasets import load_from_disk
    from trl.data_utils import is_conversational

    rows = load_from_disk(str(world["root"] / "pairs4"))
    assert {"scores", "reasons"} <= set(rows.column_names) and all(is_conversational(r) for r in rows)
    theirs = _trl_trainer(world["model_dir"], world["root"] / "pairs4", tmp_path, "lora", "sigmoid").train_dataset
    config = config_from_dict(_config(world, tmp_path, source="pairs4"))
    ours, _ = prepare_data(config, world["tok"])
    for t, o in zip(theirs, ours):
        cut = o["chosen_length"]
        assert o["input_ids"][:cut] == t["prompt_ids"] + t["chosen_ids"]
        assert o["input_ids"][cut:] == t["prompt_ids"] + t["rejected_ids"]
        assert o["loss_mask"][:cut] == [0] * len(t["prompt_ids"]) + [1] * len(t["chosen_ids"])
        assert o["loss_mask"][cut:] == [0] * len(t["prompt_ids"]) + [1] * len(t["rejected_ids"])


def _compare_with_trl(model_dir, pairs_dir, tmp_path, config: dict, method: str, loss_type: str) -> tuple:
    """(our loss, TRL's loss, our gradient norm, TRL's) on the 4 pairs of ``pairs_dir`` in one batch. A LoRA
    adapter gets random B matrices (so the policy differs from the reference) and TRL's model gets the same ones."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    config = config_from_dict(config)
    ours = build_trainer(config, setup_run(config))
    if method == "lora":
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in ours.model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    dataset = ours.train_dataset
    batch = ours._prepare_inputs(ours.data_collator([dataset[i] for i in range(len(dataset))]))
    assert batch["num_sequences"] == 8
    ours.model.train()
    loss = ours.compute_loss(ours.model, batch)
    loss.backward()

    trl = _trl_trainer(model_dir, pairs_dir, tmp_path, method, loss_type)
    if method == "lora":
        set_peft_model_state_dict(trl.model, get_peft_model_state_dict(ours.model))
    (trl_batch,) = list(trl.get_train_dataloader())  # TRL's collator, TRL's column removal
    trl.model.train()
    trl_loss = trl.compute_loss(trl.model, trl._prepare_inputs(trl_batch))
    trl_loss.backward()
    return float(loss), float(trl_loss), _grad_norm(ours.model), _grad_norm(trl.model)


@pytest.mark.parametrize(
    ("method", "packing", "variant"),
    [
        ("lora", "flatten", "sigmoid"),
        ("lora", "pad", "sigmoid"),
        ("lora", "flatten", "sigmoid_norm"),
        ("lora", "flatten", "ipo"),
        ("full", "flatten", "sigmoid"),
    ],
)
def test_loss_and_gradient_norm_equal_trl(world, tmp_path, method, packing, variant):
    """Same pairs, same model, same adapter: our loss and the norm of its gradient equal TRL DPOTrainer's (its own
    tokenization, collator and compute_loss) within 1e-4 (absolute for the loss, relative for the norm). `full`:
    both with a precomputed reference, so the loss is log 2 and the gradient norm carries the comparison."""
    pytest.importorskip("trl")
    dpo = {"loss_type": "ipo" if variant == "ipo" else "sigmoid", "length_normalized": variant == "sigmoid_norm"}
    config = _config(world, tmp_path, method=method, source="pairs4", data={"packing": packing}, dpo=dpo)
    config["train"]["batch_size"] = 4
    ours, theirs, ours_norm, their_norm = _compare_with_trl(
        world["model_dir"], world["root"] / "pairs4", tmp_path, config, method, variant
    )
    assert abs(ours - theirs) < 1e-4 and abs(ours_norm - their_norm) / their_norm < 1e-4
    assert ours_norm > 0.01 and (method == "full" or abs(ours - math.log(2)) > 1e-3)


@pytest.mark.real_model  # ~10 s on two idle cores, only where TRL is installed
def test_loss_and_gradient_norm_equal_trl_on_the_real_chat_model(world, tmp_path):
    """The same on SmolLM2-135M-Instruct: its chatml template (a default system prompt, a newline after each
    `<|im_end|>`) and its 49k vocabulary."""
    pytest.importorskip("trl")
    from corpusforge.testing import smollm2_instruct

    try:
        model_dir = smollm2_instruct()
    except ModuleNotFoundError as err:
        pytest.skip(str(err))
    config = _config(world, tmp_path, source="pairs4", data={"seq_len": 1024})
    config["model"]["path"] = str(model_dir)
    config["train"]["batch_size"] = 4
    ours, theirs, ours_norm, their_norm = _compare_with_trl(
        model_dir, world["root"] / "pairs4", tmp_path, config, "lora", "sigmoid"
    )
    assert abs(ours - theirs) < 1e-4 and abs(ours_norm - their_norm) / their_norm < 1e-4
