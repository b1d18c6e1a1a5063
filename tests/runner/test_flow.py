"""The TransLLM flow end to end on a tiny chat model built in code: a KD recipe generates rows with the model itself,
the trainer fine-tunes a LoRA adapter on exactly those shards (loss on assistant tokens only), and the merged model
loads and generates."""

from __future__ import annotations

import json

import pytest

import corpusforge as cf
from tests.support import corpus_texts, write_jsonl

pytest.importorskip("torch")
pytest.importorskip("peft")


def test_kd_rows_train_an_adapter_that_merges(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corpusforge.testing import tiny_chat_model
    from corpusforge_trainer import merge, train
    from corpusforge_trainer.config import config_from_dict

    model = tiny_chat_model(tmp_path / "model", corpus_texts("english") + corpus_texts("thai"))
    english = list(dict.fromkeys(corpus_texts("english")))[:8]
    thai = list(dict.fromkeys(corpus_texts("thai")))[:4]
    recipe = {
        "name": "flow-kd",
        "sources": [
            {"name": "en", "glob": str(write_jsonl(tmp_path / "en.jsonl", [{"text": t} for t in english]))},
            {"name": "th", "glob": str(write_jsonl(tmp_path / "th.jsonl", [{"text": t} for t in thai]))},
        ],
        "generate": {
            "model": str(model),
            "backend": {"type": "transformers", "device": "cpu", "batch_size": 8},
            "sampling": {"temperature": 0.7, "top_p": 0.9, "max_tokens": 16, "n": 1, "seed": 0},
            "tasks": [{"recovery": {"sources": ["en"]}}, {"tcot": {"sources": ["th"], "language": "th"}}],
            "checks": {"language": False, "truncated": "keep"},
        },
        "output": {"path": str(tmp_path / "kd")},
    }
    kd = cf.run(cf.Recipe.from_dict(recipe), report=False)
    assert kd.manifest["kd"]["kinds"]["recovery"] >= 6 and kd.manifest["kd"]["kinds"]["tcot"] >= 2

    config = config_from_dict(
        {
            "mode": "sft",
            "method": "lora",
            "model": {"path": str(model)},
            "data": {"sources": [{"path": str(kd.path)}], "seq_len": 256, "cache_dir": str(tmp_path / "cache")},
            "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "optim": {"lr": 1e-3, "warmup": 0, "scheduler": "constant"},
            "train": {
                "output_dir": str(tmp_path / "run"),
                "max_steps": 2,
                "batch_size": 2,
                "save_steps": 2,
                "report_to": ["none"],
                "trainer_args": {"disable_tqdm": True},
            },
        }
    )
    run = train(config)
    stats = json.loads((run.output_dir / "train_stats.json").read_text())
    assert stats["global_step"] == 2
    assert 0 < stats["loss_tokens"] < stats["real_tokens"]  # the user turns and chat tags carry no loss

    merged = merge(run.output_dir, tmp_path / "merged")
    lm = AutoModelForCausalLM.from_pretrained(merged)
    tok = AutoTokenizer.from_pretrained(merged)
    ids = tok.apply_chat_template(
        [{"role": "user", "content": thai[0]}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = lm.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
