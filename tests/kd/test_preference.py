"""KD task `preference`: a scripted OpenAI-compatible endpoint answers each Traditional Chinese prompt four times,
per request seed, with real text — good zh_TW lines (Debian's gettext catalogs), English (chatterbot-corpus),
Simplified (zh_CN catalogs), a loop, a cut-off answer, a line of English inside Chinese. Each pair is the one the
documented rule makes (its reasons say why); prompts whose answers are alike or all bad give no pair, counted; the
reference and translation fallbacks; TRL's conversational preference format; a killed run resumes byte-identical.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from functools import cache
from pathlib import Path

import pytest
import yaml

import corpusforge as cf
from corpusforge.errors import RecipeError
from corpusforge.kd.config import Weights
from corpusforge.kd.preference import Score, pick, score
from corpusforge.kd.step import request_seed
from corpusforge.lang.degeneration import degeneration
from corpusforge.lang.fidelity import default_identifier, english_words, region_places
from corpusforge.lang.scripts import HAN
from tests.lang.test_fidelity import english_lines, simplified_lines, taiwan_lines, traditional_lines
from tests.support import REPO, assert_run_left_nothing, shard_hashes, write_jsonl
from tests.support.fake_openai import FakeChatServer

SEED = 11
N = 4  # answers per prompt
TO_ENGLISH = "Translate the following Traditional Chinese (Taiwan) text into English"
TO_CHINESE = "Translate the following English text into Traditional Chinese (Taiwan)"


class SeededChatServer(FakeChatServer):
    """The scripted server, whose model also sees each request's seed: ``reply(messages, seed)``."""

    def __init__(self, reply):
        seen = threading.local()  # one handler thread per request
        super().__init__(lambda messages: reply(messages, seen.seed))
        base = self.httpd.RequestHandlerClass

        class Handler(base):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.seed = json.loads(body).get("seed")
                self.rfile = io.BytesIO(body)  # the scripted server reads the body again
                super().do_POST()

        self.httpd.RequestHandlerClass = Handler


# --------------------------------------------------------------------------------------------- real answers
@cache
def good_lines() -> list[str]:
    """Real zh_TW lines with no finding: no Latin letter, no mainland word, long enough for LID."""
    return [
        t
        for t in taiwan_lines()
        if len(HAN.findall(t)) >= 8
        and not any(c.isascii() and c.isalpha() for c in t)
        and not region_places(t, "CN")[0]
    ]


@cache
def good_answers() -> list[str]:
    """Three good lines each; not three messages of one catalog that repeat each other (a loop)."""
    lines = good_lines()
    triples = ("\n".join(lines[j : j + 3]) for j in range(0, 600, 3))
    return [t for t in triples if degeneration(t) is None]


def good(i: int) -> str:
    return good_answers()[i]


def simplified(i: int) -> str:
    return "\n".join(simplified_lines()[3 * i : 3 * i + 3])


def english(i: int) -> str:
    return "\n".join(english_lines()[3 * i : 3 * i + 3])


def loop(i: int) -> str:
    return "\n".join([good_lines()[200 + i]] * 4)


def mixed(i: int) -> str:
    """Chinese with one English line: Chinese as a whole, one line in another language."""
    lines = good_lines()
    return "\n".join([lines[300 + 2 * i], english_lines()[100 + i], lines[301 + 2 * i]])


@cache
def mainland() -> str:
    """Traditional characters, mainland vocabulary (chatterbot's Traditional Chinese is converted mainland text)."""
    lines = [t for t in traditional_lines() if region_places(t, "CN")[0] and not english_words(t)]
    return "\n".join(lines[-3:])


@cache
def prompts() -> list[str]:
    """Real Traditional Chinese chat turns, none of them in an answer."""
    return [t for t in traditional_lines() if not region_places(t, "CN")[0]][:12]


