"""Reruns render the same bytes: `strftime_now` formats the recipe's fixed date, never the clock; Hub templates,
tokenizers and models are pinned to a commit (`corpusforge.pinning.pin_step_revisions`) and loaded at it. The Hub is a
local stand-in server that serves a few repos at a known sha."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import sys
import threading
import types
from http.server import ThreadingHTTPServer

import pytest

from corpusforge.errors import RecipeError, SourceError
from corpusforge.pinning import pin_step_revisions
from corpusforge.steps.perplexity import PerplexityParams
from corpusforge.steps.tagging import InsCPTag, TagParams
from corpusforge.steps.tokens import TokenCounter, TokensParams
from corpusforge.templates import preset
from tests.support.fake_hub import JSONHandler

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "org/model"


def inscp(text):
    return [{"role": "user", "content": ""}, {"role": "assistant", "content": text}]


# Llama 3.2's template: Llama 3.1's with the build date where 3.1 has a fixed one
LLAMA32 = preset("llama3_1").template.replace(
    '{%- if not date_string is defined %}\n    {%- set date_string = "26 Jul 2024" %}\n{%- endif %}',
    "{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n"
    '        {%- set date_string = strftime_now("%d %b %Y") %}\n    {%- else %}\n'
    '        {%- set date_string = "26 Jul 2024" %}\n    {%- endif %}\n{%- endif %}',
)


@pytest.fixture(scope="module")
def llama32(tmp_path_factory):
    """A tokenizer carrying the Llama 3.2 template, and its saved model folder."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    assert "strftime_now" in LLAMA32
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **preset("llama3_1").special_tokens)
    tokenizer.chat_template = LLAMA32
    folder = tmp_path_factory.mktemp("llama32")
    tokenizer.save_pretrained(folder)
    return tokenizer, folder


def set_clock(monkeypatch, now: dt.datetime):
    """Make `datetime.now()` return ``now`` wherever a template renderer could read the clock."""
    import transformers.utils.chat_template_utils as hf_templates

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return now

    monkeypatch.setattr(dt, "datetime", Clock)
    monkeypatch.setattr(hf_templates, "datetime", Clock)


def test_strftime_now_renders_the_configured_date_whatever_the_clock(monkeypatch, llama32):
    tokenizer, folder = llama32
    ours, theirs = [], []
    for now in (dt.datetime(2025, 1, 2, 3, 4), dt.datetime(2031, 12, 30, 23, 59)):
        set_clock(monkeypatch, now)
        ours.append(InsCPTag(TagParams(template=str(folder), date="2024-09-01")).tag("正文"))
        theirs.append(tokenizer.apply_chat_template(inscp("正文"), tokenize=False))
    assert ours[0] == ours[1]
    assert "Today Date: 01 Sep 2024\n" in ours[0]
    # the fake clock is real to transformers: a renderer that reads it writes the day of the build
    assert "Today Date: 02 Jan 2025\n" in theirs[0] and "Today Date: 30 Dec 2031\n" in theirs[1]


def test_rendering_is_apply_chat_template_on_the_configured_date(monkeypatch, llama32):
    tokenizer, folder = llama32
    set_clock(monkeypatch, dt.datetime(2024, 9, 1))
    step = InsCPTag(TagParams(template=str(folder), date="2024-09-01", system="sys"))
    messages = [{"role": "system", "content": "sys"}] + inscp("doc")
    assert step.tag("doc") == tokenizer.apply_chat_template(messages, tokenize=False)


def test_changing_the_date_changes_the_text(llama32):
    _, folder = llama32
    a = InsCPTag(TagParams(template=str(folder), date="2024-09-01")).tag("doc")
    b = InsCPTag(TagParams(template=str(folder), date="2025-03-15")).tag("doc")
    assert a != b and "Today Date: 15 Mar 2025\n" in b
    assert a.replace("01 Sep 2024", "15 Mar 2025") == b


def test_default_date_is_llama31s_own_fallback(llama32):
    _, folder = llama32
    step = InsCPTag(TagParams(template=str(folder)))
    assert step.params.date == "2024-07-26"
    # Llama 3.1's template (no strftime_now) and 3.2's (strftime_now) render the same text with the default
    assert step.tag("doc") == preset("llama3_1").render(inscp("doc"))
    assert "Today Date: 26 Jul 2024\n" in step.tag("doc")


@pytest.mark.parametrize("good", ["2024-07-26", dt.date(2024, 7, 26)], ids=["string", "yaml-date"])
def test_date_accepts_an_iso_date(good):
    assert TagParams(date=good).date == "2024-07-26"


@pytest.mark.parametrize(
    "bad",
    ["26 Jul 2024", "2024-13-01", "2024-02-30", "20240726", "2024-07-26T00:00", 1721952000, dt.datetime(2024, 7, 26)],
)
def test_date_rejects_anything_else(bad):
    with pytest.raises(ValueError, match="date must be an ISO date like '2024-07-26'"):
        TagParams(date=bad)


