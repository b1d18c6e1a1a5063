"""The transfer scorecard: verdicts against the reference on scripted endpoints whose answers are known (genuine
answers in either language, loops, cut-offs), significance before a verdict, the HTML page, and the likelihood
measures (retention NLL, perplexity) checked against transformers' own loss."""

from __future__ import annotations

import contextlib
import json
import math

import pytest

from corpusforge.eval.scorecard.config import scorecard_config_from_dict
from corpusforge.eval.scorecard.evaluate import run_scorecard
from corpusforge.eval.scorecard.verdicts import paired_p, two_proportion_p
from tests.lang.test_degenerate import conversation_pairs
from tests.support.fake_openai import FakeChatServer

N = 12


@pytest.fixture(scope="module")
def real():
    """Real prompts with their real replies (chatterbot-corpus): Traditional Chinese and English."""
    zh = [(p, a) for p, a in conversation_pairs("traditionalchinese") if len(p) >= 8 and len(a) >= 12]
    en = [(p, a) for p, a in conversation_pairs("english") if len(p.split()) >= 6 and len(a.split()) >= 8]
    zh, en = list(dict(zh).items()), list(dict(en).items())
    assert len(zh) >= 2 * N and len(en) >= 2 * N
    return {"zh": zh[:N], "en": en[:N], "spare_zh": [a for _, a in zh[N : 2 * N]], "spare_en": [a for _, a in en[N:]]}


def scripted(real, target: str, english: str = "en", genuine_target: int = N):
    """A scripted model. ``target`` says how it answers Traditional Chinese prompts: `en` (a real English reply),
    `zh` (the prompt's real reply), `loop` (a real reply repeated until the token limit); the first
    ``genuine_target`` prompts get that answer, the rest an English one. ``english``: how it answers English prompts
    (`en`, `zh`: a real Chinese reply, `loop`), one kind for all or a list, one per prompt."""

    def answer(kind: str, own: str, english_reply: str, chinese_reply: str) -> tuple[str, str]:
        loop = ((own + "\n") * 12, "length")
        return {"en": (english_reply, "stop"), "zh": (chinese_reply, "stop"), "loop": loop}[kind]

    replies = {}
    for i, (p, a) in enumerate(real["zh"]):
        replies[p] = answer(target if i < genuine_target else "en", a, real["spare_en"][i], a)
    kinds = [english] * N if isinstance(english, str) else english
    for i, (p, a) in enumerate(real["en"]):
        replies[p] = answer(kinds[i], a, a, real["spare_zh"][i])
    assert len(real["zh"]) == N
    return lambda messages: replies[messages[-1]["content"]]


def config_for(real, tmp_path, servers: dict) -> dict:
    (tmp_path / "zh.txt").write_text("\n".join(p for p, _ in real["zh"]) + "\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("\n".join(p for p, _ in real["en"]) + "\n", encoding="utf-8")
    return {
        "language": "zh_Hant",
        "models": [
            {"name": name, "model": name, "backend": {"type": "openai", "base_url": s.url}}
            for name, s in servers.items()
        ],
        "prompts": {"target": [str(tmp_path / "zh.txt")], "en": [str(tmp_path / "en.txt")]},
        "min_letters": 2,
        "output": str(tmp_path / "out"),
    }


def run_scripted(real, tmp_path, models: dict):
    """``run_scorecard`` over scripted models, each behind its own fake endpoint, the first the reference."""
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(FakeChatServer(reply)) for name, reply in models.items()}
        return run_scorecard(scorecard_config_from_dict(config_for(real, tmp_path, servers)))


