"""The KD replay cache holds answers, not faults; no credential reaches a file or the console. Against the scripted
OpenAI-compatible server on 127.0.0.1 (tests/support/fake_openai.py), which injects the faults of a real endpoint: null or
empty content, 5xx, 429 with Retry-After, bodies cut short, and proxies that quote the Authorization header."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

import corpusforge as cf
from corpusforge.kd.answers import whole_answer
from corpusforge.kd.step import GenerationFailed
from corpusforge.llm.backends import MAX_RETRY_AFTER, BackendError, Completion, retry_after
from corpusforge.redact import redact
from tests.kd.test_trust_kd import generate_section, kd_recipe
from tests.support import REPO
from tests.support.fake_openai import FAULTS, FakeChatServer

PROMPTS = [f"Question number {i}: what is the capital of country {i}?" for i in range(64)]


def reply(messages):  # names its prompt without copying it; prompt 5's answer is cut at max_tokens
    last = messages[-1]["content"]
    return f"The model answers: {' '.join(reversed(last.split()))}", "length" if "number 5:" in last else "stop"


def rows_of(result) -> list[dict]:
    return sorted(result.load().to_list(), key=lambda r: r["id"])


def asked(server) -> Counter:
    return Counter(r["body"]["messages"][-1]["content"] for r in server.requests)


def cached(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out.glob(".corpusforge/kd-cache/*/chunk-*.jsonl")) for line in open(f)]


# --------------------------------------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    ("completion", "whole"),
    [
        (Completion("An answer.", "stop", 3), True),
        (Completion("An answer cut at max_tokens", "length", 16), True),
        (Completion("", "stop", 1), True),  # the model ended at once: its (empty) answer, for checks.empty
        (Completion(None, "stop", 0), False),  # "content": null
        (Completion("", "stop", 0), False),  # nothing generated
        (Completion("Half an ans", None, 3), False),  # generation did not end
        (Completion("Half an ans", "abort", 3), False),
    ],
)
def test_whole_answer_is_the_one_rule_for_the_cache(completion, whole):
    assert (whole_answer(completion) is completion) == whole
    assert whole or isinstance(whole_answer(completion), BackendError)


def test_retry_after_is_honoured_up_to_a_cap():
    assert retry_after("2") == 2.0 and retry_after("3600") == MAX_RETRY_AFTER
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert retry_after(None) is None and retry_after("soon") is None and retry_after("nan") is None


# --------------------------------------------------------------------------------------------- faults
def test_a_transient_null_answer_is_asked_again_not_cached(tmp_path):
    """An endpoint that answers `"content": null` once per prompt on 1 in 8 of 64 prompts. The null was cached as
    an empty answer, dropped as empty_output, and replayed by every rerun (a rebuild with --overwrite too): those
    rows were lost for good."""
    with FakeChatServer(reply) as server:
        server.faults = {p: ["null"] for p in PROMPTS[::8]}
        gen = generate_section(server.url, ["recovery"], checks={"language": False, "truncated": "keep"})
        recipe = kd_recipe(tmp_path, {"en": [{"text": p} for p in PROMPTS]}, gen)
        first = cf.run(cf.Recipe.from_dict(recipe), report=False)
        recipe["description"] = "the same prompts, rebuilt"  # another build: --overwrite rebuilds it from the cache
        again = cf.run(cf.Recipe.from_dict(recipe), overwrite=True, report=False)
    every_prompt = sorted(f"en/en.jsonl/{i}" for i in range(1, 65))
    assert ([r["source_id"] for r in rows_of(first)], [r["source_id"] for r in rows_of(again)]) == (
        every_prompt,
        every_prompt,
    )
    assert {p for p, n in asked(server).items() if n > 1} == set(PROMPTS[::8])  # asked again within the run
    assert sum(asked(server).values()) == 64 + 8  # the rebuild sent nothing: every answer was in the cache
    assert len(cached(tmp_path / "out")) == 64 and all(e["text"] for e in cached(tmp_path / "out"))


def test_a_faulty_endpoint_gives_the_rows_of_a_clean_run(tmp_path):
    """Every kind of transient fault on half the requests, two prompts failing past their retries: after the run
    and one rerun, every prompt has its row and the rows equal a clean run's. A 429's Retry-After is waited for;
    an answer cut at max_tokens is whole and cached; rows a check drops later are re-filtered from the cache."""
    prompts = PROMPTS[:40]
    sources = {"en": [{"text": p} for p in prompts]}
    checks = {"language": False, "truncated": "keep"}
    with FakeChatServer(reply) as server:
        gen = generate_section(server.url, ["recovery"], checks=checks)
        clean = rows_of(cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path / "clean", sources, gen)), report=False))

    kinds = sorted(FAULTS)
    with FakeChatServer(reply) as server:
        server.faults = {prompts[i]: [kinds[(i // 2) % len(kinds)]] for i in range(0, 40, 2)}
        server.faults[prompts[1]] = ["null", "truncated", "503"]  # one more than max_retries allows
        server.faults[prompts[3]] = ["empty", "429", "cut"]
        server.retry_after = "1"
        gen = generate_section(server.url, ["recovery"], checks=checks, max_retries=2)
        recipe = kd_recipe(tmp_path / "faulty", sources, gen)
        with pytest.raises(GenerationFailed, match="2 request\\(s\\) failed"):
            cf.run(cf.Recipe.from_dict(recipe), report=False)
        assert {r["fault"] for r in server.requests} == {*FAULTS, None}
        first_run = len(server.requests)
        rows = rows_of(cf.run(cf.Recipe.from_dict(recipe), report=False))
        rerun = Counter(r["body"]["messages"][-1]["content"] for r in server.requests[first_run:])
        assert rerun == Counter({prompts[1]: 1, prompts[3]: 1})  # only the two that failed, answered at once

        recipe["generate"]["checks"] = {"language": False, "truncated": "drop"}
        refiltered = rows_of(cf.run(cf.Recipe.from_dict(recipe), overwrite=True, report=False))
        assert len(server.requests) == first_run + 2, "re-filtering sent requests: the cache lost answers"
    assert rows == clean and len(rows) == 40
    assert refiltered == [r for r in clean if r["finish_reason"] != "length"] and len(refiltered) == 39

    limited = [r for r in server.requests if r["fault"] == "429"]
    for r in limited:
        then = next(s for s in server.requests if s["body"] == r["body"] and s["time"] > r["time"])
        assert then["time"] - r["time"] >= 0.9, "asked again before the Retry-After"


# --------------------------------------------------------------------------------------------- redaction
KEY = "sk-cfLEAKtestKEY0123456789abcdef"
PASSWORD = "pwLEAK-7c1e9b"
URL_KEY = "qkLEAK-5d2a8f"


def test_redact_removes_credentials_and_keeps_the_message():
    text = (
        f"HTTP 401: refused (Authorization: Bearer {KEY}; request: POST /v1/chat/completions?api_key={URL_KEY}) "
        f'{{"authorization": "Basic dXNlcjpwdw=="}} http://user:{PASSWORD}@127.0.0.1:8000/v1 token hf_'
        "abcdefghijklmnopqrstuvwxyz0123 custom-key-4711"
    )
    clean = redact(text, ["custom-key-4711"])
    for secret in (KEY, URL_KEY, PASSWORD, "dXNlcjpwdw==", "hf_abcdefghij", "custom-key-4711"):
        assert secret not in clean
    assert clean.startswith("HTTP 401: refused (Authorization: <redacted>")
    assert "http://<redacted>@127.0.0.1:8000/v1" in clean
    assert redact("a risk-free task-12345678 and hf_hub_download, authorization failed") == (
        "a risk-free task-12345678 and hf_hub_download, authorization failed"
    )


def read_all(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text; a Parquet file as its rows (its pages are compressed)."""
    import pyarrow.parquet as pq

    out = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            out[str(path)] = json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False)
        elif path.is_file():
            out[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return out


@pytest.mark.parametrize("where", ["header", "url"])
def test_no_credential_reaches_a_file_or_the_console(tmp_path, where):
    """A proxy quotes the Authorization header and the request's query in its 401/500 body; the base_url carries
    user:password and ?api_key=. Nothing a CLI build and `publish --dry-run` write, and nothing they print, holds
    the key, the password or the query's key."""
    prompts = [{"text": p} for p in PROMPTS[:4]] + [{"text": "REFUSED: tell me how rivers shape valleys."}]
    out, dry = tmp_path / "out", tmp_path / "dry"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CF_TEST_LEAK_KEY": KEY}
    with FakeChatServer(reply) as server:
        server.echo, server.echo_status = {"REFUSED"}, 401 if where == "header" else 500
        url = server.url if where == "header" else f"http://user:{PASSWORD}@{server.url[7:]}?api_key={URL_KEY}"
        gen = generate_section(url, ["recovery"], max_retries=1, on_failure="skip")
        gen["backend"]["api_key_env"] = "CF_TEST_LEAK_KEY"
        recipe = tmp_path / "kd.yaml"
        recipe.write_text(yaml.safe_dump(kd_recipe(tmp_path, {"en": prompts}, gen)))
        cli = [sys.executable, "-m", "corpusforge.cli"]
        run = subprocess.run([*cli, "run", str(recipe)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    publish = [*cli, "publish", str(out), "--repo-id", "corpusforge-test/kd", "--dry-run", "--dry-run-dir", str(dry)]
    published = subprocess.run(publish, capture_output=True, text=True, env=env, timeout=300)
    assert published.returncode == 0, published.stderr

    refused = [r for r in server.requests if "REFUSED" in r["body"]["messages"][-1]["content"]]
    basic = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    if where == "header":  # the endpoint did get (and quote) the secrets
        assert {r["headers"]["authorization"] for r in refused} == {f"Bearer {KEY}"}
    else:
        assert {r["headers"]["authorization"] for r in refused} == {f"Basic {basic}"}
        assert all(r["path"] == f"/v1/chat/completions?api_key={URL_KEY}" for r in refused)
    written = {**read_all(out), **read_all(dry), "console": run.stdout + run.stderr + published.stdout}
    written["console"] += published.stderr
    assert any(name.endswith("report.html") for name in written) and any("kd-failures" in n for n in written)
    for name in ("manifest.json", "plan.json", "corpusforge_manifest.json"):
        assert any(n.endswith(name) for n in written), name
    for secret in (KEY, PASSWORD, URL_KEY, basic):
        leaks = [name for name, text in written.items() if secret in text]
        assert not leaks, f"{secret} in {leaks}"
    (failures,) = [text for name, text in written.items() if "kd-failures" in name]
    status = 401 if where == "header" else 500
    assert f"HTTP {status}: " in failures and "Authorization: <redacted>" in failures  # recorded, redacted