# prompt index → its N answers, (text, finish reason) per sample
def script() -> dict[int, list[tuple[str, str]]]:
    stop = "stop"
    return {
        0: [(english(0), stop), (good(0), stop), (simplified(0), stop), (loop(0), stop)],
        1: [(good(1), "length"), (mainland(), stop), (english(1), stop), (simplified(1), stop)],  # best ≠ chosen
        2: [(good(2), stop)] * N,  # all alike: no pair
        3: [(good(3), stop), (good(3), stop), (english(2), stop), (english(2), stop)],  # ties
        4: [(english(3), stop), (simplified(2), stop), (loop(1), stop), (mixed(0), stop)],  # none passes
        5: [(good(4), stop), (mixed(1), stop), (good(5), stop), (good(4), stop)],  # a switched line only
    }


def scripted_model(count: int):
    """Answer k to prompt i is ``script()[i % 6][k]``, told apart by its seed: the seed of a recovery job's sample k
    (a seed the preference task did not derive so is a KeyError). Translations: TransLLM's route, scripted."""
    ids = {request_seed(SEED, f"q/q.jsonl/{i + 1}", k, "answer"): (i, k) for i in range(count) for k in range(N)}
    answers = script()
    by_text = {p: i for i, p in enumerate(prompts())}

    def reply(messages, seed):
        last = messages[-1]["content"]
        if last.startswith(TO_ENGLISH):
            return f"Question {by_text[last.split(chr(10) * 2, 1)[1]]}: how should this be said?", "stop"
        if last.startswith(TO_CHINESE):
            return good(10 + int(last.split("answer to question ")[1].split(".")[0])), "stop"
        if last.startswith("Question "):
            return f"Here is the answer to question {last.split()[1].rstrip(':')}.", "stop"
        i, k = ids[seed]
        assert prompts()[i] == last, "a seed drew another prompt's answer"
        return answers[i % len(answers)][k]

    return reply


def recipe(tmp_path: Path, url: str, task: dict, count: int = 6, rows: list[dict] | None = None, **extra) -> dict:
    rows = rows or [{"text": p} for p in prompts()[:count]]
    fields = sorted({k for row in rows for k in row} - {"text"})
    source = {"name": "q", "glob": str(write_jsonl(tmp_path / "data" / "q.jsonl", rows)), "fields": fields}
    generate = {
        "model": "served-model",
        "backend": {"type": "openai", "base_url": url, "concurrency": 4, "batch_size": 4},
        "sampling": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 256, "n": N, "seed": SEED},
        "tasks": [{"preference": {"language": "zh_Hant", **task}}],
        "retry_backoff": 0.0,
        **extra,
    }
    return {
        "name": "kd-preference",
        "sources": [source],
        "generate": generate,
        "output": {"path": str(tmp_path / "out")},
    }


def rows_of(result) -> dict[int, dict]:
    return {int(r["source_id"].rsplit("/", 1)[1]) - 1: r for r in result.load().to_list()}


def step(result, name: str) -> dict:
    return next(s for s in result.manifest["steps"] if s["step"] == name)


BARRED = ("loop", "echo", "empty", "cut_off", "language", "lines", "script")  # zh_Hant: what bars a chosen answer


def passes(reasons: list[str]) -> bool:
    return not any(r.split(":")[0] in BARRED for r in reasons)


