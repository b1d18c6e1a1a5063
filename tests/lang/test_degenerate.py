"""The degeneration detector on real text: real conversational answers (chatterbot-corpus, in five languages) are
not flagged; the corpus's own looping answers are; loops and echoes built from real answers are named by reason, and
a real answer cut off at the token limit is not degenerate; the scorecard counts loops and echoes as degenerate,
never as answers in their language."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from corpusforge.eval.scorecard.config import scorecard_config_from_dict
from corpusforge.eval.scorecard.evaluate import run_scorecard
from corpusforge.lang.degeneration import degeneration, units
from tests.support.fake_openai import FakeChatServer


def conversation_pairs(folder: str) -> list[tuple[str, str]]:
    """(turn, reply) of every conversation in one chatterbot-corpus language folder (real text, BSD-3)."""
    import chatterbot_corpus

    pairs = []
    for path in sorted((Path(chatterbot_corpus.__file__).parent / "data" / folder).glob("*.yml")):
        for conversation in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations") or []:
            turns = [t for t in conversation if isinstance(t, str)]
            pairs += list(zip(turns, turns[1:]))
    return pairs


@pytest.mark.parametrize("folder", ["english", "traditionalchinese", "chinese", "thai"])
def test_real_answers_are_not_degenerate(folder):
    pairs = [(p, a) for p, a in conversation_pairs(folder) if any(ch.isalpha() for ch in a)]
    assert len(pairs) > 10
    flagged = [(p, a, degeneration(a, p)) for p, a in pairs if degeneration(a, p)]
    # The only ones flagged are the corpus's mirrored lines, the prompt repeated word for word ("you are immature"
    # → "you are immature", "你不誠實" → "你不誠實"): echoes by any reading. Nothing else.
    assert all(why == "echo" and units(a) == units(p) for p, a, why in flagged), flagged
    assert len(flagged) <= 6 < len(pairs) // 2


def test_the_corpus_own_loops_and_echoes_are_found():
    """chatterbot's Japanese data holds real degenerate replies (a phrase repeated until cut, the question repeated)."""
    found = {a: degeneration(a, p) for p, a in conversation_pairs("japanese") if degeneration(a, p)}
    loops = [a for a, why in found.items() if why == "loop"]
    assert len(loops) == 2 and all("あたかもあたかもあたかも" in a for a in loops)
    assert found.get("あなたは感情を感じますか？") == "echo"  # the reply is the question, word for word
    real = [a for p, a in conversation_pairs("japanese") if a not in found]
    assert len(found) <= 8 < len(real)  # only those: 817 other replies pass


def test_loops_echoes_cut_offs_built_from_real_answers():
    en = conversation_pairs("english")
    zh = [(p, a) for p, a in conversation_pairs("traditionalchinese") if len(a) >= 12]
    th = [(p, a) for p, a in conversation_pairs("thai") if len(a) >= 8]
    prompt, answer = next((p, a) for p, a in en if len(a.split()) >= 8 and len(p.split()) >= 8)
    # a genuine answer, then its last sentence over and over (how a broken model ends)
    assert degeneration(answer + (" " + answer.split(".")[0] + ".") * 6, prompt) == "loop"
    assert degeneration("\n".join([zh[0][1]] * 4), zh[0][0]) == "loop"  # the same line again and again
    assert degeneration(th[0][1] * 6, th[0][0]) == "loop"  # Thai has no spaces: measured in characters
    assert degeneration(prompt, prompt) == "echo"
    assert degeneration(f"{prompt}\n{answer[:20]}", prompt) == "echo"
    # a short prompt repeated back whole and alone (SmolLM2 after a brief InsCP run: "你會死" → "你會死？")
    assert degeneration("你會死？", "你會死") == "echo" and degeneration("Hello!", "Hello") is None
    assert degeneration("我沒有意義。", "你沒有意義") is None  # an answer in the prompt's words is not a copy
    # a real answer is not degenerate, whether it ended or was cut off: length is reported apart (`cut_off`)
    assert degeneration(answer, prompt) is None
    assert degeneration(answer[: len(answer) // 2], prompt) is None  # cut mid-sentence
    assert degeneration("  \n", prompt) == "empty"
    # SmolLM2-135M-Instruct's own failure on zh_Hant prompts (greedy): the question, then one full-width mark until
    # the token limit; punctuation has no words, so this is measured on characters
    assert degeneration(zh[0][0] + "－" * 300, zh[0][0]) == "loop"
    assert degeneration(zh[1][0] + "？" * 300, zh[1][0]) == "loop"
    table = "| option | meaning |\n|---|---|\n| -v | verbose |\n| -q | quiet |"  # a Markdown table is not a loop
    assert degeneration(f"{answer}\n\n{table}", prompt) is None


def test_scorecard_counts_loops_and_echoes_as_degenerate(tmp_path):
    """A model that 'answers in the target language' by looping or repeating the question is not transferred."""
    # distinct prompts (each prompt is asked once)
    zh = list(
        dict((p, a) for p, a in conversation_pairs("traditionalchinese") if len(p) >= 10 and len(a) >= 10).items()
    )[:6]
    en = list(
        dict((p, a) for p, a in conversation_pairs("english") if len(p.split()) >= 8 and len(a.split()) >= 6).items()
    )[:2]
    replies = {p: a for p, a in zh[:2] + en}  # genuine
    replies.update({p: (a + "\n") * 8 for p, a in zh[2:4]})  # loops, in Traditional Chinese
    replies.update({p: p for p, _ in zh[4:6]})  # echoes, in Traditional Chinese
    (tmp_path / "zh.txt").write_text("\n".join(p for p, _ in zh) + "\n", encoding="utf-8")
    (tmp_path / "en.txt").write_text("\n".join(p for p, _ in en) + "\n", encoding="utf-8")

    with FakeChatServer(lambda messages: (replies[messages[-1]["content"]], "stop")) as server:
        config = {
            "language": "zh_Hant",
            "models": [{"name": "broken", "model": "m", "backend": {"type": "openai", "base_url": server.url}}],
            "prompts": {"target": [str(tmp_path / "zh.txt")], "en": [str(tmp_path / "en.txt")]},
            "output": str(tmp_path / "out"),
            "min_letters": 2,
        }
        result = run_scorecard(scorecard_config_from_dict(config))
    cell = result.models[0].cells["target"]
    assert cell.counts["degenerate"] == 4 and cell.degenerations == {"echo": 2, "loop": 2}
    assert cell.shares["target"] == pytest.approx(2 / 6)  # not 6/6: the bytes were Chinese, the answers were not
    assert result.models[0].cells["en"].counts["en"] == 2
