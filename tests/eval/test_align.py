"""`corpusforge eval align`: the exact InsCP matrix from scripted endpoints (two models side by side, with other-
language, undetermined and failed answers), the transformers backend end to end on a tiny chat model and on LoRA
adapter folders, align.json + align.png, the CLI, and config errors that name their key path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache

import pytest

from corpusforge.errors import RecipeError
from corpusforge.eval.scorecard.config import load_scorecard_config, scorecard_config_from_dict
from corpusforge.eval.scorecard.evaluate import run_scorecard
from tests.support import REAL_CODE_ANSWER, REPO, corpus_texts, gettext_messages
from tests.support.fake_openai import FakeChatServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@cache
def english(n: int) -> list[str]:
    """Distinct real English turns long enough for LID."""
    seen = {}
    for text in corpus_texts("english"):
        if len(text) >= 30:
            seen.setdefault(text.lower(), text)
    return list(seen.values())[:n]


@cache
def thai(n: int) -> list[str]:
    """Distinct real Thai messages (gettext catalogs) with at least 15 letters and no printf placeholder."""
    out = []
    for _, th in gettext_messages("th"):
        th = " ".join(th.split())
        if "%" not in th and sum(ch.isalpha() for ch in th) >= 15 and th not in out:
            out.append(th)
    return out[:n]


JAPANESE = "人工知能は、思考する機械を構築することに専念する工学と科学の枝である。"
ENGLISH_ANSWER = "Here is a careful answer to your question, written entirely in English."


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def prompt_files(tmp_path):
    if len(thai(5)) < 5:
        pytest.skip("needs the Thai gettext catalogs of the image")
    return write_lines(tmp_path / "th.txt", thai(5)), write_lines(tmp_path / "en.txt", english(5))


def english_only(messages):
    return ENGLISH_ANSWER, "stop"


def aligned(messages):
    """Thai prompts → Thai (one → Japanese); English prompts → English (one → "OK.", too short to classify).
    Each answer is other real text, not the prompt: an answer that repeats the prompt is an echo (degenerate)."""
    prompt = messages[-1]["content"]
    if prompt == thai(5)[4]:
        return JAPANESE, "stop"
    if prompt in thai(5):
        return thai(10)[5 + thai(5).index(prompt)], "stop"
    if prompt == english(5)[4]:
        return "OK.", "stop"
    return english(10)[5 + english(5).index(prompt)], "stop"


def endpoint_config(prompt_files, servers, output, **extra) -> dict:
    target, en = prompt_files
    return {
        "language": "th",
        "models": [
            {"name": name, "model": f"served-{name}", "backend": {"type": "openai", "base_url": server.url}}
            for name, server in servers.items()
        ],
        "prompts": {"target": [target], "en": [en]},
        "output": str(output),
        **extra,
    }


def test_exact_matrix_for_two_scripted_models(tmp_path, prompt_files):
    with FakeChatServer(english_only) as a, FakeChatServer(aligned) as b:
        b.always_fail.add(english(5)[3])
        config = scorecard_config_from_dict(
            endpoint_config(prompt_files, {"en-only": a, "aligned": b}, tmp_path / "out")
        )
        result = run_scorecard(config)
        assert len(b.requests) == 10 + config.max_retries  # the failing request was retried, the others sent once

    a_res, b_res = result.models
    assert (a_res.name, b_res.name) == ("en-only", "aligned")

    def counts(en=0, target=0, other=0, degenerate=0, undetermined=0, failed=0):
        return dict(en=en, target=target, other=other, degenerate=degenerate, undetermined=undetermined, failed=failed)

    assert a_res.cells["en"].counts == a_res.cells["target"].counts == counts(en=5)
    assert a_res.cells["target"].shares == {"en": 1.0, "target": 0.0, "other": 0.0, "degenerate": 0.0}
    assert b_res.cells["en"].counts == counts(en=3, undetermined=1, failed=1)
    # shares leave undetermined and failed out
    assert b_res.cells["en"].shares == {"en": 1.0, "target": 0.0, "other": 0.0, "degenerate": 0.0}
    assert b_res.cells["target"].counts == counts(target=4, other=1)
    assert b_res.cells["target"].shares == {"en": 0.0, "target": 0.8, "other": 0.2, "degenerate": 0.0}
    assert b_res.cells["target"].other_languages == {"ja": 1}

    saved = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert saved["language"] == "th" and [m["name"] for m in saved["models"]] == ["en-only", "aligned"]
    matrix = saved["models"][1]["matrix"]
    assert matrix["target"]["shares"] == {"en": 0.0, "target": 0.8, "other": 0.2, "degenerate": 0.0}
    assert matrix["en"]["undetermined_share"] == 0.2
    rows = {(r["prompt_set"], r["prompt"]): r for r in saved["models"][1]["responses"]}
    assert len(rows) == 10
    japanese = rows[("target", thai(5)[4])]
    assert (japanese["response"], japanese["detected"], japanese["answered_in"]) == (JAPANESE, "ja", "other")
    assert japanese["score"] > 0.5
    short = rows[("en", english(5)[4])]
    assert (short["detected"], short["score"], short["answered_in"]) == (None, None, "undetermined")
    failed = rows[("en", english(5)[3])]
    assert (
        failed["answered_in"] == "failed" and failed["finish_reason"] == "error" and "HTTP 500" in failed["response"]
    )
    assert rows[("target", thai(5)[0])]["detected"] == "th"

    png = result.png_path.read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 5_000
    import matplotlib.image

    height, width = matplotlib.image.imread(str(result.png_path)).shape[:2]
    assert width > 600 and height > 250


def test_rerun_resends_only_failed_requests_and_reclassifies(tmp_path, prompt_files):
    with FakeChatServer(aligned) as b:
        b.always_fail.add(thai(5)[1])
        data = endpoint_config(prompt_files, {"aligned": b}, tmp_path / "out", max_retries=0)
        first = run_scorecard(scorecard_config_from_dict(data))
        assert first.models[0].cells["target"].counts["failed"] == 1 and len(b.requests) == 10
        b.always_fail.clear()
        second = run_scorecard(scorecard_config_from_dict(data))
        assert len(b.requests) == 11 and b.requests[-1]["body"]["messages"][-1]["content"] == thai(5)[1]
        assert second.models[0].cells["target"].counts == {
            **first.models[0].cells["target"].counts,
            "failed": 0,
            "target": 4,
        }
        assert not second.models[0].reused
        # A threshold above every response: nothing is generated again, everything becomes undetermined.
        result = run_scorecard(scorecard_config_from_dict({**data, "min_letters": 1000}))
        assert len(b.requests) == 11
    assert result.models[0].reused
    assert result.models[0].cells["target"].counts["undetermined"] == 5
    assert result.models[0].cells["target"].shares == {"en": None, "target": None, "other": None, "degenerate": None}


def test_target_script_counts_other_script_as_other(tmp_path):
    trad = "這是一個非常重要的問題,我們應該認真地討論它的歷史與發展。"
    simp = "这是一个非常重要的问题,我们应该认真地讨论它的历史与发展。"
    prompts = {"trad": trad, "simp": simp}
    target = write_lines(tmp_path / "zh.txt", [trad, simp])
    en = write_lines(tmp_path / "en.txt", english(2))

    answers = {trad: "關於它的歷史與發展,我們應該認真地討論。", simp: "关于它的历史与发展,我们应该认真地讨论。"}
    answers.update({text: ENGLISH_ANSWER for text in english(2)})

    def answer(messages):  # the prompt's script, not the prompt itself (that would be an echo)
        return answers[messages[-1]["content"]], "stop"

    with FakeChatServer(answer) as server:
        data = {
            "language": "zh_Hant",
            "models": [{"model": "echo", "backend": {"type": "openai", "base_url": server.url}}],
            "prompts": {"target": target, "en": en},
            "output": str(tmp_path / "out"),
        }
        result = run_scorecard(scorecard_config_from_dict(data))
    rows = {r.prompt: r for r in result.models[0].responses}
    assert (rows[prompts["trad"]].detected, rows[prompts["trad"]].answered_in) == ("zh_Hant", "target")
    assert (rows[prompts["simp"]].detected, rows[prompts["simp"]].answered_in) == ("zh_Hans", "other")
    assert result.models[0].cells["en"].counts["en"] == 2


def test_code_blocks_are_left_out_of_the_language_an_answer_is_in():
    from corpusforge.eval.scorecard.evaluate import Classifier
    from corpusforge.steps.language import LanguageID, LanguageParams

    assert LanguageID(LanguageParams()).identify(REAL_CODE_ANSWER)[0] not in ("en", "zh_Hant")  # why the rule
    classify = Classifier("zh_Hant", 10)
    assert classify(REAL_CODE_ANSWER)[2] == "en"  # the prose: "TypeScript"
    code = REAL_CODE_ANSWER.split("\n", 1)[1]
    assert classify(code)[2] == "undetermined"  # only code
    assert classify(code.rsplit("```", 1)[0])[2] == "undetermined"  # cut off inside the block
    zh = next(t for t in corpus_texts("traditionalchinese") if sum(ch.isalpha() for ch in t) >= 15)
    assert classify(zh + "\n" + code)[:3:2] == ("zh_Hant", "target")
    assert classify(english(1)[0] + "\n" + code)[2] == "en"


# --------------------------------------------------------------------------------------------- transformers backend
torch_needed = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("torch", "transformers")), reason="needs [ppl]"
)


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    from corpusforge.testing import tiny_chat_model

    texts = corpus_texts("english") + corpus_texts("thai") + corpus_texts("traditionalchinese")
    return tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"), texts)


def local_config(model_dirs: dict, prompt_files, output, max_tokens=24) -> dict:
    target, en = prompt_files
    return {
        "language": "th",
        "models": [
            {"name": name, "model": str(path), "backend": {"type": "transformers", "device": "cpu"}}
            for name, path in model_dirs.items()
        ],
        "prompts": {"target": [target], "en": [en]},
        "sampling": {"max_tokens": max_tokens},
        "min_letters": 3,
        "output": str(output),
    }


@torch_needed
def test_transformers_backend_end_to_end(tmp_path, tiny_chat, prompt_files):
    result = run_scorecard(
        scorecard_config_from_dict(local_config({"tiny": tiny_chat}, prompt_files, tmp_path / "out"))
    )
    (model,) = result.models
    for prompt_set in ("en", "target"):
        cell = model.cells[prompt_set]
        assert cell.prompts == 5 and sum(cell.counts.values()) == 5 and cell.counts["failed"] == 0
        assert cell.determined > 0 and sum(cell.shares.values()) == pytest.approx(1.0)
    assert all(r.n_tokens > 0 and r.finish_reason in ("stop", "length") for r in model.responses)
    # Greedy and seeded: a second model entry with the same weights gives the same responses.
    again = run_scorecard(
        scorecard_config_from_dict(local_config({"tiny": tiny_chat}, prompt_files, tmp_path / "out2"))
    )
    assert [r.response for r in again.models[0].responses] == [r.response for r in model.responses]
    assert json.loads(result.json_path.read_text(encoding="utf-8"))["models"][0]["backend"]["type"] == "transformers"


@torch_needed
def test_each_model_is_released_before_the_next_loads(tmp_path, tiny_chat, prompt_files, monkeypatch):
    import weakref

    from corpusforge.eval.scorecard import evaluate as align

    opened = []
    alive_at_open = []
    real_open = align._open_backend

    def tracking_open(model):
        alive_at_open.append([ref() is not None for ref in opened])
        backend = real_open(model)
        opened.append(weakref.ref(backend))
        return backend

    monkeypatch.setattr(align, "_open_backend", tracking_open)
    models = {"first": tiny_chat, "second": tiny_chat}
    result = run_scorecard(
        scorecard_config_from_dict(local_config(models, prompt_files, tmp_path / "out", max_tokens=4))
    )
    assert [m.name for m in result.models] == ["first", "second"]
    assert alive_at_open == [[], [False]]
    assert opened[1]() is None


@torch_needed
def test_lora_adapter_folder_loads_base_plus_adapter(tmp_path, tiny_chat, prompt_files):
    pytest.importorskip("peft")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def adapter(folder, zero: bool):
        base = AutoModelForCausalLM.from_pretrained(tiny_chat)
        lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=zero)
        torch.manual_seed(1)
        model = get_peft_model(base, lora)
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(tiny_chat).save_pretrained(folder)
        return folder

    models = {
        "base": tiny_chat,
        "zero-lora": adapter(tmp_path / "zero", zero=True),  # B = 0: the base model's answers exactly
        "lora": adapter(tmp_path / "random", zero=False),
    }
    result = run_scorecard(
        scorecard_config_from_dict(local_config(models, prompt_files, tmp_path / "out", max_tokens=8))
    )
    answers = {m.name: [r.response for r in m.responses] for m in result.models}
    assert answers["zero-lora"] == answers["base"]
    assert answers["lora"] != answers["base"]


@torch_needed
def test_adapter_without_tokenizer_or_with_vllm_is_refused(tmp_path, tiny_chat, prompt_files):
    from corpusforge.errors import SourceError

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_chat)}))
    data = local_config({"ad": folder}, prompt_files, tmp_path / "out")
    if __import__("importlib").util.find_spec("peft"):
        with pytest.raises(SourceError, match="without a tokenizer"):
            run_scorecard(scorecard_config_from_dict(data))
    data["models"][0]["backend"] = {"type": "vllm"}
    with pytest.raises(SourceError, match="corpusforge train merge"):
        run_scorecard(scorecard_config_from_dict(data))


# --------------------------------------------------------------------------------------------- CLI, config
def test_cli_flag_form_prints_the_matrix(tmp_path, prompt_files):
    target, en = prompt_files
    with FakeChatServer(english_only) as a, FakeChatServer(aligned) as b:
        # One --base-url serves every --model in the flag form: two runs, then the config form for both.
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        run = subprocess.run(
            [sys.executable, "-m", "corpusforge.cli", "eval", "align", "--model", "served-b", "--label", "aligned",
             "--prompts", target, "--prompts-en", en, "--language", "th", "--backend", "openai",
             "--base-url", b.url, "--max-tokens", "64", "--limit", "4", "--output", str(tmp_path / "out")],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert len(b.requests) == 8 and b.requests[0]["body"]["max_tokens"] == 64
        assert b.requests[0]["body"]["temperature"] == 0.0
        saved = json.loads((tmp_path / "out" / "align.json").read_text(encoding="utf-8"))
        assert saved["models"][0]["matrix"]["target"]["counts"]["target"] == 4
        assert "aligned" in run.stdout and "100.0% (4)" in run.stdout and "align.png" in run.stdout

        config = tmp_path / "align.yaml"
        config.write_text(json.dumps(endpoint_config(prompt_files, {"en-only": a, "aligned": b}, tmp_path / "x")))
        run = subprocess.run(
            [sys.executable, "-m", "corpusforge.cli", "eval", "align", "--config", str(config),
             "--set", "prompts.limit=2", "--output", str(tmp_path / "out2")],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    saved = json.loads((tmp_path / "out2" / "align.json").read_text(encoding="utf-8"))
    assert [m["matrix"]["en"]["prompts"] for m in saved["models"]] == [2, 2]
    assert saved["models"][0]["matrix"]["target"]["shares"]["en"] == 1.0
    assert not (tmp_path / "x").exists()


def test_without_an_english_prompt_file_the_shipped_set_is_used(tmp_path, prompt_files):
    """`eval scorecard` with no --prompts-en asks the English prompts corpusforge ships (data/prompts/en.jsonl)."""
    shipped = REPO / "corpusforge" / "data" / "prompts" / "en.jsonl"
    first = [json.loads(line)["prompt"] for line in shipped.read_text(encoding="utf-8").splitlines()[:3]]
    target, _ = prompt_files
    with FakeChatServer(english_only) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        run = subprocess.run(
            [sys.executable, "-m", "corpusforge.cli", "eval", "scorecard", "--model", "m", "--prompts", target,
             "--language", "th", "--backend", "openai", "--base-url", server.url, "--limit", "3",
             "--output", str(tmp_path / "out")],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        asked = [r["body"]["messages"][-1]["content"] for r in server.requests]
    assert run.returncode == 0, run.stderr
    assert sorted(set(asked) - set(thai(5))) == sorted(first)
    saved = json.loads((tmp_path / "out" / "align.json").read_text(encoding="utf-8"))
    assert saved["prompts"]["en"] == [str(shipped)] and saved["models"][0]["matrix"]["en"]["counts"]["en"] == 3


def test_cli_bad_input_exits_2_with_the_reason(tmp_path, prompt_files):
    target, en = prompt_files
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", "eval", "align", "--model", "m", "--prompts", target,
         "--prompts-en", en, "--language", "th", "--backend", "openai", "--output", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "--backend openai needs --base-url" in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["models"][1].update(bakend={}),
            "models[1].bakend: unknown key 'bakend' — did you mean 'backend'?",
        ),
        (lambda d: d["models"][0]["backend"].pop("base_url"), "models[0].backend.base_url: required key"),
        (lambda d: d.update(language="zh-tw"), "language: unknown language 'zh-tw' — did you mean 'zh_Hant'?"),
        (lambda d: d.update(language="en"), "language: the target language must not be English"),
        (lambda d: d["prompts"].update(en=["a.jsonl", "missing.jsonl"]), "prompts.en[0]: 'a.jsonl' does not exist"),
        (lambda d: d["sampling"].update(temperature=-1), "sampling.temperature: Input should be greater than"),
        (lambda d: d["models"][1].update(name="a"), "models[0] and models[1] are both named 'a'"),
    ],
)
def test_config_errors_name_the_key_path(tmp_path, prompt_files, change, message):
    target, en = prompt_files
    data = {
        "language": "th",
        "models": [
            {"name": "a", "model": "m", "backend": {"type": "openai", "base_url": "http://127.0.0.1:1/v1"}},
            {"name": "b", "model": "m2"},
        ],
        "prompts": {"target": [target], "en": [en]},
        "sampling": {"temperature": 0.0},
        "output": str(tmp_path / "out"),
    }
    change(data)
    with pytest.raises(RecipeError) as err:
        scorecard_config_from_dict(data)
    assert message in str(err.value)


def test_yaml_errors_carry_file_and_line(tmp_path):
    path = tmp_path / "align.yaml"
    path.write_text("language: th\nmodels:\n  - model: m\n    temprature: 0\nprompts: {target: [x], en: [y]}\n")
    with pytest.raises(RecipeError) as err:
        load_scorecard_config(path)
    text = str(err.value)
    assert f"{path}:4: models[0].temprature: unknown key 'temprature'" in text
    assert f"{path}:5: prompts.target[0]: 'x' does not exist" in text
    assert f"{path}:1: output: required key is missing" in text


def test_docs_example_loads(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_scorecard_config("docs/examples/align-th.yaml")
    assert config.language == "th" and [m.name for m in config.models] == ["base", "cp-raw", "inscp-lora"]
    assert [m.backend.type for m in config.models] == ["vllm", "vllm", "transformers"]
    assert config.sampling.temperature == 0.0 and config.sampling.max_tokens == 256


@pytest.mark.vllm
def test_vllm_models_run_one_after_another(tmp_path, tiny_chat, prompt_files, monkeypatch):
    """Two vLLM engines in one process, in turn: the first must be shut down before the second starts."""
    pytest.importorskip("vllm")
    import weakref

    from corpusforge.eval.scorecard import evaluate as align

    opened, alive_at_open = [], []
    real_open = align._open_backend

    def track(backend):
        opened.append(weakref.ref(backend.llm))
        return backend

    def tracking_open(model):  # holds no reference: vLLM's first import keeps this frame alive (see align.py)
        alive_at_open.append([ref() is not None for ref in opened])
        return track(real_open(model))

    monkeypatch.setattr(align, "_open_backend", tracking_open)
    data = local_config({"first": tiny_chat, "second": tiny_chat}, prompt_files, tmp_path / "out", max_tokens=8)
    backend = {"type": "vllm", "dtype": "float32", "gpu_memory_utilization": 0.2, "max_model_len": 512}
    for model in data["models"]:
        model["backend"] = {**backend, "enforce_eager": True}
    result = run_scorecard(scorecard_config_from_dict(data))
    assert alive_at_open == [[], [False]]
    first, second = ([r.response for r in m.responses] for m in result.models)
    assert first == second and len(first) == 10  # greedy: the same weights give the same answers
    for m in result.models:
        assert all(sum(m.cells[s].counts.values()) == 5 and m.cells[s].counts["failed"] == 0 for s in ("en", "target"))
