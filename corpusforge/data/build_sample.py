"""Rebuild `multilingual-sample.jsonl` from the chatterbot-corpus package (BSD-3-Clause).

    pip install chatterbot-corpus==1.3.3 && python corpusforge/data/build_sample.py

Each conversation of the corpus becomes one document (its turns joined by newlines). The text is real, written by
the corpus' contributors, in Traditional and Simplified Chinese, Japanese, Thai, Korean and English — what the
quickstart recipe needs to show script-aware language ID and InsCP tagging offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

LANGUAGES = {
    "traditionalchinese": None,
    "chinese": None,
    "japanese": None,
    "thai": None,
    "korean": None,
    "english": 300,
}


def main() -> None:
    import chatterbot_corpus

    root = Path(chatterbot_corpus.__file__).parent / "data"
    out = Path(__file__).with_name("multilingual-sample.jsonl")
    rows = []
    for folder, cap in LANGUAGES.items():
        docs = []
        for path in sorted((root / folder).glob("*.yml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for i, conversation in enumerate(data.get("conversations") or []):
                turns = [t.strip() for t in conversation if isinstance(t, str) and t.strip()]
                if turns:
                    docs.append({"id": f"{folder}/{path.stem}/{i}", "text": "\n".join(turns)})
        rows += docs[:cap] if cap else docs
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} documents to {out}")


if __name__ == "__main__":
    main()
