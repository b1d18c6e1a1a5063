"""KD datasets: each task's exact output format (with a tiny chat model built in code and with a scripted
OpenAI-compatible endpoint), per-request seeds, output checks with their reasons, prompt guards, resume after a
kill, and injected request failures retried, recorded, and retried alone by a rerun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import pytest

import corpusforge as cf
from corpusforge.errors import RecipeError
from corpusforge.kd.answers import get_backend
from corpusforge.kd.config import GenerateConfig
from corpusforge.kd.step import GenerationFailed, request_seed
from corpusforge.llm.backends import Request
from tests.support import REAL_CODE_ANSWER, REPO, assert_run_left_nothing, corpus_texts, gettext_messages, write_jsonl
from tests.support.fake_openai import FakeChatServer

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

SAMPLING = {"temperature": 0.9, "top_p": 0.95, "max_tokens": 12, "n": 1, "seed": 7}


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    from corpusforge.testing import tiny_chat_model

    texts = corpus_texts("english") + corpus_texts("thai") + corpus_texts("traditionalchinese")
    return tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"), texts)


@cache
def english(n: int) -> list[str]:
    """Distinct real English chat turns (the corpus repeats some)."""
    seen = {}
    for text in corpus_texts("english"):
        seen.setdefault(text.lower(), text)
    return list(seen.values())[:n]


@cache
def thai_pairs() -> list[tuple[str, str]]:
    """Real English–Thai pairs (gettext catalogs) long enough for language ID."""
    by_thai = {}
    for en, th in gettext_messages("th"):
        en = " ".join(en.split())
        if "%" not in en and len(en.split()) >= 5 and sum(ch.isalpha() for ch in th) >= 25:
            by_thai.setdefault(th, en)
    return [(en, th) for th, en in by_thai.items()][:40]


def kd_recipe(tmp_path: Path, sources: dict[str, list[dict]], generate: dict, **extra) -> dict:
    specs = []
    for name, rows in sources.items():
        fields = sorted({k for row in rows for k in row} - {"text"})
        specs.append({"name": name, "glob": str(write_jsonl(tmp_path / f"{name}.jsonl", rows)), "fields": fields})
    return {
        "name": "kd-test",
        "sources": specs,
        "generate": generate,
        "output": {"path": str(tmp_path / "out")},
        **extra,
    }


def local_generate(model: Path, tasks: list, **extra) -> dict:
    return {
        "model": str(model),
        "backend": {"type": "transformers", "device": "cpu", "batch_size": 4},
        "sampling": dict(SAMPLING),
        "tasks": tasks,
        "checks": {"language": False, "truncated": "keep", "empty": "keep"},
        **extra,
    }


def rows_of(result) -> list[dict]:
    return sorted(result.load().to_list(), key=lambda r: r["id"])


def ask(model: Path, prompt_id: str, call: str, messages: list[tuple[str, str]], sample: int = 0) -> str:
    """What the backend answers to one request on its own (not in the run's batch)."""
    config = GenerateConfig.model_validate(local_generate(model, ["recovery"]))
    seed = request_seed(SAMPLING["seed"], prompt_id, sample, call)
    (out,) = get_backend(config).generate([Request(tuple(messages), seed)], config.sampling)
    return out.text.strip()


# --------------------------------------------------------------------------------------------- formats
def test_recovery_rows_are_the_models_own_answers(tmp_path, tiny_chat):
    prompts = [{"text": t} for t in english(4)]
    gen = local_generate(tiny_chat, ["recovery"], sampling={**SAMPLING, "n": 2})
    rows = rows_of(cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": prompts}, gen)), report=False))
    assert len(rows) == 8 and {r["kind"] for r in rows} == {"recovery"}
    for row in rows:
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant" and len(row["messages"]) == 2
        sample = int(row["id"].rsplit("/", 1)[1])
        assert assistant["content"] == ask(tiny_chat, row["source_id"], "answer", [("user", user["content"])], sample)
        assert row["model"] == str(tiny_chat) and row["finish_reason"] in ("stop", "length") and row["n_tokens"] > 0
    by_prompt = {}
    for row in rows:
        by_prompt.setdefault(row["source_id"], set()).add(row["messages"][1]["content"])
    assert any(len(answers) == 2 for answers in by_prompt.values()), "two samples of a prompt are not two draws"
    assert len({r["params_hash"] for r in rows}) == 1


def test_tcot_row_is_translation_chain_of_thought(tmp_path, tiny_chat):
    queries = [{"text": th} for _, th in thai_pairs()[:4]]
    gen = local_generate(tiny_chat, [{"tcot": {"language": "th"}}])
    rows = rows_of(cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"th": queries}, gen)), report=False))
    assert len(rows) == 4
    task = GenerateConfig.model_validate(gen).tasks[0]
    for row in rows:
        query = row["messages"][0]["content"]
        ask_en = task.translate_prompt.format(source_language="Thai", target_language="English", text=query)
        query_en = ask(tiny_chat, row["source_id"], "query_en", [("user", ask_en)])
        answer_en = ask(tiny_chat, row["source_id"], "answer_en", [("user", query_en)])
        ask_th = task.translate_prompt.format(source_language="English", target_language="Thai", text=answer_en)
        answer = ask(tiny_chat, row["source_id"], "answer_target", [("user", ask_th)])
        assert row["messages"] == [
            {"role": "user", "content": query},
            {"role": "assistant", "content": f"<EN> {query_en} <RESPONSE> {answer_en} <TH> {answer}"},
        ]


