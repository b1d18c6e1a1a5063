"""Every config of examples/transfer-cpu loads through the loader its command uses: the recipes (`corpusforge run`),
the trainer configs (`corpusforge train`) and the scorecard configs (`corpusforge eval scorecard`, in a folder
holding the files prepare.py writes)."""

from __future__ import annotations

import pytest

import corpusforge as cf
from tests.support import REPO

EXAMPLE = REPO / "examples" / "transfer-cpu"
RECIPES = ["cp.yaml", "kd.yaml", "kd-gpu.yaml", "prefs.yaml"]
TRAIN = ["train.yaml", "train-gpu.yaml", "train-dpo.yaml"]
EVAL = ["eval.yaml", "eval-gpu.yaml"]


def test_the_example_names_each_of_its_configs():
    assert sorted(p.name for p in EXAMPLE.glob("*.yaml")) == sorted(RECIPES + TRAIN + EVAL)


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_load(name):
    recipe = cf.Recipe.from_yaml(
        EXAMPLE / name, ["generate.model=/models/m"] if "kd" in name or name == "prefs.yaml" else []
    )
    assert recipe.name


@pytest.mark.parametrize("name", TRAIN)
def test_trainer_configs_load(name):
    from corpusforge_trainer.config import load_config

    assert load_config(EXAMPLE / name).mode in ("cp", "dpo")


@pytest.mark.parametrize("name", EVAL)
def test_scorecard_configs_load(name, tmp_path, monkeypatch):
    from corpusforge.eval.scorecard.config import load_scorecard_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for f in ("prompts-zh.txt", "prompts-en.txt", "heldout-zh.txt", "heldout-en.txt"):
        (tmp_path / "data" / f).write_text("一個問題\n", encoding="utf-8")
    config = load_scorecard_config(EXAMPLE / name)
    assert config.models[0].name == "base" and config.language == "zh_Hant"