def test_verdicts_against_the_reference(real, tmp_path):
    models = {
        "base": scripted(real, "en"),
        "transferred": scripted(real, "zh"),
        "looping": scripted(real, "loop"),  # its bytes are Traditional Chinese; its answers are loops
        "forgot-english": scripted(real, "zh", english="zh"),
        "tuned<v2>": scripted(real, "zh", genuine_target=2),  # 2 of 12: a move too small to tell from noise
    }
    result = run_scripted(real, tmp_path, models)
    card = result.scorecard
    verdicts = {m["name"]: m["verdict"] for m in card["models"]}
    assert verdicts == {
        "base": "reference",
        "transferred": "transferred",
        "looping": "broken",
        "forgot-english": "english_degraded",
        "tuned<v2>": "no_change",
    }
    by = {m["name"]: m for m in card["models"]}
    looping = by["looping"]
    assert (
        looping["measures"]["degenerate"]["target"] == 1.0 and looping["measures"]["language"]["target"]["target"] == 0
    )
    assert looping["measures"]["chat_format"] == {"en": 1.0, "target": 0.0}
    assert {f["kind"] for f in looping["findings"]} == {"broken"}  # degenerate up, turns no longer ended
    assert looping["verdict_line"].startswith("looping: BROKEN — degenerate answers to Traditional Chinese")
    assert by["transferred"]["measures"]["language"]["target"]["target"] == 1.0
    assert "English answers to English prompts 0%" in by["forgot-english"]["verdict_line"]
    unclear = [f for f in by["tuned<v2>"]["findings"] if f["kind"] == "unclear"]
    assert len(unclear) == 1 and "too few prompts to tell" in unclear[0]["text"] and "17%" in unclear[0]["text"]
    # no weights behind an endpoint: retention is not measured, and the scorecard says so
    assert "openai backend" in by["base"]["measures"]["note"] and by["base"]["measures"]["retention"] is None

    saved = json.loads(result.scorecard_json.read_text(encoding="utf-8"))
    assert [m["verdict"] for m in saved["models"]] == list(verdicts.values())
    html = result.scorecard_html.read_text(encoding="utf-8")
    assert "tuned&lt;v2&gt;" in html and "tuned<v2>" not in html  # autoescaped
    assert "data:image/png;base64," in html and html.count('class="verdict ') == 5


def test_english_prompts_answered_in_chinese_degrade_english_even_when_english_answers_rose(real, tmp_path):
    # the CPU example's shape: the base loops on half its English prompts; the tuned model stops looping, so it
    # answers more English prompts in English, and answers others in Chinese
    models = {
        "base": scripted(real, "en", english=["loop"] * 6 + ["en"] * 6),
        "leaks": scripted(real, "zh", english=["zh"] * 5 + ["en"] * 7),
    }
    by = {m["name"]: m for m in run_scripted(real, tmp_path, models).scorecard["models"]}
    leaks = by["leaks"]
    assert leaks["measures"]["language"]["en"]["en"] > by["base"]["measures"]["language"]["en"]["en"]  # 7/12 > 6/12
    assert leaks["verdict"] == "english_degraded"
    assert "English prompts answered in another language 42% (reference 0%" in leaks["verdict_line"]
    assert "transferred" in {f["kind"] for f in leaks["findings"]}  # still listed, below the harm


def test_a_shift_large_enough_on_few_prompts_is_not_called_significant():
    assert two_proportion_p(3, 5, 1, 5) > 0.05  # 60% vs 20% on 5 prompts each
    assert two_proportion_p(60, 100, 20, 100) < 0.001  # the same shares on 100 each
    assert two_proportion_p(0, 10, 0, 10) == 1.0 and two_proportion_p(1, 0, 1, 5) is None
    assert paired_p([0.5, 0.6, 0.4, 0.55, 0.45]) < 0.001 and paired_p([0.5, -0.5, 0.4, -0.4]) > 0.5