def test_tcot_uses_supplied_english_query_and_custom_markers(tmp_path, tiny_chat):
    pairs = thai_pairs()[:3]
    queries = [{"text": th, "query_en": en} for en, th in pairs]
    tcot = {"language": "zh_Hant", "query_en_field": "query_en", "markers": {"response": "<ANSWER>"}}
    gen = local_generate(tiny_chat, [{"tcot": tcot}])
    rows = rows_of(cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"q": queries}, gen)), report=False))
    english = dict((th, en) for en, th in pairs)
    for row in rows:
        content = row["messages"][1]["content"]
        query_en = english[row["messages"][0]["content"]]
        assert content.startswith(f"<EN> {query_en} <ANSWER> ")
        answer_en = ask(tiny_chat, row["source_id"], "answer_en", [("user", query_en)])
        assert f"<ANSWER> {answer_en} <ZH> " in content


def test_translation_pairs_both_directions_without_generation(tmp_path, tiny_chat):
    pairs = thai_pairs()[:5]
    data = [{"text": en, "th": th} for en, th in pairs]
    task = {"translation": {"source_language": "en", "target_language": "th", "pair_field": "th"}}
    gen = local_generate(tiny_chat, [task], sampling={**SAMPLING, "n": 3})
    rows = rows_of(cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"p": data}, gen)), report=False))
    assert len(rows) == 10, "a supplied pair gives one row per direction, not one per sample"
    assert {r["finish_reason"] for r in rows} == {"supplied"} and {r["n_tokens"] for r in rows} == {0}
    fwd = {r["messages"][1]["content"]: r for r in rows if r["id"].endswith("/fwd")}
    bwd = {r["messages"][1]["content"]: r for r in rows if r["id"].endswith("/bwd")}
    for en, th in pairs:
        assert fwd[th]["messages"][0]["content"] == f"Translate the following English text into Thai.\n\n{en}"
        assert bwd[en]["messages"][0]["content"] == f"Translate the following Thai text into English.\n\n{th}"


def test_sample_does_not_depend_on_its_batch(tiny_chat):
    """Per-request seeds: the same request alone and inside a batch of others gives the same sampled text."""
    config = GenerateConfig.model_validate(local_generate(tiny_chat, ["recovery"]))
    backend = get_backend(config)
    texts = english(7)
    requests = [Request((("user", t),), 1000 + i) for i, t in enumerate(texts)]
    together = backend.generate(requests, config.sampling)
    alone = [backend.generate([r], config.sampling)[0] for r in requests[:3]]
    assert [c.text for c in together[:3]] == [c.text for c in alone]
    other_seed = backend.generate([Request(requests[0].messages, 999)], config.sampling)[0]
    assert other_seed.text != alone[0].text


