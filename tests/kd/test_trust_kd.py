"""Trust in KD builds and publishing: prompt dedup per task, the KD dataset card and the scrubbed upload of a real
KD build, the openai backend inside a running event loop and its https/loopback rule, and private GPU locks.
All against the scripted OpenAI-compatible server on 127.0.0.1 (no model, no network)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import sys
import tempfile
from pathlib import Path

import pytest

import corpusforge as cf
from corpusforge.errors import RecipeError
from corpusforge.kd.config import GenerateConfig
from corpusforge.llm import backends
from corpusforge.llm.backends import BackendError, OpenAIBackend, Request
from tests.kd.test_kd import endpoint_generate
from tests.support import write_jsonl
from tests.support.fake_openai import FakeChatServer

SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16, "n": 1, "seed": 3}
PROMPT = "Tell me how rivers shape the valleys they run through."


def reply(messages):  # names its prompt without copying it (a copy is an echo: dropped by the output checks)
    return f"The model answers: {' '.join(reversed(messages[-1]['content'].split()))}", "stop"


def kd_recipe(tmp_path: Path, sources: dict[str, list[dict]], generate: dict, **extra) -> dict:
    specs = []
    for name, rows in sources.items():
        fields = sorted({k for row in rows for k in row} - {"text"})
        path = write_jsonl(tmp_path / "data" / name / f"{name}.jsonl", rows)
        specs.append({"name": name, "glob": str(path), "fields": fields})
    return {"name": "kd-trust", "sources": specs, "generate": generate, "output": {"path": str(tmp_path / "out")}}


def generate_section(url: str, tasks: list, **extra) -> dict:
    return endpoint_generate(url, tasks, **{"sampling": dict(SAMPLING), "checks": {"language": False}, **extra})


def rows_by_kind(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in result.load().to_list():
        out.setdefault(row["kind"], []).append(row["source_id"])
    return {kind: sorted(ids) for kind, ids in out.items()}


# --------------------------------------------------------------------------------------------- 1. prompt dedup
def test_prompt_dedup_is_per_task_whatever_the_tasks_a_source_selects(tmp_path):
    """The same prompt in two sources: task 0 (recovery) reads only s2, task 1 (translation) reads both. Dedup
    keyed by a task's place among a row's tasks put s1's translation and s2's recovery in one bucket."""
    pair = "แม่น้ำไหลผ่านหุบเขา"
    sources = {
        "s1": [{"text": PROMPT, "th": pair}, {"text": "Only in the first source.", "th": pair}],
        "s2": [{"text": PROMPT, "th": pair}, {"text": "Only in the second source.", "th": pair}],
    }
    translation = {"sources": ["s1", "s2"], "source_language": "en", "target_language": "th", "pair_field": "th"}
    tasks = [{"recovery": {"sources": ["s2"]}}, {"translation": {**translation, "directions": "forward"}}]
    with FakeChatServer(reply) as server:
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, sources, generate_section(server.url, tasks))))
    assert rows_by_kind(result) == {
        "recovery": ["s2/s2.jsonl/1", "s2/s2.jsonl/2"],  # the shared prompt is s2's first recovery, not a duplicate
        "translation": ["s1/s1.jsonl/1", "s1/s1.jsonl/2", "s2/s2.jsonl/2"],  # s2's copy of the prompt is one
    }
    generate = next(s for s in result.manifest["steps"] if s["step"] == "generate")
    assert generate["dropped"] == {"duplicate_prompt_translation": 1}
    assert [r["body"]["messages"][-1]["content"] for r in server.requests].count(PROMPT) == 1


# --------------------------------------------------------------------------------------------- 2, 3. publishing
@pytest.fixture(scope="module")
def kd_build(tmp_path_factory):
    """A real KD build whose recipe is full of this machine: absolute globs, output, a served model named by its
    folder (as `vllm serve /models/x` names it), a tokenizer folder, the home folder and host name in free text."""
    tmp = tmp_path_factory.mktemp("kd-publish")
    sources = {
        "en": [{"text": PROMPT}, {"text": "Why do leaves change colour in autumn?"}],
        "pairs": [{"text": "The river is wide.", "th": "แม่น้ำกว้าง"}],
    }
    tasks = [
        {"recovery": {"sources": ["en"]}},
        {"translation": {"sources": ["pairs"], "source_language": "en", "target_language": "th", "pair_field": "th"}},
    ]
    with FakeChatServer(reply) as server:
        gen = generate_section(server.url, tasks, model=str(tmp / "models" / "Llama-3-tiny"))
        gen["backend"]["tokenizer"] = str(tmp / "models" / "Llama-3-tiny")
        recipe = kd_recipe(tmp, sources, gen)
        recipe["sources"][0]["glob"] = str(tmp / "data" / "en" / "*.jsonl")
        recipe["description"] = f"Prompts from {Path.home()}/prompts, built on {socket.gethostname()}."
        result = cf.run(cf.Recipe.from_dict(recipe), report=False)
    return tmp, result


def test_published_kd_card_describes_the_generation(kd_build, tmp_path):
    from huggingface_hub import DatasetCard

    from corpusforge.publish import publish

    _, build = kd_build
    assert "kd" in build.manifest and "generation" not in build.manifest  # what finalize writes
    folder = tmp_path / "dry"
    publish(build.path, "corpusforge-test/kd", dry_run=folder)
    card = DatasetCard((folder / "README.md").read_text(encoding="utf-8"))
    tags = card.data.to_dict()["tags"]
    assert "kd" in tags and "continual-pretraining" not in tags and "inscp" not in tags
    text = card.text
    assert "Self-generated by `Llama-3-tiny` (`openai` backend)" in text
    assert "`recovery` (answers in en) on sources: en" in text and "`translation` (en↔th) on sources: pairs" in text
    assert '"temperature": 0.0' in text and '"seed": 3' in text
    assert "| recovery | 2 |" in text and "| translation | 2 |" in text  # rows per kind
    assert "| stop | 2 |" in text and "| supplied | 2 |" in text  # finish reasons
    assert "InsCP" not in text and "no token counts" not in text


def test_publish_uploads_nothing_about_this_machine(kd_build, tmp_path):
    import pyarrow.parquet as pq

    from corpusforge.publish import publish

    tmp, build = kd_build
    local_before = (build.path / "manifest.json").read_bytes()
    folder = tmp_path / "dry"
    publish(build.path, "corpusforge-test/kd", dry_run=folder)
    secrets = {
        "build folder": re.escape(str(tmp)),
        "dry-run folder": re.escape(str(tmp_path)),
        "python executable": re.escape(sys.executable),
        "home": re.escape(os.path.expanduser("~")),
        "host name": rf"(?<![\w-]){re.escape(socket.gethostname())}(?![\w-])",  # a short name is in other words
    }
    written = {}
    for path in folder.rglob("*"):
        if path.suffix == ".parquet":  # compressed: the rows themselves
            written[str(path)] = json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False)
        elif path.is_file():
            written[str(path)] = path.read_text(encoding="utf-8")
    assert sorted(Path(p).name for p in written)[-2:] == ["corpusforge_manifest.json", "train-00000-of-00001.parquet"]
    for name, secret in secrets.items():
        for path, content in written.items():
            assert not re.search(secret, content), f"{name} ({secret}) in {path}"

    public = json.loads((folder / "corpusforge_manifest.json").read_text(encoding="utf-8"))
    assert "python_executable" not in public
    assert public["recipe"]["output"]["path"] == "out"
    assert public["recipe"]["sources"][0]["glob"] == "*.jsonl"
    assert public["recipe"]["generate"]["model"] == "Llama-3-tiny"
    assert sorted((e["source"], e["path"]) for e in public["inputs"]) == [("en", "en.jsonl"), ("pairs", "pairs.jsonl")]
    assert public["rows"] == build.manifest["rows"] and public["kd"] == build.manifest["kd"]
    rows = pq.read_table(folder / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert {r["model"] for r in rows} == {"Llama-3-tiny"}
    # the local build is untouched: it still records where it came from
    assert (build.path / "manifest.json").read_bytes() == local_before
    assert json.loads(local_before)["python_executable"] == sys.executable


def test_scrub_keeps_urls_relative_paths_and_loopback_endpoints():
    from corpusforge.publish import scrub_manifest, scrub_text

    assert scrub_text("see https://huggingface.co/org/name and/or data/a.jsonl") == (
        "see https://huggingface.co/org/name and/or data/a.jsonl"
    )
    assert scrub_text("read /srv/corpora/th/part-1.jsonl first") == "read part-1.jsonl first"
    manifest = {
        "recipe": {
            "sources": [{"glob": ["/srv/c/**/*.jsonl", "builtin:multilingual-sample.jsonl", "rel/*.txt"]}],
            "executor": {"type": "slurm", "tasks": 4, "workers": 2, "partition": "gpu-a", "venv": "/opt/venv"},
            "generate": {"backend": {"type": "openai", "base_url": "https://user:pw@gpu-node-17.lab:8000/v1"}},
        }
    }
    public = scrub_manifest(manifest)["recipe"]
    assert public["sources"][0]["glob"] == ["**/*.jsonl", "builtin:multilingual-sample.jsonl", "rel/*.txt"]
    assert public["executor"] == {"type": "slurm", "tasks": 4, "workers": 2}
    assert public["generate"]["backend"]["base_url"] == "https://<endpoint>/v1"
    local = {"recipe": {"generate": {"backend": {"base_url": "http://127.0.0.1:8000/v1"}}}}
    assert scrub_manifest(local)["recipe"]["generate"]["backend"]["base_url"] == "http://127.0.0.1:8000/v1"


# --------------------------------------------------------------------------------------------- 4a. event loop
def test_openai_backend_works_inside_a_running_event_loop(tmp_path):
    """A notebook runs an event loop: generate() (and a whole KD build) called from it must still answer."""
    with FakeChatServer(reply) as server:
        config = GenerateConfig.model_validate(generate_section(server.url, ["recovery"]))
        backend = OpenAIBackend(config.model, config.backend)
        recipe = cf.Recipe.from_dict(
            kd_recipe(tmp_path, {"en": [{"text": PROMPT}]}, generate_section(server.url, ["recovery"]))
        )

        async def notebook_cell():
            assert asyncio.get_running_loop()
            direct = backend.generate([Request((("user", "Hello there"),), 1)], config.sampling)
            return direct, cf.run(recipe, report=False)

        direct, result = asyncio.run(notebook_cell())
    assert [(c.text, c.finish_reason) for c in direct] == [("The model answers: there Hello", "stop")]
    assert [r["messages"][1]["content"] for r in result.load().to_list()] == [
        f"The model answers: {' '.join(reversed(PROMPT.split()))}"
    ]


# --------------------------------------------------------------------------------------------- 4b. https rule
def openai_recipe(tmp_path: Path, **backend) -> dict:
    gen = generate_section("", ["recovery"])
    gen["backend"] = {"type": "openai", **backend}
    return kd_recipe(tmp_path, {"en": [{"text": PROMPT}]}, gen)


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3:8000/v1", "http://gpu-node-17.example.org/v1", "http://[2001:db8::1]/v1"]
)
def test_plain_http_to_another_machine_is_refused(tmp_path, url):
    with pytest.raises(RecipeError) as err:
        cf.Recipe.from_dict(openai_recipe(tmp_path, base_url=url))
    message = str(err.value)
    assert f"generate.backend.base_url: '{url}' is plain http" in message
    assert "Use https://" in message and "allow_insecure_http: true" in message


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("http://10.1.2.3:8000/v1", {"allow_insecure_http": True}),
        ("https://api.example.org/v1", {}),
        ("http://127.0.0.1:8000/v1", {}),
        ("http://127.8.0.2:8000/v1", {}),
        ("http://localhost:8000/v1", {}),
        ("http://[::1]:8000/v1", {}),
    ],
)
def test_https_loopback_or_explicit_opt_in_is_accepted(tmp_path, url, extra):
    recipe = cf.Recipe.from_dict(openai_recipe(tmp_path, base_url=url, **extra))
    assert recipe.generate.backend.base_url == url


# --------------------------------------------------------------------------------------------- 4c. GPU locks
@pytest.fixture
def two_gpu_groups(tmp_path, monkeypatch):
    """A node with two GPUs (a fake /proc/driver/nvidia/gpus), CUDA_VISIBLE_DEVICES unset and restored after."""
    gpus = tmp_path / "gpus"
    for i in range(2):
        (gpus / f"0000:0{i}:00.0").mkdir(parents=True)
    monkeypatch.setattr(backends, "GPUS_DIR", gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset-by-the-test")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(backends, "_SLOT_LOCK", None)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield runtime
    if backends._SLOT_LOCK is not None:
        os.close(backends._SLOT_LOCK)


def test_gpu_lock_is_in_a_private_folder(two_gpu_groups, tmp_path, monkeypatch):
    assert backends.claim_gpu_group(1) == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    lock = two_gpu_groups / "corpusforge" / "gpu-group-0-of-2.lock"
    folder = os.lstat(lock.parent)
    assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.getuid()
    assert stat.S_IMODE(os.lstat(lock).st_mode) == 0o600

    monkeypatch.delenv("XDG_RUNTIME_DIR")  # without one: a per-user folder in the temp folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert backends.lock_dir() == tmp_path / f"corpusforge-{os.getuid()}"
    assert stat.S_IMODE(os.lstat(tmp_path / f"corpusforge-{os.getuid()}").st_mode) == 0o700


def test_gpu_lock_does_not_follow_a_planted_symlink(two_gpu_groups, tmp_path):
    folder = backends.lock_dir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "gpu-group-0-of-2.lock").symlink_to(victim)
    (folder / "gpu-group-1-of-2.lock").symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(BackendError, match="a symlink is refused"):
        backends.claim_gpu_group(1)
    assert victim.read_text() == "precious"
    (folder / "gpu-group-0-of-2.lock").unlink()
    assert backends.claim_gpu_group(1) == "0"  # group 0 is free now; group 1's link is never opened
    assert not (tmp_path / "created-through-the-link").exists()


def test_lock_folder_others_can_write_or_not_ours_is_refused(two_gpu_groups, tmp_path):
    folder = two_gpu_groups / "corpusforge"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(BackendError, match="writable by other users"):
        backends.claim_gpu_group(1)
    folder.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    folder.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BackendError, match="is a symlink or not a folder"):
        backends.lock_dir()
