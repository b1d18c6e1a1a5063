"""The scorecard's fidelity per model and prompt set, on responses built from real lines (chatterbot-corpus, Debian's
gettext translations): answers that switch language on their second line and zh_Hant answers with Simplified
characters in 1 of 3 are measured as such (within 0.02 of the scripted truth), degenerate and failed answers are
left out, the shares are counts the scorecard's z-test takes, and the examples point at the offending text."""

from __future__ import annotations

import json

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