# --------------------------------------------------------------------------------------------- scripted endpoint
def turned(text: str) -> str:
    """The prompt's words in reverse order: an answer that names its prompt without copying it (a copy would be
    an echo, which the output checks drop)."""
    return " ".join(reversed(text.split()))


def scripted_model(wrong_language: set[str] = frozenset()):
    """Translates with the real gettext pairs; answers in English (or in Thai, for prompts in `wrong_language`)."""
    to_th = {en: th for en, th in thai_pairs()}
    to_en = {th: en for en, th in thai_pairs()}

    def reply(messages):
        last = messages[-1]["content"]
        if last.startswith("Translate the following Thai text into English"):
            return to_en.get(last.split("\n\n", 1)[1], "I could not translate this sentence, sorry."), "stop"
        if last.startswith("Translate the following English text into Thai"):
            source = last.split("\n\n", 1)[1]
            return to_th.get(source, thai_pairs()[0][1]), "stop"
        if "TRUNCATE" in last:
            return "This answer was cut off before its natural end because", "length"
        if "EMPTY" in last:
            return "   ", "stop"
        if last in wrong_language:
            return thai_pairs()[1][1], "stop"
        if "TypeScript" in last:
            return REAL_CODE_ANSWER, "stop"
        return f"Here is what the model says about it: {turned(last)}", "stop"

    return reply


def endpoint_generate(url: str, tasks: list, **extra) -> dict:
    return {
        "model": "served-model",
        "backend": {"type": "openai", "base_url": url, "concurrency": 4},
        "sampling": dict(SAMPLING),
        "tasks": tasks,
        "retry_backoff": 0.0,
        **extra,
    }


def test_openai_backend_tcot_with_language_checks(tmp_path, monkeypatch):
    pairs = thai_pairs()[:8]
    wrong = {pairs[2][0]}  # the endpoint answers this English query in Thai: the English part is not English
    monkeypatch.setenv("KD_TEST_KEY", "sk-test-secret-123")
    with FakeChatServer(scripted_model(wrong)) as server:
        gen = endpoint_generate(server.url, [{"tcot": {"language": "th"}}], checks={"min_language_chars": 10})
        gen["backend"]["api_key_env"] = "KD_TEST_KEY"
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"th": [{"text": th} for _, th in pairs]}, gen)))
    rows = rows_of(result)
    assert len(rows) == 7
    for row in rows:
        query = row["messages"][0]["content"]
        en = next(e for e, t in pairs if t == query)
        answer_en = f"Here is what the model says about it: {turned(en)}"
        assert row["messages"][1]["content"] == f"<EN> {en} <RESPONSE> {answer_en} <TH> {pairs[0][1]}"
    checks = next(s for s in result.manifest["steps"] if s["step"] == "checks")
    assert checks["dropped"] == {"wrong_language_answer_en": 1}
    assert {r["headers"]["authorization"] for r in server.requests} == {"Bearer sk-test-secret-123"}
    seeds = [r["body"]["seed"] for r in server.requests]
    assert len(set(seeds)) == len(seeds), "every request carries its own seed"
    written = b"".join(p.read_bytes() for p in Path(result.path).rglob("*") if p.is_file())
    assert b"sk-test-secret-123" not in written


def test_a_code_answer_is_not_dropped_as_another_language(tmp_path):
    from corpusforge.steps.language import LanguageID, LanguageParams

    assert LanguageID(LanguageParams()).identify(REAL_CODE_ANSWER)[0] != "en"  # the whole answer: not "English"
    prompts = ["can you write a factorial in TypeScript?", "Tell me about the weather in Bangkok today"]
    with FakeChatServer(scripted_model()) as server:
        gen = endpoint_generate(server.url, ["recovery"])
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": p} for p in prompts]}, gen)))
    answers = [row["messages"][-1]["content"] for row in rows_of(result)]
    assert REAL_CODE_ANSWER in answers and len(answers) == 2