# --------------------------------------------------------------------------------------------- the rule
def test_pairs_follow_the_documented_rule(tmp_path):
    with SeededChatServer(scripted_model(6)) as server:
        result = cf.run(cf.Recipe.from_dict(recipe(tmp_path, server.url, {})), report=False)
    rows = rows_of(result)
    assert sorted(rows) == [0, 1, 3, 5]
    for row in rows.values():  # the rule, read from what each row says of all its answers
        scores, reasons = row["sample_scores"], row["sample_reasons"]
        ok = [k for k in range(N) if passes(reasons[k])]
        assert row["chosen_sample"] == max(ok, key=lambda k: (scores[k], -k))
        assert row["rejected_sample"] == min(range(N), key=lambda k: (scores[k], k))
        assert row["margin"] == pytest.approx(row["chosen_score"] - row["rejected_score"]) and row["margin"] >= 1.0
        assert row["chosen_reasons"] == reasons[row["chosen_sample"]] and row["samples"] == N
        assert row["chosen_from"] == "sample" and row["finish_reason"] == "stop" and row["kind"] == "preference"

    # good zh_TW against a loop: the loop is the worst whatever else is wrong with the other answers
    assert rows[0]["chosen"] == [{"role": "assistant", "content": good(0)}]
    assert rows[0]["rejected"] == [{"role": "assistant", "content": loop(0)}]
    assert (rows[0]["chosen_score"], rows[0]["chosen_reasons"]) == (0.0, [])
    assert (rows[0]["rejected_score"], rows[0]["rejected_reasons"]) == (-Weights().degenerate, ["loop"])
    assert rows[0]["sample_reasons"][0][:2] == ["language:en", "lines:3/3"]
    assert rows[0]["prompt"] == [{"role": "user", "content": prompts()[0]}]

    # the cut-off answer scores best but is barred; mainland words lower a score without barring it
    assert rows[1]["sample_reasons"][0] == ["cut_off"] and rows[1]["sample_scores"][0] == -Weights().cut_off
    assert rows[1]["chosen_sample"] == 1 and rows[1]["chosen_reasons"][0].startswith("region:")
    assert rows[1]["chosen_score"] < rows[1]["sample_scores"][0]
    assert rows[1]["rejected_sample"] == 3  # Simplified scores below English: wrong language and wrong script
    assert [r.split(":")[0] for r in rows[1]["rejected_reasons"]][:3] == ["language", "lines", "script"]
    assert rows[1]["rejected_reasons"][0] == "language:zh_Hans"

    # ties go to the lower sample index
    assert (rows[3]["chosen_sample"], rows[3]["rejected_sample"]) == (0, 2)

    # a line of English in Chinese bars the answer (and costs its share of the lines and its English words)
    assert rows[5]["rejected_sample"] == 1 and rows[5]["rejected_reasons"][0] == "lines:1/3"
    assert rows[5]["chosen_sample"] == 0

    generate = step(result, "generate")
    assert (generate["in"], generate["out"]) == (6, 4)
    assert generate["dropped"] == {"no_margin": 1, "no_chosen": 1}
    counts = generate["counts"]
    assert counts["chosen_from_sample"] == 4 and counts["loop"] == 2 and counts["cut_off"] == 1
    # the English and the Simplified answers; a Chinese answer with one English line is Chinese as a whole
    assert counts["language"] == 8
    assert step(result, "checks")["dropped"] == {}  # the output checks do not judge a pair's rejected answer
    assert result.manifest["kd"] == {"kinds": {"preference": 4}, "finish_reasons": {"stop": 4}}
    sent = [r["body"]["seed"] for r in server.requests]
    assert len(sent) == 6 * N and len(set(sent)) == len(sent), "every answer has its own seed"


def test_new_weights_rescore_the_cached_answers_without_a_request(tmp_path):
    with SeededChatServer(scripted_model(6)) as server:
        raw = recipe(tmp_path, server.url, {})
        first = rows_of(cf.run(cf.Recipe.from_dict(raw), report=False))
        sent = len(server.requests)
        raw["generate"]["tasks"][0]["preference"]["min_margin"] = 7.5  # a loop (12), Simplified (8); not English (7)
        again = cf.run(cf.Recipe.from_dict(raw), overwrite=True, report=False)
        assert len(server.requests) == sent, "re-scoring sent requests: the cache lost answers"
    assert sorted(first) == [0, 1, 3, 5] and sorted(rows_of(again)) == [0, 1]
    assert step(again, "generate")["dropped"] == {"no_margin": 3, "no_chosen": 1}