def test_cli_prints_the_scorecard_and_the_verdict_lines(real, tmp_path):
    import subprocess
    import sys

    with FakeChatServer(scripted(real, "en")) as base, FakeChatServer(scripted(real, "loop")) as broken:
        config = config_for(real, tmp_path, {"base": base, "broken": broken})
        cmd = [sys.executable, "-m", "corpusforge.cli", "eval", "scorecard", "--backend", "openai"]
        cmd += ["--model", "base", "--base-url", base.url, "--prompts", config["prompts"]["target"][0]]
        cmd += ["--prompts-en", config["prompts"]["en"][0], "-l", "zh_Hant", "-o", str(tmp_path / "cli")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "transfer scorecard (reference: base)" in out.stdout
    assert "base: reference — zh_Hant→zh_Hant 0%, en→en 100%" in out.stdout
    assert (tmp_path / "cli" / "scorecard.html").is_file()


# --------------------------------------------------------------------------------------------- likelihood
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    from corpusforge.testing import tiny_chat_model
    from tests.support import corpus_texts

    texts = corpus_texts("english") + corpus_texts("traditionalchinese")
    return tiny_chat_model(tmp_path_factory.mktemp("tiny"), texts)


def test_answer_nll_is_transformers_loss_over_the_answer_tokens(tiny, real):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from corpusforge.eval.scorecard.likelihood import Scorer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny).eval()
    conversations = [[{"role": "user", "content": p}, {"role": "assistant", "content": a}] for p, a in real["en"][:5]]
    batched = Scorer(model, tokenizer, batch_size=4).answer_nll(conversations)
    for conv, got in zip(conversations, batched):
        prompt = tokenizer.apply_chat_template(conv[:1], tokenize=False, add_generation_prompt=True)
        whole = tokenizer.apply_chat_template(conv, tokenize=False)
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = head + tokenizer(whole[len(prompt) :], add_special_tokens=False)["input_ids"]
        labels = [-100] * len(head) + ids[len(head) :]
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
        n = len(ids) - len(head)
        assert got.tokens == n and got.chars == len(whole) - len(prompt)
        assert got.nll == pytest.approx(loss * n, rel=1e-4)  # padding in the batch changes nothing

    texts = [a for _, a in real["zh"][:3]]
    scored = Scorer(model, tokenizer, batch_size=2).text_nll(texts, max_tokens=16)
    for text, got in zip(texts, scored):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:16]
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
        assert got.tokens == len(ids) - 1 and got.nll == pytest.approx(loss * (len(ids) - 1), rel=1e-4)
        assert math.isfinite(got.per_token)


def test_a_repeated_prompt_is_asked_once(real, tmp_path, caplog):
    """chatterbot opens seven conversations with "玩笑": counted seven times, one answer would weigh as seven."""
    with FakeChatServer(scripted(real, "zh")) as server:
        config = config_for(real, tmp_path, {"m": server})
        zh = (tmp_path / "zh.txt").read_text(encoding="utf-8").splitlines()
        (tmp_path / "zh.txt").write_text("\n".join(zh[:3] * 3) + "\n", encoding="utf-8")
        config["prompts"]["limit"] = 2
        result = run_scorecard(scorecard_config_from_dict(config))
        asked = [r["body"]["messages"][-1]["content"] for r in server.requests]
    assert result.models[0].cells["target"].prompts == 2 and sorted(set(asked) & set(zh)) == sorted(zh[:2])
    assert len(asked) == 4  # 2 distinct target prompts + the first 2 English ones