def test_truncated_empty_and_long_prompts_are_dropped_with_reasons(tmp_path):
    prompts = ["Tell me about the weather in Bangkok today", "TRUNCATE please", "EMPTY please", "x" * 300]
    prompts += ["tell me about the weather in  Bangkok today!"]  # a duplicate once case/spacing are ignored
    with FakeChatServer(scripted_model()) as server:
        gen = endpoint_generate(server.url, ["recovery"], prompts={"max_chars": 200})
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": p} for p in prompts]}, gen)))
        assert len(rows_of(result)) == 1
        steps = {s["step"]: s for s in result.manifest["steps"]}
        assert steps["generate"]["dropped"] == {"prompt_too_long": 1, "duplicate_prompt_recovery": 1}
        assert steps["checks"]["dropped"] == {"truncated": 1, "empty_output": 1}
        assert result.manifest["kd"] == {"kinds": {"recovery": 1}, "finish_reasons": {"stop": 1}}

        gen["checks"] = {"truncated": "keep", "empty": "keep"}
        kept = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path / "keep", {"en": [{"text": p} for p in prompts]}, gen)))
    assert sorted(r["finish_reason"] for r in rows_of(kept)) == ["length", "stop", "stop"]


def test_failed_requests_are_retried_recorded_and_rerun_alone(tmp_path):
    prompts = [f"Question number {i}: what is the capital of country {i}?" for i in range(12)]
    with FakeChatServer(scripted_model()) as server:
        server.fail_first = {"number 3:": 2}  # recovers within the retries
        server.always_fail = {"number 7:"}
        gen = endpoint_generate(server.url, ["recovery"], max_retries=2)
        recipe = cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": p} for p in prompts]}, gen))
        with pytest.raises(GenerationFailed, match="1 request\\(s\\) failed") as err:
            cf.run(recipe, report=False)
        assert "kd-failures" in str(err.value)
        assert not list((tmp_path / "out").glob("data-*.arrow")), "a task with failed requests writes no shard"
        failures = (tmp_path / "out" / ".corpusforge" / "kd-failures" / "00000.jsonl").read_text().splitlines()
        assert [json.loads(f)["prompt_id"] for f in failures] == ["en/en.jsonl/8"]  # ids count rows from 1
        sent = [r["body"]["messages"][-1]["content"] for r in server.requests]
        assert sum("number 3:" in s for s in sent) == 3 and sum("number 7:" in s for s in sent) == 3

        server.always_fail.clear()
        server.requests.clear()
        result = cf.run(recipe, report=False)
    assert [r["body"]["messages"][-1]["content"] for r in server.requests] == [prompts[7]]
    assert len(rows_of(result)) == 12
    assert not (tmp_path / "out" / ".corpusforge" / "kd-failures" / "00000.jsonl").exists()


def test_on_failure_skip_drops_and_counts(tmp_path):
    prompts = [f"Question number {i}: what is the capital of country {i}?" for i in range(5)]
    with FakeChatServer(scripted_model()) as server:
        server.always_fail = {"number 2:"}
        gen = endpoint_generate(server.url, ["recovery"], max_retries=1, on_failure="skip")
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": p} for p in prompts]}, gen)))
    assert len(rows_of(result)) == 4
    generate = next(s for s in result.manifest["steps"] if s["step"] == "generate")
    assert generate["dropped"] == {"request_failed": 1}


def test_requests_past_the_timeout_fail_and_the_others_go_on(tmp_path):
    prompts = [f"Question number {i}: what is the capital of country {i}?" for i in range(6)]
    with FakeChatServer(scripted_model()) as server:
        server.delay = {"number 4:": 3.0}
        gen = endpoint_generate(server.url, ["recovery"], max_retries=1, on_failure="skip")
        gen["backend"]["timeout"] = 0.5
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": p} for p in prompts]}, gen)))
    assert sorted(r["source_id"] for r in rows_of(result)) == [f"en/en.jsonl/{i}" for i in (1, 2, 3, 4, 6)]
    assert next(s for s in result.manifest["steps"] if s["step"] == "generate")["dropped"] == {"request_failed": 1}
    failure = json.loads((tmp_path / "out" / ".corpusforge" / "kd-failures" / "00000.jsonl").read_text())
    assert "Timeout" in failure["error"]