def test_reference_answer_is_chosen_when_no_sample_passes(tmp_path):
    rows = [{"text": p, "answer": ""} for p in prompts()[:6]]
    rows[4]["answer"] = good(8)  # all four answers fail the bar: the reference is chosen
    rows[0]["answer"] = good(9)  # a sample passes: the reference is not used
    rows[3]["answer"] = simplified(5)  # does not matter: sample 0 passes
    with SeededChatServer(scripted_model(6)) as server:
        task = {"fallback": "reference", "answer_field": "answer"}
        result = cf.run(cf.Recipe.from_dict(recipe(tmp_path, server.url, task, rows=rows)), report=False)
    out = rows_of(result)
    assert sorted(out) == [0, 1, 3, 4, 5]
    assert out[4]["chosen"][0]["content"] == good(8) and out[4]["chosen_from"] == "reference"
    assert out[4]["chosen_sample"] is None and out[4]["finish_reason"] == "supplied"
    assert out[4]["rejected_sample"] == 2 and out[4]["rejected_reasons"] == ["loop"]
    assert out[0]["chosen"][0]["content"] == good(0) and out[0]["chosen_from"] == "sample"
    assert step(result, "generate")["counts"]["chosen_from_reference"] == 1


def test_a_reference_that_fails_the_bar_gives_no_pair(tmp_path):
    rows = [{"text": p, "answer": simplified(6)} for p in prompts()[:6]]
    with SeededChatServer(scripted_model(6)) as server:
        task = {"fallback": "reference", "answer_field": "answer"}
        result = cf.run(cf.Recipe.from_dict(recipe(tmp_path, server.url, task, rows=rows)), report=False)
    assert 4 not in rows_of(result) and step(result, "generate")["dropped"]["no_chosen"] == 1


def test_translation_of_the_english_answer_is_chosen_when_no_sample_passes(tmp_path):
    """TransLLM's route: the query in English, the model's English answer, its translation back."""
    with SeededChatServer(scripted_model(6)) as server:
        result = cf.run(cf.Recipe.from_dict(recipe(tmp_path, server.url, {"fallback": "translate"})), report=False)
    row = rows_of(result)[4]
    assert row["chosen"][0]["content"] == good(14) and row["chosen_from"] == "translation"
    assert row["chosen_reasons"] == [] and row["rejected_sample"] == 2
    asked = [r["body"]["messages"][-1]["content"] for r in server.requests]
    assert sum(a.startswith(TO_ENGLISH) for a in asked) == 1 and "Question 4: how should this be said?" in asked
    assert sum(a.startswith(TO_CHINESE) for a in asked) == 1


def test_score_of_real_answers():
    lid = default_identifier()

    def judge(text, finish="stop"):
        return score(text, finish, "zh_Hant", "請問這是什麼意思？", Weights(), lid, 20)

    assert judge(good(0)) == Score(0.0, (), True)
    assert judge(loop(0)) == Score(-12.0, ("loop",), False)
    assert judge("   ") == Score(-12.0, ("empty",), False)
    assert judge(good(0), "length") == Score(-0.5, ("cut_off",), False)
    assert judge(good(0).replace("驗", "验", 1)) == Score(-1.0, ("script:1",), False)  # one slip: barred, a pair
    english_score = judge(english(0))
    assert english_score.reasons[:2] == ("language:en", "lines:3/3") and english_score.value <= -6
    simplified_score = judge(simplified(0))
    assert simplified_score.reasons[0] == "language:zh_Hans" and simplified_score.value < english_score.value
    assert pick([judge(english(0)), judge(good(0)), judge(good(0)), judge(loop(0))]) == (1, 3)
    assert pick([judge(english(0)), judge(loop(0))]) == (None, 1)