def test_retention_on_a_given_recovery_set(tiny, real, tmp_path):
    """`retention.answers`: a jsonl of recovery conversations is scored under every model; bad rows are named."""
    from corpusforge.errors import SourceError

    rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]} for p, a in real["en"]]
    (tmp_path / "recovery.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    config = config_for(real, tmp_path, {})
    config["models"] = [
        {"name": n, "model": str(tiny), "backend": {"type": "transformers", "device": "cpu"}} for n in ("a", "b")
    ]
    config["prompts"]["limit"] = 2
    config["sampling"] = {"max_tokens": 8}
    config["retention"] = {"answers": str(tmp_path / "recovery.jsonl"), "limit": 5}
    result = run_scorecard(scorecard_config_from_dict(config))
    a, b = (m["measures"]["retention"] for m in result.scorecard["models"])
    assert a["answers"] == b["answers"] == 5 and a["nll_per_token"] == pytest.approx(b["nll_per_token"])
    assert result.scorecard["models"][1]["measures"]["retention"]["delta_per_token"] == pytest.approx(0.0, abs=1e-6)

    (tmp_path / "recovery.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    config["output"] = str(tmp_path / "out2")
    with pytest.raises(SourceError, match="row 0 has no `messages` ending with an assistant turn"):
        run_scorecard(scorecard_config_from_dict(config))


# --------------------------------------------------------------------------------------------- length
def long_english(n: int = 40) -> list[tuple[str, str]]:
    """Real English prompts with their real replies of 12 words or more (chatterbot-corpus)."""
    pairs = [(p, a) for p, a in conversation_pairs("english") if len(p.split()) >= 4 and len(a.split()) >= 12]
    pairs = list(dict(pairs).items())[:n]
    assert len(pairs) == n
    return pairs


def test_fluent_answers_cut_at_max_tokens_are_english_not_degenerate(real, tmp_path):
    """An endpoint that answers every English prompt in fluent English, half of them cut at max_tokens (finish
    `length`): en→en is ≥ 0.95 (it was 0.5 while a cut-off answer counted as degenerate), and the cut-off share is
    reported apart, with what the cut-off answers were."""
    en = long_english()
    replies = {}
    for i, (p, a) in enumerate(en):
        words = a.split()
        replies[p] = (" ".join(words[: len(words) // 2]), "length") if i % 2 else (a, "stop")
    replies.update({p: (a, "stop") for p, a in real["zh"]})
    with FakeChatServer(lambda messages: replies[messages[-1]["content"]]) as server:
        config = config_for(real, tmp_path, {"long": server})
        (tmp_path / "en-long.txt").write_text("\n".join(p for p, _ in en) + "\n", encoding="utf-8")
        config["prompts"]["en"] = [str(tmp_path / "en-long.txt")]
        result = run_scorecard(scorecard_config_from_dict(config))
    cell = result.models[0].cells["en"]
    assert cell.shares["en"] >= 0.95 and cell.counts["degenerate"] == 0
    assert (cell.cut_off.k, cell.cut_off.n) == (20, 40) and cell.cut_off_by_class == {"en": 20}
    x = result.scorecard["models"][0]["measures"]
    assert x["language"]["en"]["en"] >= 0.95 and x["degenerate"]["en"] == 0.0
    assert x["cut_off"]["en"] == 0.5 and x["chat_format"]["en"] == 0.5
    lo, hi = x["ci95"]["cut_off"]["en"]
    assert lo < 0.5 < hi and hi - lo < 0.35  # Wilson 95% on 40 answers
    saved = json.loads(result.json_path.read_text(encoding="utf-8"))["models"][0]["matrix"]["en"]
    assert saved["cut_off"]["k"] == 20 and saved["cut_off"]["by_class"] == {"en": 20}
    assert saved["degenerations"] == {} and saved["ci95"]["en"][1] == 1.0
    html = result.scorecard_html.read_text(encoding="utf-8")
    assert "cut off (EN / zh_Hant)" in html and "[" in html


def test_a_cut_off_loop_is_still_a_loop_and_the_length_finding_says_so(real, tmp_path):
    """Cut-off answers keep their class: a loop cut at the limit is degenerate, a long genuine answer is English.
    The finding on turns ended names max_tokens and how many cut-off answers were not degenerate."""
    english = [p for p, _ in real["en"]]

    def long(messages):
        prompt = messages[-1]["content"]
        if prompt not in english:
            return scripted(real, "en")(messages)
        i, answer = english.index(prompt), real["en"][english.index(prompt)][1]
        if i < 4:  # the first 4 loop until the limit
            return (answer + "\n") * 12, "length"
        if i < 8:  # 4 more are genuine answers, cut off
            return " ".join(answer.split()[: len(answer.split()) // 2]), "length"
        return answer, "stop"

    result = run_scripted(real, tmp_path, {"base": scripted(real, "en"), "long": long})
    by = {m["name"]: m for m in result.scorecard["models"]}
    cell = result.models[1].cells["en"]
    assert cell.counts["degenerate"] == 4 and cell.degenerations == {"loop": 4}
    assert cell.cut_off_by_class == {"en": 4, "degenerate": 4} and cell.counts["en"] == 8
    turns = next(f for f in by["long"]["findings"] if "turns ended" in f["text"])
    assert "at max_tokens 256, 4 of its 8 cut-off answers are not loops or echoes" in turns["text"]
    assert "cut off at max_tokens 256 0% en / 0% zh_Hant" in by["base"]["verdict_line"]


# --------------------------------------------------------------------------------------------- samples
def test_wilson_interval_and_the_design_effect_of_several_answers_per_prompt():
    from corpusforge.eval.scorecard.results import Response, proportion, wilson
    from corpusforge.eval.scorecard.verdicts import proportions_p

    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4) and wilson(0, 0) is None

    def answers(kinds_per_prompt):
        return [
            [Response("en", f"p{i}", "", "stop", 1, "en", 1.0, kind, None, k) for k, kind in enumerate(kinds)]
            for i, kinds in enumerate(kinds_per_prompt)
        ]

    def hit(r):
        return r.answered_in == "en"

    # the same answer K times per prompt: as informative as one answer per prompt, not K
    same = proportion(answers([["en"] * 3] * 6 + [["degenerate"] * 3] * 6), hit, lambda r: True)
    assert (same.k, same.n, same.prompts) == (18, 36, 12) and same.design_effect == pytest.approx(3.0)
    assert same.effective == pytest.approx((6, 12)) and same.interval == pytest.approx(wilson(6, 12))
    one = proportion(answers([["en"]] * 6 + [["degenerate"]] * 6), hit, lambda r: True)
    assert one.design_effect == 1.0 and proportions_p(same, one) == pytest.approx(1.0)
    # samples that vary within each prompt as much as across: independent answers, the plain binomial figures
    mixed = proportion(answers([["en", "degenerate"]] * 12), hit, lambda r: True)
    assert mixed.design_effect == 1.0 and mixed.interval == pytest.approx(wilson(12, 24))
    a, b = proportion(answers([["en"]] * 9 + [["x"]] * 3), hit, lambda r: True), one
    assert proportions_p(a, b) == two_proportion_p(9, 12, 6, 12)  # one answer per prompt: the usual test


def test_samples_draw_k_seeded_answers_per_prompt_and_the_cache_tells_them_from_greedy(real, tmp_path):
    with FakeChatServer(scripted(real, "zh")) as server:
        config = config_for(real, tmp_path, {"m": server})
        config["prompts"]["limit"] = 3
        greedy = run_scorecard(scorecard_config_from_dict(config))
        assert len(server.requests) == 6 and {r["body"]["temperature"] for r in server.requests} == {0.0}
        sampled_config = {**config, "sampling": {"temperature": 0.7, "top_p": 0.9}, "samples": 3}
        sampled = run_scorecard(scorecard_config_from_dict(sampled_config))  # same output folder: not reused
        bodies = [r["body"] for r in server.requests[6:]]
        assert len(bodies) == 18 and {(b["temperature"], b["top_p"]) for b in bodies} == {(0.7, 0.9)}
        seeds: dict[str, set] = {}
        for b in bodies:
            seeds.setdefault(b["messages"][-1]["content"], set()).add(b["seed"])
        assert len(seeds) == 6 and all(len(s) == 3 for s in seeds.values())  # one seed per sample
        greedy_seeds = {r["body"]["messages"][-1]["content"]: r["body"]["seed"] for r in server.requests[:6]}
        assert all(greedy_seeds[p] in s for p, s in seeds.items())  # sample 0 has the seed one answer had
        again = run_scorecard(scorecard_config_from_dict(sampled_config))
        assert len(server.requests) == 24 and again.models[0].reused
        elsewhere = run_scorecard(scorecard_config_from_dict({**sampled_config, "output": str(tmp_path / "o2")}))
        later = {(b["messages"][-1]["content"], b["seed"]) for b in (r["body"] for r in server.requests[24:])}
        assert later == {(b["messages"][-1]["content"], b["seed"]) for b in bodies}  # deterministic seeds
    assert [r.response for r in elsewhere.models[0].responses] == [r.response for r in sampled.models[0].responses]
    assert not greedy.models[0].reused
    cell = sampled.models[0].cells["target"]
    assert (cell.prompts, cell.answers) == (3, 9) and sorted({r.sample for r in cell.responses}) == [0, 1, 2]
    x = sampled.scorecard["models"][0]["measures"]
    assert x["answers"]["target"] == {"prompts": 3, "answers": 9, "classified": 9}
    assert x["sampling"]["samples"] == 3 and x["sampling"]["source"] == "config"
    assert sampled.scorecard["samples"] == 3


def test_sampling_auto_reads_the_model_generation_config(real, tmp_path):
    """`sampling: auto`: an endpoint model sampled as its folder's generation_config.json says (top_k sent; min_p,
    which no backend takes, noted as not applied); an endpoint with no local folder says it is greedy, and one
    answer per prompt."""
    folder = tmp_path / "served-model"
    folder.mkdir()
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.6, "top_p": 0.9,
                                                              "top_k": 20, "min_p": 0.05, "eos_token_id": 2}))  # fmt: skip
    with FakeChatServer(scripted(real, "zh")) as known, FakeChatServer(scripted(real, "zh")) as unknown:
        config = config_for(real, tmp_path, {"known": known, "unknown": unknown})
        config["models"][0]["backend"]["tokenizer"] = str(folder)
        config.update(sampling="auto", samples=2)
        config["prompts"]["limit"] = 2
        result = run_scorecard(scorecard_config_from_dict(config))
        k_bodies, u_bodies = [r["body"] for r in known.requests], [r["body"] for r in unknown.requests]
    assert len(k_bodies) == 8 and {(b["temperature"], b["top_p"], b["top_k"]) for b in k_bodies} == {(0.6, 0.9, 20)}
    assert len(u_bodies) == 4 and {b["temperature"] for b in u_bodies} == {0.0} and "top_k" not in u_bodies[0]
    k, u = (m.sampling for m in result.models)
    assert k["source"] == str(folder / "generation_config.json") and k["samples"] == 2
    assert k["top_k"] == 20 and k["not_applied"] == {"min_p": 0.05} and "min_p 0.05 not applied" in k["notes"][0]
    assert "has no local folder" in u["source"] and u["samples"] == 1
    assert any("greedy" in n for n in u["notes"]) and any("not 2: greedy answers do not vary" in n for n in u["notes"])
    html = result.scorecard_html.read_text(encoding="utf-8")
    assert "temperature 0.6, top_p 0.9, top_k 20" in html and "has no local folder" in html


def test_sampling_auto_on_local_folders(tmp_path):
    from corpusforge.eval.scorecard.config import AlignSampling, ScorecardModel

    auto = AlignSampling(auto=True, max_tokens=64)
    base = tmp_path / "base"
    base.mkdir()
    (base / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    greedy = auto.for_model(ScorecardModel(model=str(base)), samples=4)
    assert (greedy.temperature, greedy.samples, greedy.max_tokens) == (0.0, 1, 64)
    assert "sets no temperature, top_p or top_k" in greedy.notes[0]
    (base / "generation_config.json").write_text(json.dumps({"temperature": 0.2, "top_p": 0.9}))
    adapter = tmp_path / "adapter"  # a LoRA adapter is sampled as its base model is
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    sampled = auto.for_model(ScorecardModel(model=str(adapter)), samples=4)
    assert (sampled.temperature, sampled.top_p, sampled.samples, sampled.notes) == (0.2, 0.9, 4, [])
    assert sampled.source == str(base / "generation_config.json")
    plain = AlignSampling(temperature=0.7).for_model(ScorecardModel(model=str(adapter)), samples=2)
    assert (plain.temperature, plain.source) == (0.7, "config")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(sampling={"auto": True, "temperature": 0.7}),
            "sampling: temperature set with `auto`, which takes them from each model's generation_config.json",
        ),
        (lambda d: d.update(sampling="greedy"), "sampling: give `auto` or a mapping"),
        (lambda d: d.update(samples=3), "samples: 3 with greedy decoding (sampling.temperature 0) would ask"),
        (
            lambda d: d["prompts"].pop("target"),
            "prompts.target: no prompt file given, and corpusforge ships no prompt set for 'zh_Hant' (it ships: en)",
        ),
    ],
)
def test_sampling_and_prompt_errors_name_the_key(real, tmp_path, change, message):
    from corpusforge.errors import RecipeError

    data = config_for(real, tmp_path, {})
    data["models"] = [{"name": "m", "model": "m"}]
    change(data)
    with pytest.raises(RecipeError) as err:
        scorecard_config_from_dict(data)
    assert message in str(err.value)