def test_bad_date_names_its_recipe_key():
    from corpusforge.recipe.models import parse_step

    with pytest.raises(RecipeError, match=r"steps\[3\]\.tag\.date: date must be an ISO date .* got '26 Jul 2024'"):
        parse_step({"tag": {"date": "26 Jul 2024"}}, 3)


# --------------------------------------------------------------------------------------------- the Hub


class FakeModelHub:
    """Model repos on 127.0.0.1: `model_info` (with or without a revision) and `resolve` downloads, each request
    recorded as ``"METHOD /path"``. Branch `main` points at SHA."""

    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.calls: list[str] = []
        hub = self

        class Handler(JSONHandler):
            def _not_found(self, code: str):
                data = json.dumps({"error": code}).encode()
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _serve(self):
                path = self.path.split("?")[0]
                hub.calls.append(f"{self.command} {path}")
                if path.startswith("/api/models/") and "/tree/" in path:  # snapshot_download lists the files
                    repo, _, revision = path.removeprefix("/api/models/").partition("/tree/")
                    if repo not in repos:
                        return self._not_found("RepoNotFound")
                    if revision not in ("main", SHA):
                        return self._not_found("RevisionNotFound")
                    files = [
                        {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                        for name, data in repos[repo].items()
                    ]
                    data = json.dumps(files).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                if path.startswith("/api/models/"):
                    repo, _, revision = path.removeprefix("/api/models/").partition("/revision/")
                    if repo not in repos:
                        return self._not_found("RepoNotFound")
                    if revision not in ("", "main", SHA):
                        return self._not_found("RevisionNotFound")
                    siblings = [{"rfilename": name} for name in repos[repo]]
                    return self._reply(200, {"id": repo, "modelId": repo, "sha": SHA, "siblings": siblings})
                repo, _, rest = path.lstrip("/").partition("/resolve/")
                revision, _, name = rest.partition("/")
                if repo not in repos:
                    return self._not_found("RepoNotFound")
                if revision not in ("main", SHA):
                    return self._not_found("RevisionNotFound")
                if name not in repos[repo]:
                    return self._not_found("EntryNotFound")
                data = repos[repo][name]
                self.send_response(200)
                self.send_header("X-Repo-Commit", SHA)
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(data)

            do_GET = do_HEAD = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiny_tokenizer_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["hello world 你好 世界"] * 20, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    return tok.to_str()


@pytest.fixture
def hub(monkeypatch, tmp_path, tiny_tokenizer_json):
    import huggingface_hub.constants

    config = {"chat_template": preset("chatml").template, "eos_token": "<|im_end|>"}
    server = FakeModelHub(
        {
            REPO: {
                "tokenizer_config.json": json.dumps(config).encode(),
                "tokenizer.json": tiny_tokenizer_json.encode(),
                "config.json": b"{}",
            }
        }
    )
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield server
    server.close()


@pytest.mark.parametrize("name,key", [("tag", "template"), ("tokens", "tokenizer"), ("perplexity", "model")])
def test_a_hub_id_is_pinned_to_the_served_sha(hub, name, key):
    params = {key: REPO, "batch_size": 4}
    pinned = pin_step_revisions(name, params)
    assert pinned == {key: REPO, "batch_size": 4, "revision": SHA}
    assert params == {key: REPO, "batch_size": 4}  # not modified
    assert hub.calls == [f"GET /api/models/{REPO}"]


def test_a_branch_revision_is_resolved_to_its_commit(hub):
    assert pin_step_revisions("tokens", {"tokenizer": REPO, "revision": "main"})["revision"] == SHA
    assert hub.calls == [f"GET /api/models/{REPO}/revision/main"]


def test_local_paths_presets_and_pinned_params_come_back_unchanged(hub, tmp_path, monkeypatch):
    (tmp_path / "org" / "local").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for name, params in [
        ("tag", {"template": "llama3"}),
        ("tag", {"template": str(tmp_path)}),
        ("tag", {"template": "org/local"}),  # looks like a Hub id, but is a folder here
        ("tokens", {"tokenizer": "./tok/tokenizer.json"}),
        ("perplexity", {"model": REPO, "revision": SHA}),
        ("length", {"min_chars": 8}),
        ("tag", {}),
    ]:
        assert pin_step_revisions(name, params) is params
    assert hub.calls == []


def test_pinned_params_load_the_pinned_commit(hub):
    step = InsCPTag(TagParams(**pin_step_revisions("tag", {"template": REPO})))
    assert step.params.revision == SHA
    assert step.tag("文") == preset("chatml").render(inscp("文"))
    assert f"GET /{REPO}/resolve/{SHA}/tokenizer_config.json" in hub.calls
    assert not any("/resolve/main/" in call for call in hub.calls)


def test_tokens_step_downloads_the_tokenizer_at_its_revision(hub, tiny_tokenizer_json):
    from datatrove.data import Document
    from tokenizers import Tokenizer

    step = TokenCounter(TokensParams(tokenizer=REPO, revision=SHA))
    docs = list(step.run(iter([Document(text="hello 世界", id="a")])))
    expected = len(Tokenizer.from_str(tiny_tokenizer_json).encode("hello 世界", add_special_tokens=False).ids)
    assert docs[0].metadata["n_tokens"] == expected > 0
    assert f"GET /{REPO}/resolve/{SHA}/tokenizer.json" in hub.calls


def test_a_missing_hub_tokenizer_is_a_clear_error(hub):
    with pytest.raises(SourceError, match=r"cannot fetch tokenizer.json of 'org/missing@main' from the Hub"):
        _ = TokenCounter(TokensParams(tokenizer="org/missing", revision="main")).tokenizer


def test_an_unreachable_hub_is_a_clear_error(monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(SourceError) as err:
        pin_step_revisions("tokens", {"tokenizer": REPO})
    message = str(err.value)
    assert message.startswith("step 'tokens': cannot pin Hub model 'org/model' to a commit")
    assert "give a local model folder as `tokenizer`, or set `revision` to a commit sha" in message


def test_an_unknown_repo_or_revision_is_a_clear_error(hub):
    with pytest.raises(SourceError, match=r"step 'perplexity': no Hub model 'org/missing' on http://127\.0\.0\.1"):
        pin_step_revisions("perplexity", {"model": "org/missing"})
    with pytest.raises(SourceError, match=r"step 'tag': Hub model 'org/model' has no revision 'v9'"):
        pin_step_revisions("tag", {"template": REPO, "revision": "v9"})


def test_perplexity_loads_model_and_tokenizer_at_the_revision(monkeypatch):
    pytest.importorskip("torch")
    import transformers

    from corpusforge.steps.perplexity import PerplexityModelError, TransformersScorer

    seen = []

    def record(cls, spec, **kwargs):
        seen.append((cls.__name__, spec, kwargs.get("revision")))
        raise OSError("not downloading in a test")

    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(record))
    with pytest.raises(PerplexityModelError, match=f"cannot load causal LM 'org/model@{SHA}'"):
        TransformersScorer(PerplexityParams(model=REPO, revision=SHA, device="cpu"))
    assert seen == [("AutoTokenizer", REPO, SHA)]  # the tokenizer raised first; now the model
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", classmethod(lambda cls, spec, **kw: None))
    with pytest.raises(PerplexityModelError):
        TransformersScorer(PerplexityParams(model=REPO, revision=SHA, device="cpu"))
    assert seen[-1] == ("AutoModelForCausalLM", REPO, SHA)


def test_vllm_backend_loads_model_and_tokenizer_at_the_revision(monkeypatch):
    from corpusforge.steps.perplexity import VLLMScorer

    engines = []

    class LLM:
        def __init__(self, **kwargs):
            engines.append(kwargs)

        def get_tokenizer(self):
            return None

    fake = types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    VLLMScorer(PerplexityParams(model=REPO, revision=SHA, backend="vllm"))
    VLLMScorer(PerplexityParams(model=REPO, backend="vllm"))
    assert engines[0]["revision"] == engines[0]["tokenizer_revision"] == SHA
    assert "revision" not in engines[1] and "tokenizer_revision" not in engines[1]


def test_a_revision_for_something_local_is_an_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match="revision 'main' applies to a Hub template only; 'llama3' is a preset"):
        TagParams(template="llama3", revision="main")
    with pytest.raises(ValueError, match="applies to a Hub template only; .* is a local folder"):
        TagParams(template=str(tmp_path), revision="main")
    with pytest.raises(ValueError, match="applies to a Hub tokenizer only"):
        TokensParams(tokenizer=str(tmp_path / "tokenizer.json"), revision="main")
    with pytest.raises(ValueError, match="applies to a Hub model only"):
        PerplexityParams(model=str(tmp_path), revision="main")
    with pytest.raises(ValueError, match=r"engine_args.revision: set the step's `revision` instead"):
        PerplexityParams(model=REPO, backend="vllm", engine_args={"revision": "main"})


def test_a_build_pins_the_hub_template_once_and_records_the_commit(hub, tmp_path):
    """The build plan asks the Hub once; the sha is in the recorded recipe (so in its fingerprint), and every
    task loads that commit, never `main`."""
    import corpusforge as cf
    from tests.support import make_recipe, write_jsonl

    write_jsonl(tmp_path / "in.jsonl", [{"text": f"第 {i} 行的文字"} for i in range(6)])
    raw = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"tag": {"template": REPO}}], executor={"tasks": 2})
    result = cf.run(cf.Recipe.from_dict(raw), report=False)
    assert result.manifest["recipe"]["steps"][0]["tag"]["revision"] == SHA
    assert hub.calls.count(f"GET /api/models/{REPO}") == 1
    assert not any("/resolve/main/" in call for call in hub.calls)
    assert result.load()["text"][0] == preset("chatml").render(inscp("第 0 行的文字"))
