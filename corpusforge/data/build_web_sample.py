"""Rebuild `web-sample.jsonl`, the input of the web presets (`recipes/web-zh-tw.yaml`, `recipes/web-th.yaml`): what
a web crawl holds, small enough to ship, so the presets run end to end offline and every step of the funnel has
something to do.

    python corpusforge/data/build_web_sample.py

Real pages: the conversations of the bundled sample (chatterbot-corpus 1.3.3, BSD-3-Clause, as
`multilingual-sample.jsonl`) of one topic file as the questions and answers of an FAQ page (one line per
conversation, `問：… 答：…`), pages of up to 1,500 characters, with a made-up URL
(`https://<language>.example.org/<topic>/<n>`). Planted among them, each with an id that says what it is
(`planted/<kind>/<n>`), junk of every kind the presets remove or repair, each put into a real page that the steps
before the one it is for keep (so every step has its own junk to find):

- `mojibake`: real pages whose UTF-8 was read as Windows-1252 (what `normalize: {fix_encoding: true}` repairs);
- `pii`: real pages with a Taiwan mobile number, a national ID, a Thai citizen ID and an e-mail address in them
  (check digits valid, made up here: nobody's);
- `gambling` / `adult`: real pages with terms of the content step's own lists put in, 3 per 100 characters;
- `url`: a real page served from a casino's host;
- `duplicate`: a real page three times over, under three URLs (what `dedup` removes, and `rehydrate` counts);
- `contaminated`: a real page with a question of the scorecard's shipped English prompts pasted in.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parent
SAMPLE = DATA / "multilingual-sample.jsonl"
OUT = DATA / "web-sample.jsonl"
FOLDERS = {"traditionalchinese": "zh-tw", "chinese": "zh-cn", "thai": "th", "english": "en"}
FAQ = {
    "traditionalchinese": ("問：", "答："),
    "chinese": ("问：", "答："),
    "thai": ("ถาม: ", "ตอบ: "),
    "english": ("Q: ", "A: "),
}
PAGE_CHARS = 1500


def pages() -> list[dict]:
    """The sample's conversations, one topic file's after another, joined into pages."""
    by_topic: dict[tuple[str, str], list[str]] = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        folder, topic, _ = row["id"].split("/")
        if folder in FOLDERS:
            question, *answers = row["text"].split("\n")
            ask, say = FAQ[folder]
            by_topic.setdefault((folder, topic), []).append(f"{ask}{question}　{say}{' '.join(answers)}".strip())
    out = []
    for (folder, topic), texts in by_topic.items():
        page: list[str] = []
        for text in texts:
            page.append(text)
            if sum(len(t) + 2 for t in page) >= PAGE_CHARS or text is texts[-1]:
                n = sum(1 for r in out if r["id"].startswith(f"{folder}/{topic}/"))
                host = FOLDERS[folder]
                out.append(
                    {
                        "id": f"{folder}/{topic}/{n}",
                        "text": "\n".join(page),
                        "url": f"https://{host}.example.org/{topic}/{n}",
                    }
                )
                page = []
    return out


def kept(text: str, language: str) -> bool:
    """Whether the web preset's language, zh_region and quality steps keep ``text``: the pages junk is planted in.
    (The sample's Traditional Chinese is mostly mainland text converted character by character, which zh_region
    drops: 軟件, 數據.)"""
    from datatrove.data import Document

    from corpusforge.steps.language import LanguageID, LanguageParams
    from corpusforge.steps.quality.step import QualityFilter, QualityParams
    from corpusforge.steps.region import RegionParams, ZhRegion

    doc = Document(text=text, id="page")
    steps = [LanguageID(LanguageParams(keep=[language], min_score=0.65)), QualityFilter(QualityParams())]
    if language == "zh_Hant":
        steps.insert(1, ZhRegion(RegionParams(keep=["TW", "mixed", "none"])))
    return all(step.filter(doc) is True for step in steps)


def terms(name: str) -> list[str]:
    lines = (DATA / "content" / name).read_text(encoding="utf-8").splitlines()
    return [t.strip() for t in lines if t.strip() and not t.startswith("#")]


def checked_tw_id(rng: random.Random) -> str:
    from corpusforge.steps.pii import taiwan_id_kind

    while True:
        candidate = rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZIO") + rng.choice("12")
        candidate += "".join(rng.choice("0123456789") for _ in range(8))
        if taiwan_id_kind(candidate) == "tw_id":
            return candidate


def checked_th_id(rng: random.Random) -> str:
    from corpusforge.steps.pii import thai_id_valid

    while True:
        head = "1" + rng.choice(["10", "50", "83"]) + "".join(rng.choice("0123456789") for _ in range(9))
        candidate = head + str((11 - sum(int(d) * (13 - i) for i, d in enumerate(head)) % 11) % 10)
        if thai_id_valid(candidate):
            return f"{candidate[0]}-{candidate[1:5]}-{candidate[5:10]}-{candidate[10:12]}-{candidate[12]}"


def sprinkle(rng: random.Random, text: str, words: list[str], per_100: float = 3.0) -> str:
    """``text`` with terms of ``words`` put after spaces and punctuation, ``per_100`` per 100 characters."""
    spots = [i + 1 for i, ch in enumerate(text) if ch in " ，。,.!?！？\n"] or [len(text)]
    chosen = sorted(rng.sample(spots, min(len(spots), max(3, int(len(text) * per_100 / 100)))), reverse=True)
    for i in chosen:
        text = text[:i] + rng.choice(words) + text[i:]
    return text


def main() -> None:
    import ftfy.bad_codecs  # noqa: F401 — registers the sloppy-windows-1252 codec

    rng = random.Random(0)
    real = pages()
    zh = [p for p in real if p["id"].startswith("traditionalchinese/") and kept(p["text"], "zh_Hant")]
    th = [p for p in real if p["id"].startswith("thai/")]
    planted: list[dict] = []

    used: set[str] = set()

    def plant(kind: str, base: dict, text: str, url: str | None = None) -> None:
        """A planted page in place of the real page it was made from (else dedup would take it for that page's
        near-duplicate before its own step sees it)."""
        n = sum(1 for r in planted if r["id"].startswith(f"planted/{kind}/"))
        planted.append({"id": f"planted/{kind}/{n}", "text": text, "url": url or base["url"]})
        used.add(base["id"])

    for base in zh[:2] + th[:1]:
        # as a browser or a database reads it: Windows-1252, its five undefined bytes passed through (ftfy's codec)
        plant("mojibake", base, base["text"].encode("utf-8").decode("sloppy-windows-1252"))
    for base in zh[2:4]:
        contact = f"聯絡我：0912-345-{rng.randrange(1000):03d}，身分證 {checked_tw_id(rng)}，信箱 lin.{rng.randrange(99)}@mail.tw"
        plant("pii", base, base["text"] + "\n\n" + contact)
    for base in th[:1]:
        contact = f"ติดต่อ 081-234-{rng.randrange(10000):04d} เลขบัตรประชาชน {checked_th_id(rng)} somchai@mail.co.th"
        plant("pii", base, base["text"] + "\n\n" + contact)
    for base in zh[4:6]:
        plant("gambling", base, sprinkle(rng, base["text"], terms("gambling.zh.txt")))
    for base in th[:1]:
        plant("gambling", base, sprinkle(rng, base["text"], terms("gambling.th.txt")))
    plant("adult", zh[6], sprinkle(rng, zh[6]["text"], terms("adult.zh.txt")))
    plant("url", zh[7], zh[7]["text"], "https://www.ufabet-casino.example/promo/7")
    for copy in range(3):
        plant("duplicate", zh[8], zh[8]["text"], f"https://mirror{copy}.example.net/{zh[8]['id']}")
    prompts = [json.loads(line)["prompt"] for line in (DATA / "prompts" / "en.jsonl").read_text().splitlines()]
    long_prompts = [p for p in prompts if 60 <= len(p) <= 300 and "\n" not in p]
    for base in zh[9:11]:  # (the sample's one Thai page already holds the other Thai plants)
        plant("contaminated", base, base["text"] + "\n\n" + rng.choice(long_prompts))
    rows = [p for p in real if p["id"] not in used] + planted
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(real)} real pages and {len(planted)} planted ones to {OUT}")


if __name__ == "__main__":
    main()