def test_prompt_template_fields_and_rows_without_them(tmp_path):
    with FakeChatServer(scripted_model()) as server:
        gen = endpoint_generate(server.url, ["recovery"], prompts={"template": "{text} Answer about {topic}."})
        sources = {
            "a": [{"text": "Tell me something about rivers.", "topic": "geography"}],
            "b": [{"text": "Tell me something about songs."}],  # no `topic` in this source's rows
        }
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, sources, gen)), report=False)
    (row,) = rows_of(result)
    assert row["messages"][0]["content"] == "Tell me something about rivers. Answer about geography."
    generate = next(s for s in result.manifest["steps"] if s["step"] == "generate")
    assert generate["dropped"] == {"prompt_missing_field": 1}


# --------------------------------------------------------------------------------------------- resume
KILL_SCRIPT = """
import sys
import corpusforge as cf
if __name__ == "__main__":
    cf.run(cf.Recipe.from_yaml(sys.argv[1]), report=False)
"""


def test_resume_after_kill_gives_the_same_rows(tmp_path, tiny_chat):
    import yaml

    prompts = [{"text": t} for t in english(14)]
    gen = local_generate(tiny_chat, ["recovery"], sampling={**SAMPLING, "max_tokens": 32})
    gen["backend"]["batch_size"] = 2
    recipe = kd_recipe(tmp_path, {"en": prompts}, gen)
    reference = rows_of(cf.run(cf.Recipe.from_dict({**recipe, "output": {"path": str(tmp_path / "ref")}})))

    path = tmp_path / "kd.yaml"
    path.write_text(yaml.safe_dump(recipe))
    script = tmp_path / "run_kd.py"
    script.write_text(KILL_SCRIPT)
    cache_dir = tmp_path / "out" / ".corpusforge" / "kd-cache" / "00000"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cache_dir.glob("chunk-*.jsonl"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert_run_left_nothing(proc)
    chunks = len(list(cache_dir.glob("chunk-*.jsonl")))
    assert 2 <= chunks < 7, f"the kill did not land mid-generation ({chunks} chunks)"
    assert not list((tmp_path / "out").glob("data-*.arrow"))

    resumed = cf.run(cf.Recipe.from_dict(recipe), report=False)
    assert rows_of(resumed) == reference
    stats = json.loads((tmp_path / "out" / ".corpusforge" / "logs" / "stats" / "00000.json").read_text())
    generate = next(s["stats"] for s in stats if s["name"].endswith("generate"))
    hits = generate["cache_hits"]["total"] if isinstance(generate["cache_hits"], dict) else generate["cache_hits"]
    assert hits >= 2 * (chunks - 1), "the rerun did not replay what the killed run had generated"


# --------------------------------------------------------------------------------------------- validation
def test_sampling_is_always_explicit(tmp_path, tiny_chat):
    gen = local_generate(tiny_chat, ["recovery"])
    del gen["sampling"]["temperature"]
    with pytest.raises(RecipeError, match="generate.sampling.temperature"):
        cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": "hi"}]}, gen))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": [{"tcott": {"language": "th"}}]}, "unknown task 'tcott' — did you mean 'tcot'"),
        ({"tasks": [{"recovery": {"sources": ["nope"]}}]}, "generate.tasks[0].sources: no source is named 'nope'"),
        ({"prompts": {"template": "Answer: {question}"}}, "'{question}' is not a field of any source"),
        ({"backend": {"type": "openai", "base_url": "localhost:8000"}}, "must start with http"),
        ({"backend": {"type": "sglang"}}, "generate.backend"),
    ],
)
def test_bad_generate_sections_name_the_key(tmp_path, tiny_chat, change, message):
    gen = {**local_generate(tiny_chat, ["recovery"]), **change}
    with pytest.raises(RecipeError, match=re.escape(message)):
        cf.Recipe.from_dict(kd_recipe(tmp_path, {"en": [{"text": "hi"}]}, gen))