# --------------------------------------------------------------------------------------------- TRL's format
def test_rows_are_trl_conversational_preference_rows(tmp_path):
    """What TRL's `is_conversational` and `maybe_apply_chat_template` read (checked against TRL itself where it is
    installed): `prompt` a list of messages ending with the user, `chosen` and `rejected` one assistant message."""
    from datasets import load_from_disk

    with SeededChatServer(scripted_model(2)) as server:
        raw = recipe(tmp_path, server.url, {}, count=2, prompts={"system": "請用臺灣繁體中文回答。"})
        result = cf.run(cf.Recipe.from_dict(raw), report=False)
    ds = load_from_disk(str(result.path))
    assert {"prompt", "chosen", "rejected", "chosen_score", "rejected_score", "margin"} <= set(ds.column_names)
    assert "messages" not in ds.column_names
    row = ds[0]
    assert row["prompt"] == [
        {"role": "system", "content": "請用臺灣繁體中文回答。"},
        {"role": "user", "content": prompts()[0]},
    ]
    assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
    try:
        from trl.data_utils import is_conversational
    except ImportError:
        return
    assert is_conversational(row)


# --------------------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sampling": {"n": 1}}, "sampling.n: a `preference` task pairs the best of n answers"),
        ({"tasks": [{"preference": {"language": "zh_Hant"}}, "recovery"]}, "put it in a recipe of its own"),
        ({"task": {"fallback": "reference"}}, "fallback: reference needs `answer_field`"),
        ({"task": {"answer_field": "answer"}}, "answer_field is read only with `fallback: reference`"),
        (
            {"task": {"weights": {"degenerate": 5}}},
            "weights: `degenerate` must be above the sum of the other weights (11.5)",
        ),
        ({"task": {"min_margin": 0}}, "min_margin"),
    ],
)
def test_bad_preference_sections_name_the_key(tmp_path, change, message):
    raw = recipe(
        tmp_path, "http://127.0.0.1:9/v1", change.get("task", {}), rows=[{"text": "你好嗎？", "answer": "好"}]
    )
    gen = raw["generate"]
    if "sampling" in change:
        gen["sampling"].update(change["sampling"])
    if "tasks" in change:
        gen["tasks"] = change["tasks"]
    with pytest.raises(RecipeError, match=re.escape(message)):
        cf.Recipe.from_dict(raw)


def test_the_preference_recipe_compiles():
    recipe = cf.Recipe.from_yaml(REPO / "recipes" / "transllm-zh-tw-preference.yaml")
    assert recipe.generate.preference and recipe.generate.sampling.n >= 2


# --------------------------------------------------------------------------------------------- resume
KILL_SCRIPT = """
import sys
import corpusforge as cf
if __name__ == "__main__":
    cf.run(cf.Recipe.from_yaml(sys.argv[1]), report=False)
"""


def test_a_killed_run_resumes_byte_identical(tmp_path):
    count = 12
    with SeededChatServer(scripted_model(count)) as server:
        raw = recipe(tmp_path, server.url, {"fallback": "translate"}, count=count)
        raw["generate"]["backend"]["batch_size"] = 2
        reference = cf.run(cf.Recipe.from_dict(raw), output=tmp_path / "ref", report=False)
        asked_clean = len(server.requests)

        path = tmp_path / "kd.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        script_file = tmp_path / "run_kd.py"
        script_file.write_text(KILL_SCRIPT)
        cache_dir = tmp_path / "out" / ".corpusforge" / "kd-cache" / "00000"
        server.delay = {"": 0.05}  # every request: the kill lands mid-generation
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, str(script_file), str(path)], env=env, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and len(list(cache_dir.glob("chunk-*.jsonl"))) < 5 and proc.poll() is None:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        assert_run_left_nothing(proc)
        chunks = len(list(cache_dir.glob("chunk-*.jsonl")))
        assert 5 <= chunks < 4 * count // 2, f"the kill did not land mid-generation ({chunks} chunks)"
        assert not list((tmp_path / "out").glob("data-*.arrow"))

        server.delay = {}
        before = len(server.requests)
        resumed = cf.run(cf.Recipe.from_dict(raw), report=False)
        asked_again = len(server.requests) - before
    assert shard_hashes(resumed.path) == shard_hashes(reference.path) != {}
    assert asked_again <= asked_clean - 2 * (chunks - 1), "the rerun did not replay what the killed run had answered"
    assert step(resumed, "generate") == step(reference, "generate")
