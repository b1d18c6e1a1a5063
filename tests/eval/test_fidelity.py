"""The scorecard's fidelity per model and prompt set, on responses built from real lines (chatterbot-corpus, Debian's
gettext translations): answers that switch language on their second line and zh_Hant answers with Simplified
characters in 1 of 3 are measured as such (within 0.02 of the scripted truth), degenerate and failed answers are
left out, the shares are counts the scorecard's z-test takes, and the examples point at the offending text."""

from __future__ import annotations

import json
import re

from corpusforge.eval.scorecard.fidelity import Rate, model_fidelity
from corpusforge.eval.scorecard.results import Response
from corpusforge.eval.scorecard.verdicts import two_proportion_p
from tests.lang.test_fidelity import (
    SIMPLIFIED_ONLY,
    english_lines,
    simplified_lines,
    taiwan_lines,
    thai_lines,
    traditional_lines,
)


def response(prompt_set: str, text: str, answered_in: str = "target", degeneration: str | None = None) -> Response:
    return Response(
        prompt_set=prompt_set,
        prompt=f"prompt {prompt_set}",
        response=text,
        finish_reason="stop",
        n_tokens=len(text),
        detected=None,
        score=None,
        answered_in=answered_in,
        degeneration=degeneration,
    )


def test_switched_lines_and_simplified_answers_per_prompt_set():
    zh, en, cn, tw = traditional_lines(), english_lines(), simplified_lines(), taiwan_lines()
    responses = []
    # 60 target answers: every other one switches to English on its second line
    for i in range(60):
        lines = zh[2 * i : 2 * i + 2]
        if i % 2:
            lines[1] = en[i]
        responses.append(response("target", "\n".join(lines)))
    # 90 more target answers in Taiwan Traditional, 1 of 3 with a real Simplified line
    for i in range(90):
        lines = tw[2 * i : 2 * i + 2]
        if i % 3 == 0:
            lines[1] = cn[i]
        responses.append(response("target", "\n".join(lines)))
    # 40 English answers, 1 of 4 with a Chinese second line
    for i in range(40):
        lines = en[100 + 2 * i : 102 + 2 * i]
        if i % 4 == 0:
            lines[1] = zh[200 + i]
        responses.append(response("en", "\n".join(lines), answered_in="en"))
    # left out: a loop, an echo, a failed request (cut-off answers count: length is not language)
    responses.append(response("target", "\n".join([en[0]] * 5), answered_in="degenerate", degeneration="loop"))
    responses.append(response("target", en[1], answered_in="degenerate", degeneration="echo"))
    responses.append(response("target", "", answered_in="failed"))
    cut = response("target", tw[500] + "\n" + en[2], answered_in="target", degeneration="cut_off")
    responses.append(cut)

    card = model_fidelity(responses, "zh_Hant", examples=2)
    target, english = card["target"], card["en"]
    assert target.answers == 151 and english.answers == 40
    # line level: 30 of the first 60 switch, 30 of the 90 hold a Simplified line (zh_Hans by the census), the cut-off
    # answer switches: (151 - 30 - 30 - 1) / 151 pass
    assert abs(target.line.share - 90 / 151) <= 0.02, target.line
    assert abs(english.line.share - 30 / 40) <= 0.02, english.line
    # script: 30 of the 150 answers with Han hold a Simplified-only character (1 of 3 of the Taiwan answers)
    assert abs(target.script.share - 30 / 151) <= 0.02, target.script
    scripted = sum(ch in SIMPLIFIED_ONLY for r in responses[60:150] for ch in r.response)
    assert target.script_chars == scripted and target.script_per_1000 > 0
    # English prompts: no script or word measure (English is written in Latin letters)
    assert english.script is None and english.word is None and english.region is None
    assert target.word is not None and target.word.n == target.line.k
    assert target.region == "CN" and target.region_answers.n == 151

    # examples: the offending spans point at the English line, and at the Simplified characters
    lines = [e for e in target.examples if e.measure == "line"]
    assert len(lines) == 2 and all(e.response[s:e_] in en for e in lines for s, e_ in e.spans)
    assert all(label == "en" for e in lines for label in e.labels)
    script = [e for e in target.examples if e.measure == "script"]
    assert script and all(set(e.response[s:t]) <= SIMPLIFIED_ONLY for e in script for s, t in e.spans)
    json.dumps({k: v.to_dict() for k, v in card.items()})


def test_the_shares_take_the_scorecards_z_test():
    tw, cn = taiwan_lines(), simplified_lines()
    clean = [response("target", tw[2 * i] + "\n" + tw[2 * i + 1]) for i in range(60)]
    mixed = [response("target", tw[2 * i] + ("\n" + cn[i] if i % 3 == 0 else "\n" + tw[2 * i + 1])) for i in range(60)]
    a, b = model_fidelity(mixed, "zh_Hant")["target"].script, model_fidelity(clean, "zh_Hant")["target"].script
    assert isinstance(a, Rate) and (a.k, a.n, b.k, b.n) == (20, 60, 0, 60)
    assert two_proportion_p(a.k, a.n, b.k, b.n) < 0.001
    few_a, few_b = model_fidelity(mixed[:6], "zh_Hant")["target"].script, model_fidelity(clean[:6], "zh_Hant")
    assert two_proportion_p(few_a.k, few_a.n, few_b["target"].script.k, few_b["target"].script.n) > 0.05