def test_corpus_steps_are_refused_in_a_kd_recipe(tmp_path, tiny_chat):
    recipe = kd_recipe(tmp_path, {"en": [{"text": "hi"}]}, local_generate(tiny_chat, ["recovery"]))
    recipe["steps"] = [{"length": {"min_chars": 1}}, {"tag": {"template": "llama3"}}]
    with pytest.raises(RecipeError, match="steps.1.*acts on corpus text"):
        cf.Recipe.from_dict(recipe)


def test_kd_recipes_in_the_repo_compile():
    for path in sorted((REPO / "recipes").glob("*kd*.yaml")):
        recipe = cf.Recipe.from_yaml(path)
        assert recipe.generate is not None and recipe.generate.tasks


def test_cli_runs_and_inspects_a_kd_dataset(tmp_path):
    import yaml

    prompts = [{"text": f"Question number {i}: what is the capital of country {i}?"} for i in range(3)]
    with FakeChatServer(scripted_model()) as server:
        recipe = kd_recipe(tmp_path, {"en": prompts}, endpoint_generate(server.url, ["recovery"]))
        path = tmp_path / "kd.yaml"
        path.write_text(yaml.safe_dump(recipe))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        run = subprocess.run(
            [sys.executable, "-m", "corpusforge.cli", "run", str(path), "--no-report"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr
    assert "kinds: recovery 3" in run.stdout and "finish reasons: stop 3" in run.stdout
    inspect = subprocess.run(
        [sys.executable, "-m", "corpusforge.cli", "inspect", str(tmp_path / "out"), "--rows", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert "[recovery stop]" in inspect.stdout
    assert "assistant: 'Here is what the model says about it: 0? country of capital" in inspect.stdout


def test_top_p_nucleus_is_the_full_sort_nucleus():
    """The sampler takes the nucleus from the top 1,024 candidates (the full sort of a 49k vocabulary was most of
    the sampling time); it must keep the tokens a full sort keeps, also where the nucleus is wider than that."""
    torch = pytest.importorskip("torch")
    from corpusforge.llm.backends import SeededSampler

    def full_sort(scores, top_p):
        sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
        probs = sorted_scores.softmax(dim=-1)
        remove = probs.cumsum(dim=-1) - probs >= top_p
        return remove.scatter(1, order, remove)

    g = torch.Generator().manual_seed(0)
    for scale in (0.5, 2.0, 8.0):  # 0.5: nearly flat, the nucleus holds tens of thousands of tokens
        scores = torch.randn(8, 49152, generator=g) * scale
        for top_p in (0.5, 0.9, 0.95):
            ours = SeededSampler([0] * 8, 1.0, top_p, "cpu")._outside_top_p(scores)
            assert torch.equal(ours, full_sort(scores, top_p)), (scale, top_p)


def test_top_k_keeps_what_transformers_top_k_keeps_and_samples_stay_inside():
    torch = pytest.importorskip("torch")
    from transformers import TopKLogitsWarper

    from corpusforge.llm.backends import SeededSampler

    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 49152, generator=g) * 3
    for top_k in (1, 20, 50):
        sampler = SeededSampler(list(range(4)), 1.0, 1.0, "cpu", top_k)
        warped = TopKLogitsWarper(top_k)(None, scores.clone())
        picked = []
        for seed in range(60):
            sampler.generators = [torch.Generator().manual_seed(seed * 4 + i) for i in range(4)]
            picked.append(sampler(None, scores).argmax(dim=-1))
        picked = torch.stack(picked)  # (seeds, rows)
        allowed = torch.isfinite(warped)
        assert all(allowed[row, picked[:, row]].all() for row in range(4)), top_k
        distinct = {len(set(picked[:, row].tolist())) for row in range(4)}
        assert distinct == {1} if top_k == 1 else min(distinct) > 1, (top_k, distinct)
