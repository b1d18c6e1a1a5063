"""KD output checks catch degeneration on real text: a looping answer, an answer that repeats its prompt and a
zh_Hant answer with a Simplified-only character (chatterbot-corpus's own mis-converted reply, however short) are
dropped and counted by reason; genuine replies are kept. An answer that switches language on a line is dropped when
`checks.lines` asks for it, as lang/fidelity (the scorecard's measure) reads it."""

from __future__ import annotations

import json

import pytest

import corpusforge as cf
from corpusforge.lang.fidelity import fidelity
from corpusforge.lang.scripts import other_script_chars
from tests.kd.test_kd import endpoint_generate, kd_recipe, rows_of
from tests.lang.test_degenerate import conversation_pairs
from tests.lang.test_fidelity import english_lines, simplified_lines, traditional_lines
from tests.support.fake_openai import FakeChatServer


def test_degenerate_and_wrong_script_answers_are_dropped_with_reasons(tmp_path):
    pairs = list(dict(conversation_pairs("traditionalchinese")).items())  # one reply per distinct turn
    wrong_script = [(p, a) for p, a in pairs if other_script_chars(a, "zh_Hant")][:1]  # '没事謝謝，你呢?' (没)
    genuine = [(p, a) for p, a in pairs if not other_script_chars(a, "zh_Hant") and len(a) >= 6 and len(p) >= 8][:6]
    assert len(wrong_script) == 1 and all(len(a) < 20 for _, a in wrong_script)  # too short for the LID check
    looping, echoed = genuine[4], genuine[5]
    replies = dict(genuine[:4] + wrong_script)
    replies[looping[0]] = "\n".join([looping[1]] * 5)
    replies[echoed[0]] = echoed[0]
    prompts = [p for p, _ in genuine + wrong_script]

    with FakeChatServer(lambda messages: (replies[messages[-1]["content"]], "stop")) as server:
        gen = endpoint_generate(server.url, [{"recovery": {"language": "zh_Hant"}}])
        result = cf.run(cf.Recipe.from_dict(kd_recipe(tmp_path, {"zh": [{"text": p} for p in prompts]}, gen)))
    kept = {row["messages"][0]["content"]: row["messages"][1]["content"] for row in rows_of(result)}
    assert kept == dict(genuine[:4])
    checks = next(s for s in result.manifest["steps"] if s["step"] == "checks")
    assert checks["dropped"] == {"wrong_script_answer": 1, "loop_answer": 1, "echo_answer": 1}


def test_refiltering_with_other_checks_replays_every_answer(tmp_path):
    """Changing only `checks` is another build (refused without --overwrite), but --overwrite keeps the replay
    cache: not one request is sent again, and the new checks run on the same answers."""
    genuine = [(p, a) for p, a in dict(conversation_pairs("traditionalchinese")).items() if len(p) >= 8][:6]
    replies = dict(genuine)
    replies[genuine[0][0]] = genuine[0][0]  # an echo: dropped by the default checks, kept with degenerate: keep
    with FakeChatServer(lambda messages: (replies[messages[-1]["content"]], "stop")) as server:
        gen = endpoint_generate(server.url, [{"recovery": {"language": None}}])
        raw = kd_recipe(tmp_path, {"zh": [{"text": p} for p, _ in genuine]}, gen)
        first = cf.run(cf.Recipe.from_dict(raw), progress=lambda p: None)
        sent = len(server.requests)
        counts = json.loads((tmp_path / "out" / ".corpusforge" / "progress" / "kd.00000.json").read_text())
        assert counts["requests"] == sent and counts["replayed"] == 0 and counts["tokens"] > 0
        gen["checks"] = {"degenerate": "keep"}
        with pytest.raises(cf.OutputError, match="another recipe"):
            cf.run(cf.Recipe.from_dict(raw))
        second = cf.run(cf.Recipe.from_dict(raw), overwrite=True)
    assert sent == 6 and len(server.requests) == sent  # nothing generated again
    # what the progress bar showed for the rerun: no request, every answer replayed
    progress = json.loads((tmp_path / "out" / ".corpusforge" / "progress" / "kd.00000.json").read_text())
    assert progress["requests"] == 0 and progress["replayed"] == 6 and progress["tokens"] == 0
    assert first.manifest["rows"] == 5 and second.manifest["rows"] == len(rows_of(second)) == 6


def test_a_recovery_answer_that_switches_language_is_dropped_when_lines_are_checked(tmp_path):
    """Answers of real lines: Chinese, a real English line, Chinese again. LID on the whole answer reads Chinese (the
    census: more Han characters than English words), so the default checks keep it; `checks.lines` (opt-in) reads
    every line and drops it as `switched_language_answer`. A real Simplified line is `wrong_script_answer` either way.
    What is dropped is what lang/fidelity — the scorecard's measure — says of the same text."""
    zh, en, cn = traditional_lines(), english_lines(), simplified_lines()
    prompts = [p for p, _ in dict(conversation_pairs("traditionalchinese")).items() if len(p) >= 8][:9]
    replies = {}
    for i, p in enumerate(prompts):
        lines = zh[3 * i : 3 * i + 3]
        if i % 3 == 1:
            lines[1] = en[i]  # switches to English on the second line, and back
        elif i == 8:
            lines[1] = cn[i]  # a real Simplified line
        replies[p] = "\n".join(lines)
    switched = [replies[p] for i, p in enumerate(prompts) if i % 3 == 1]

    def run(folder, checks):
        with FakeChatServer(lambda messages: (replies[messages[-1]["content"]], "stop")) as server:
            gen = endpoint_generate(server.url, [{"recovery": {"language": "zh_Hant"}}], checks=checks)
            result = cf.run(cf.Recipe.from_dict(kd_recipe(folder, {"zh": [{"text": p} for p in prompts]}, gen)))
        kept = {row["messages"][1]["content"] for row in rows_of(result)}
        return kept, next(s for s in result.manifest["steps"] if s["step"] == "checks")["dropped"]

    default_kept, default_dropped = run(tmp_path / "default", {})
    assert default_dropped == {"wrong_script_answer": 1} and set(switched) <= default_kept
    kept, dropped = run(tmp_path / "lines", {"lines": True})
    assert dropped == {"wrong_script_answer": 1, "switched_language_answer": len(switched)} and len(switched) == 3
    assert kept == {r for r in replies.values() if fidelity(r, "zh_Hant").line_pass and r not in switched}
    assert all(fidelity(r, "zh_Hant").line_pass is False for r in switched)
    assert fidelity(replies[prompts[8]], "zh_Hant").other_script  # the same function the script check asks