def test_thai_answers_letter_share():
    th, en = thai_lines(), english_lines()
    responses = [response("target", th[2 * i] + "\n" + th[2 * i + 1]) for i in range(20)]
    responses.append(response("target", th[100] + "\n" + en[0]))
    card = model_fidelity(responses, "th")["target"]
    assert card.line.k == 20 and card.line.n == 21
    english_letters = sum(c.isalpha() for c in en[0])
    assert card.letters - card.thai_letters == english_letters and 0.9 < card.thai_share < 1
    (example,) = [e for e in card.examples if e.measure == "thai"]
    assert "".join(example.response[s:e] for s, e in example.spans) == "".join(c for c in en[0] if c.isalpha())
    assert card.script is None and card.region is None


def test_the_scorecard_reports_fidelity_in_its_json_table_and_page(tmp_path):
    """Through `eval scorecard` on scripted endpoints: a model whose Traditional Chinese answers switch to English on
    their second line (1 of 2) and hold a real Simplified line (1 of 3 of the others) is measured as such in
    scorecard.json (within 0.02 of the scripted truth), its findings name the line and script measures, and the
    page highlights the offending spans."""
    import contextlib
    import html

    from corpusforge.eval.scorecard.config import scorecard_config_from_dict
    from corpusforge.eval.scorecard.evaluate import run_scorecard
    from tests.support.fake_openai import FakeChatServer

    zh, tw, cn, en = traditional_lines(), taiwan_lines(), simplified_lines(), english_lines()
    target_prompts, en_prompts = list(dict.fromkeys(zh))[:60], list(dict.fromkeys(en))[:20]
    # two lines far apart in their catalog (neighbours are often near-copies, which is a loop, not an answer)
    clean = {p: tw[i] + "\n" + tw[-1 - i] for i, p in enumerate(target_prompts)}
    clean |= {p: en[100 + i] + "\n" + en[-1 - i] for i, p in enumerate(en_prompts)}
    mixed, switched, simplified = dict(clean), set(), set()
    for i, p in enumerate(target_prompts):
        if i % 2:
            mixed[p], _ = tw[i] + "\n" + en[i], switched.add(p)
        elif i % 3 == 0:
            mixed[p], _ = tw[i] + "\n" + cn[-1 - i], simplified.add(p)
    (tmp_path / "zh.txt").write_text("\n".join(target_prompts) + "\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("\n".join(en_prompts) + "\n", encoding="utf-8")
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(FakeChatServer(lambda m, r=replies: (r[m[-1]["content"]], "stop")))
            for name, replies in (("base", clean), ("mixed", mixed))
        }
        config = {
            "language": "zh_Hant",
            "models": [
                {"name": n, "model": n, "backend": {"type": "openai", "base_url": s.url}} for n, s in servers.items()
            ],
            "prompts": {"target": [str(tmp_path / "zh.txt")], "en": [str(tmp_path / "en.txt")]},
            "min_letters": 2,
            "output": str(tmp_path / "out"),
        }
        result = run_scorecard(scorecard_config_from_dict(config))
    card = json.loads(result.scorecard_json.read_text(encoding="utf-8"))
    base, tuned = (m["measures"] for m in card["models"])
    assert base["degenerate"] == tuned["degenerate"] == {"en": 0.0, "target": 0.0}
    # every answer counts (none degenerate); a Simplified line is read as zh_Hans, so it fails the line level too
    assert abs(tuned["line_pass"]["target"] - (60 - len(switched) - len(simplified)) / 60) <= 0.02
    assert abs(tuned["other_script"]["target"] - len(simplified) / 60) <= 0.02
    assert base["line_pass"] == {"en": 1.0, "target": 1.0} and base["other_script"]["target"] == 0.0
    assert tuned["line_pass"]["en"] == 1.0 and tuned["ci95"]["other_script"]["target"][0] > 0
    assert tuned["fidelity"]["target"]["script_per_1000"] > 0 == base["fidelity"]["target"]["script_per_1000"]
    texts = [f["text"] for f in card["models"][1]["findings"] if f["kind"] == "target_fell"]
    assert any("answers with Simplified-only characters" in t for t in texts), texts
    assert card["models"][1]["verdict"] == "target_fell"
    # align.json: each response carries its fidelity verdicts
    rows = json.loads(result.json_path.read_text(encoding="utf-8"))["models"][1]["responses"]
    by_prompt = {r["prompt"]: r["fidelity"] for r in rows}
    assert all(by_prompt[p]["line_pass"] is False for p in switched)
    assert all(by_prompt[p]["other_script"] > 0 for p in simplified)
    # the page: the measures' table, and the offending spans marked
    page = result.scorecard_html.read_text(encoding="utf-8")
    assert "Language fidelity" in page and "answers with Simplified-only characters" in page
    marked = [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", page, flags=re.S)]
    assert any(m in en for m in marked) and any(set(m) <= SIMPLIFIED_ONLY for m in marked)
