"""Training configs: every shipped config and accelerate config loads; bad keys and values are reported with the
key path, the YAML line and a suggestion; the entry points parse and reach the config loader."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from corpusforge.cli import main as corpusforge_main
from corpusforge_trainer.config import ConfigError, TrainConfig, load_config
from tests.support import REPO

CONFIGS = sorted((REPO / "trainer" / "configs").glob("*.yaml"))
ACCELERATE = sorted((REPO / "trainer" / "accelerate").glob("*.yaml"))

GOOD = """\
mode: sft
method: lora
model:
  path: some/model
data:
  sources:
    - path: out/kd
      weight: 2
  seq_len: 512
lora:
  modules_to_save: [embed_tokens, lm_head]
train:
  output_dir: runs/x
"""


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_configs_load():
    assert {p.name for p in CONFIGS} >= {"cp-lora.yaml", "sft-lora.yaml", "full.yaml"}
    for path in CONFIGS:
        config = load_config(path)
        assert isinstance(config, TrainConfig) and config.data.sources


def test_shipped_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {load_config_from_file(str(p)).distributed_type.value for p in ACCELERATE}
    assert kinds == {"MULTI_GPU", "DEEPSPEED", "FSDP"}
    stages = sorted(load_config_from_file(str(p)).deepspeed_config.get("zero_stage", 0) for p in ACCELERATE)
    assert stages[-2:] == [2, 3]


def test_defaults_follow_the_mode(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.overlong == "drop" and config.data.packing == "flatten" and config.lora.r == 16
    cp = load_config(write(tmp_path, GOOD.replace("mode: sft", "mode: cp")))
    assert cp.overlong == "split"
    overridden = load_config(write(tmp_path, GOOD), ["train.max_steps=7", "data.sources[0].weight=0.5"])
    assert overridden.train.max_steps == 7 and overridden.data.sources[0].weight == 0.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("  seq_len: 512", "  seq_lenn: 512"),
            r"config.yaml:9: data.seq_lenn: unknown key 'seq_lenn' — did you mean 'seq_len'",
        ),
        (("      weight: 2", "      weight: -1"), r"config.yaml:8: data.sources\[0\].weight: .*greater than 0"),
        (("mode: sft", "mode: pretrain"), r"config.yaml:1: mode: .*'cp', 'sft' or 'dpo'"),
        (("method: lora", "method: full"), r"a `lora:` section is only used with `method: lora`"),
        (
            ("  output_dir: runs/x", "  output_dir: runs/x\n  trainer_args: {learning_rate: 1}"),
            r"'learning_rate' is set by optim.lr",
        ),
        (
            ("  output_dir: runs/x", "  output_dir: runs/x\n  trainer_args: {dataloader_workers: 2}"),
            r"did you mean 'dataloader_num_workers'",
        ),
        (
            ("train:\n", "optim: {scheduler: cosin}\ntrain:\n"),
            r"optim.scheduler: unknown name 'cosin' — did you mean 'cosine'",
        ),
        (("model:\n  path: some/model\n", ""), r"model: required key is missing"),
    ],
)
def test_bad_configs_name_key_and_line(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, GOOD.replace(old, new)))


def test_missing_or_wrong_shards_are_reported_before_training(tmp_path):
    pytest.importorskip("peft")
    from datasets import Dataset

    from corpusforge_trainer.data import open_shards

    config = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"config.yaml:7: data.sources\[0\].path: 'out/kd' does not exist"):
        open_shards(config)
    Dataset.from_list([{"id": "a", "text": "hello"}]).save_to_disk(tmp_path / "cp")
    config = load_config(write(tmp_path, GOOD.replace("out/kd", str(tmp_path / "cp"))))
    with pytest.raises(ConfigError, match=r"reads the 'messages' column.*set `mode: cp`"):
        open_shards(config)


def test_a_model_that_cannot_load_names_the_key(tmp_path):
    pytest.importorskip("peft")
    from datasets import Dataset

    from corpusforge_trainer import train

    Dataset.from_list([{"id": "a", "text": "hello"}]).save_to_disk(tmp_path / "cp")
    text = GOOD.replace("mode: sft", "mode: cp").replace("out/kd", str(tmp_path / "cp"))
    text = text.replace("some/model", str(tmp_path / "no-model")).replace("runs/x", str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"config.yaml:4: model.path: cannot load a tokenizer"):
        train(load_config(write(tmp_path, text)))


def test_entry_points_reach_the_loader(tmp_path, capsys):
    bad = write(tmp_path, GOOD.replace("seq_len", "seqlen"))
    assert corpusforge_main(["train", str(bad)]) == 2
    assert "unknown key 'seqlen'" in capsys.readouterr().err
    out = subprocess.run(
        [sys.executable, "-m", "corpusforge_trainer", str(bad)], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 2 and "data.seqlen: unknown key" in out.stderr
    assert corpusforge_main(["train", "merge", str(tmp_path), "--output", str(tmp_path / "x")]) == 2
    assert "no adapter_config.json" in capsys.readouterr().err
