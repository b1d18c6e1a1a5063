"""The trainer under real launchers: `accelerate launch` and `torchrun` with two CPU processes (gloo), unchanged
entry points. Slow (two fresh interpreters each): run with `pytest -m slow tests/trainer/test_trainer_launch.py`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.trainer.test_trainer import _conversations, _model, _tokenizer

pytest.importorskip("torch")
pytest.importorskip("accelerate")

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from datasets import Dataset

    from tests.support import corpus_texts

    root = tmp_path_factory.mktemp("launch")
    tok = _tokenizer(corpus_texts("english") + corpus_texts("thai"))
    _model(len(tok)).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    Dataset.from_list(_conversations(32)).save_to_disk(root / "kd")
    return root


def _config(root: Path, name: str) -> Path:
    config = {
        "mode": "sft",
        "method": "lora",
        "model": {"path": str(root / "model")},
        "data": {"sources": [{"path": str(root / "kd")}], "seq_len": 256, "cache_dir": str(root / "cache")},
        "lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]},
        "train": {
            "output_dir": str(root / name),
            "max_steps": 3,
            "batch_size": 1,
            "save_steps": 3,
            "logging_steps": 1,
        },
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_two_processes(setup, launcher):
    config = _config(setup, launcher)
    if launcher == "accelerate":
        # `--cpu` would start one process; --multi_gpu starts torchrun's workers, which join over gloo on a CPU box
        cmd = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "corpusforge_trainer", str(config)]
    else:
        torchrun = shutil.which("torchrun", path=str(BIN))
        cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29531", "-m", "corpusforge_trainer", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    stats = json.loads((setup / launcher / "train_stats.json").read_text())
    assert stats["world_size"] == 2 and stats["global_step"] == 3
    assert (setup / launcher / "adapter_config.json").is_file()
    assert out.stdout.count("trained to step 3") == 1  # the summary comes from rank 0 only
