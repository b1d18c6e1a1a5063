"""Split the bundled sample (chatterbot-corpus conversations, real text) into what the example trains on and what it
is judged on, by a stable hash of each conversation's id: 15% of the conversations are held out, and every eval
prompt and every held-out perplexity document comes from those. Nothing the model is asked in the scorecard was
in its training data.

    python examples/transfer-cpu/prepare.py WORKDIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

HELDOUT_PERCENT = 15


def heldout(doc_id: str) -> bool:
    return int(hashlib.sha1(doc_id.encode()).hexdigest(), 16) % 100 < HELDOUT_PERCENT


def main(workdir: str) -> None:
    out = Path(workdir) / "data"
    out.mkdir(parents=True, exist_ok=True)
    sample = resources.files("corpusforge.data").joinpath("multilingual-sample.jsonl").read_text(encoding="utf-8")
    docs = [json.loads(line) for line in sample.splitlines() if line.strip()]
    train = [d for d in docs if not heldout(d["id"])]
    held = [d for d in docs if heldout(d["id"])]

    def first_turns(rows, folder):  # distinct: several conversations open with the same line ("玩笑")
        return list(dict.fromkeys(d["text"].split("\n")[0] for d in rows if d["id"].startswith(folder + "/")))

    def whole(rows, folder):
        return [" ".join(d["text"].split("\n")) for d in rows if d["id"].startswith(folder + "/")]

    files = {
        "train.jsonl": [json.dumps(d, ensure_ascii=False) for d in train],  # the CP recipe keeps zh_Hant
        "kd-prompts.jsonl": [  # recovery KD: the model answers English prompts itself
            json.dumps({"id": f"kd/{i}", "text": t}, ensure_ascii=False)
            for i, t in enumerate(first_turns(train, "english"))
        ],
        "pref-prompts.jsonl": [  # preference pairs: the tuned model answers Traditional Chinese prompts of the train split
            json.dumps({"id": f"pref/{i}", "text": t}, ensure_ascii=False)
            for i, t in enumerate(first_turns(train, "traditionalchinese"))
        ],
        "prompts-zh.txt": first_turns(held, "traditionalchinese"),
        "prompts-en.txt": first_turns(held, "english"),
        "heldout-zh.txt": whole(held, "traditionalchinese"),
        "heldout-en.txt": whole(held, "english"),
    }
    for name, lines in files.items():
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{out / name}: {len(lines)} lines")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
