"""The pii step: checksums against published examples, the formats of each kind, ordinary numbers left alone, recall on
identifiers planted in real zh_Hant / th / en text, and how many real documents it changes.

Real text, none written by us: gettext catalogs of Debian packages (tests/text/locale; zh_TW and th translations and
their English msgids: coreutils, apt, dpkg, git, glib, gtk, systemd, wget, …), Django's and Sphinx's catalogs,
chatterbot-corpus (BSD-3), the standard library's docstrings and its source code. The identifiers planted in it are generated with a
seeded RNG, each with a valid checksum.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from datatrove.data import Document

import corpusforge as cf
from corpusforge.steps.pii import (
    _TH_PROVINCES,
    _TW_LETTERS,
    KINDS,
    PII,
    PIIParams,
    card_valid,
    find_pii,
    luhn_valid,
    taiwan_id_kind,
    thai_id_valid,
)
from tests.support import (
    corpus_texts,
    gettext_messages,
    make_recipe,
    package_messages,
    stdlib_paragraphs,
    stdlib_source,
    write_jsonl,
)


def kinds_found(text: str, kinds=None) -> list[tuple[str, str]]:
    return [(kind, text[s:e]) for s, e, kind in find_pii(text, kinds)]


# ------------------------------------------------------------------------------------------------ checksums
def test_taiwan_ids_against_published_examples():
    # the examples of the Ministry of the Interior's and the National Immigration Agency's pages, as validator
    # libraries quote them (guanting112/taiwan-id-validator, enylin/taiwan-id-validator)
    assert taiwan_id_kind("A123456789") == "tw_id"
    assert taiwan_id_kind("A800000014") == taiwan_id_kind("A900000007") == "tw_arc"  # new format (2021)
    for old in ("AA00000009", "AB00000001", "AC00000003", "AD00000005", "AC01234567"):
        assert taiwan_id_kind(old) == "tw_arc", old
    for bad in ("A123456700", "A123456788", "A800000015", "AA00000008", "A323456789", "AE00000009", "a123456789"):
        assert taiwan_id_kind(bad) is None, bad
    assert taiwan_id_kind("Ａ１２３４５６７８９") == "tw_id"  # full width


def test_thai_id_and_luhn():
    # 13·1 + 12·1 + 11·0 + 10·1 + 9·7 + 8·0 + 7·0 + 6·2 + 5·0 + 4·7 + 3·5 + 2·3 = 159; (11 - 159 mod 11) mod 10 = 6
    assert thai_id_valid("1101700207536")
    assert not any(thai_id_valid(f"110170020753{d}") for d in "012345789")
    assert not thai_id_valid("9780306406157")  # an ISBN-13: 78 is no province
    assert not thai_id_valid("0101700207530")
    for number in ("4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000"):
        assert luhn_valid(number) and card_valid(number), number  # the card networks' published test numbers
    assert not card_valid("4111111111111112")
    assert not card_valid("1234567812345670")  # Luhn-valid, no issuer starts with 1
    assert not card_valid("411111111111111111")  # 18 digits: hardly ever issued, not searched for


# ------------------------------------------------------------------------------------------------ formats
FOUND = [
    ("email", "寄信到 someone.name+tag@gmail.com 。", "someone.name+tag@gmail.com"),
    ("email", "ติดต่อ somchai_k@hotmail.co.th ค่ะ", "somchai_k@hotmail.co.th"),
    ("email", "全形 abc＠gmail.com 也算", "abc＠gmail.com"),
    ("email", "QQ 12345678@qq.com", "12345678@qq.com"),
    ("email", "From: Páolo <főo@bar.com>", "főo@bar.com"),
    ("ip", "from 8.34.4.44 today", "8.34.4.44"),
    ("ip", "連線自 140.112.8.116。", "140.112.8.116"),
    ("ip", "host 2001:4860:4860::8888 is up", "2001:4860:4860::8888"),
    ("ip", "route via 2400:cb00:2048:1::c629:d7a2: done", "2400:cb00:2048:1::c629:d7a2"),
    ("phone", "手機0912-345-678聯絡", "0912-345-678"),
    ("phone", "手機 0912345678", "0912345678"),
    ("phone", "手機 0912 345 678", "0912 345 678"),
    ("phone", "電話：(02)2345-6789", "(02)2345-6789"),
    ("phone", "電話（02）2345-6789", "（02）2345-6789"),
    ("phone", "Tel:04-2234-5678", "04-2234-5678"),
    ("phone", "高雄 07-123-4567", "07-123-4567"),
    ("phone", "免付費 0800-123-456", "0800-123-456"),
    ("phone", "＋ is not needed: +886 912 345 678", "+886 912 345 678"),
    ("phone", "+886-2-2345-6789", "+886-2-2345-6789"),
    ("phone", "+886 (0)2 2345 6789", "+886 (0)2 2345 6789"),
    ("phone", "+886912345678", "+886912345678"),
    ("phone", "โทร 081-234-5678 นะ", "081-234-5678"),
    ("phone", "โทร0812345678", "0812345678"),
    ("phone", "โทร 08-1234-5678", "08-1234-5678"),
    ("phone", "กรุงเทพ 02-123-4567", "02-123-4567"),
    ("phone", "เชียงใหม่ 053-123-456", "053-123-456"),
    ("phone", "โทร +66 81 234 5678", "+66 81 234 5678"),
    ("phone", "+66-2-123-4567", "+66-2-123-4567"),
    ("phone", "โทร ๐๘๑-๒๓๔-๕๖๗๘", "๐๘๑-๒๓๔-๕๖๗๘"),  # Thai digits
    ("phone", "手機 ０９１２－３４５－６７８", "０９１２－３４５－６７８"),  # full width
    ("phone", "call +1 415-555-2671 now", "+1 415-555-2671"),
    ("phone", "call +44 20 7946 0958.", "+44 20 7946 0958"),
    ("phone", "+33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ("tw_id", "身分證A123456789號", "A123456789"),
    ("tw_arc", "居留證 A800000014", "A800000014"),
    ("tw_arc", "統一證號：AC01234567", "AC01234567"),
    ("th_id", "เลขบัตร 1-1017-00207-53-6", "1-1017-00207-53-6"),
    ("th_id", "เลขบัตร 1101700207536", "1101700207536"),
    ("th_id", "เลขบัตร 1 1017 00207 53 6", "1 1017 00207 53 6"),
    ("card", "卡號 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("card", "card 4111-1111-1111-1111.", "4111-1111-1111-1111"),
    ("card", "amex 3782 822463 10005", "3782 822463 10005"),
    ("card", "5555555555554444", "5555555555554444"),
]


@pytest.mark.parametrize(("kind", "text", "identifier"), FOUND)
def test_each_format_is_found(kind, text, identifier):
    assert kinds_found(text) == [(kind, identifier)]


LEFT_ALONE = [
    # versions, sections, dates, times, prices, counts
    "version 1.2.3.4",
    "版本 10.0.19041.1",
    "เวอร์ชัน 5.15.0.91",
    "libfoo 2.6.32.1 and 1.2.3.4.5 and v1.2.3.4",
    "HTML5 section 8.2.4.44 and RFC 7231 §7.1.1.1",
    "2023-09-12 10:30:00, 2023/09/12, 12.09.2023, 03:04:05.6789010",
    "NT$1,234,567 元；฿12,000.50；$0.99",
    "共 1073741824 位元組，4294967296 個",
    # addresses that are nobody's
    "127.0.0.1, 192.168.1.1, 10.0.0.138, 172.16.0.1, 192.0.2.1, 224.0.0.251, 0.0.0.0",
    "::1, fe80::1, 2001:db8::1, fd00::1, std::vector, Abc::Def, 12:30:45, 00:1a:2b:3c:4d:5e",
    "you@example.com, admin@mail.example.org, root@localhost, x@host.test, icon@2x.png, @decorator, user@host",
    # codes, ISBNs, order numbers, hashes, big integers
    "ISBN 0306406152, ISBN 978-0-306-40615-7, 9780306406157, ISSN 0317-8471",
    "訂單編號 20230912000123；序號 SN0912345678X；0123456789；0000012345",
    "sha 4111111111111111a, x = -5749986484189612790, a = +4294967296, format(1234, '+b') == '+10011010010'",
    "h = h * 69069 + 907133923; Decimal('+35236450.6')",
    "A12345678, A1234567890, XA123456789, a123456789, AZ12345678",
    # option lists and usage lines of real catalogs
    "  -n, --lines=[-]NUM       print the first NUM lines instead of the first 10",
    "用法：%s [選項]... [檔案]...\n  -c, --bytes=[-]數字    顯示檔案前 數字 個位元組",
]


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_ordinary_text_is_left_alone(text):
    assert kinds_found(text) == []


def test_kinds_selects_and_a_number_is_read_once():
    text = "mail a.b@gmail.com, ip 140.112.8.116, tel 0912-345-678, id A123456789, card 4111 1111 1111 1111"
    assert [k for k, _ in kinds_found(text)] == ["email", "ip", "phone", "tw_id", "card"]
    assert kinds_found(text, {"email", "ip"}) == [("email", "a.b@gmail.com"), ("ip", "140.112.8.116")]
    assert kinds_found(text, {"card"}) == [("card", "4111 1111 1111 1111")]


# ------------------------------------------------------------------------------------------------ the step
def run(params: PIIParams, texts: list[str]) -> tuple[list[str], dict]:
    step = PII(params)
    out = [d.text for d in step.run(iter(Document(text=t, id=str(i)) for i, t in enumerate(texts)))]
    return out, {k: v.total for k, v in step.stats.stats.items()}


def test_replace_with_placeholders_and_count():
    out, stats = run(PIIParams(), ["請撥 0912-345-678 或寄 a.b@gmail.com，身分證 A123456789。", "沒有個資。"])
    assert out == ["請撥 <PHONE> 或寄 <EMAIL>，身分證 <ID>。", "沒有個資。"]
    assert stats["count_phone"] == stats["count_email"] == stats["count_tw_id"] == 1
    assert stats["count_docs_with_pii"] == 1 and stats["forwarded"] == 2
    out, _ = run(PIIParams(placeholders={"email": "email@example.com"}), ["a.b@gmail.com 0912345678"])
    assert out == ["email@example.com <PHONE>"]  # the kinds not named keep their default


def test_drop_names_the_first_kind():
    out, stats = run(PIIParams(action="drop"), ["卡號 4111 1111 1111 1111，a@gmail.com", "clean", "ip 140.112.8.116"])
    assert out == ["clean"]
    assert stats["dropped_pii_card"] == stats["dropped_pii_ip"] == 1 and stats["count_email"] == 1


def test_params_are_checked():
    with pytest.raises(ValueError, match="email"):
        PIIParams(kinds=["emails"])
    with pytest.raises(ValueError, match="placeholder"):
        PIIParams(placeholder={"email": "x"})
    with pytest.raises(ValueError):
        PIIParams(kinds=[])
    assert PIIParams(kinds=["ip", "ip"]).kinds == ["ip"]


def test_counts_reach_the_manifest_funnel(tmp_path):
    rows = [{"text": "請撥 0912-345-678 或 02-2345-6789"}, {"text": "mail a.b@gmail.com"}, {"text": "乾淨的一行"}]
    write_jsonl(tmp_path / "in.jsonl", rows)
    recipe = make_recipe(tmp_path, str(tmp_path / "in.jsonl"), steps=[{"pii": {}}])
    result = cf.run(cf.Recipe.from_dict(recipe))
    row = {s["step"]: s for s in result.manifest["steps"]}["pii"]
    assert row["in"] == row["out"] == 3
    assert row["counts"] == {"docs_with_pii": 2, "email": 1, "phone": 2}
    assert "<PHONE>" in result.load()["text"][0]
    assert "counted docs_with_pii: 2, email: 1, phone: 2" in (tmp_path / "out" / "report.html").read_text()


# ------------------------------------------------------------------------------------------------ generators
def _tw(rng: random.Random, second: str) -> str:
    letter = rng.choice(sorted(_TW_LETTERS))
    body = second + "".join(rng.choice("0123456789") for _ in range(7))
    for check in "0123456789":
        if taiwan_id_kind(letter + body + check):
            return letter + body + check
    raise AssertionError("no check digit")


def gen_tw_id(rng):
    return _tw(rng, rng.choice("12"))


def gen_tw_arc(rng):
    return _tw(rng, rng.choice("89ABCD"))


def gen_th_id(rng):
    head = (
        rng.choice("12345678")
        + rng.choice(sorted(_TH_PROVINCES))
        + "".join(rng.choice("0123456789") for _ in range(9))
    )
    check = (11 - sum(int(d) * (13 - i) for i, d in enumerate(head)) % 11) % 10
    d = head + str(check)
    return rng.choice(
        [d, f"{d[0]}-{d[1:5]}-{d[5:10]}-{d[10:12]}-{d[12]}", f"{d[0]} {d[1:5]} {d[5:10]} {d[10:12]} {d[12]}"]
    )


def gen_card(rng):
    prefix, length = rng.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15), ("6011", 16),
         ("65", 16), ("3528", 16), ("3589", 16), ("62", 16), ("62", 19), ("36", 14), ("4", 19)]
    )  # fmt: skip
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    digits = next(body + c for c in "0123456789" if luhn_valid(body + c))
    sep = rng.choice(["", " ", "-"])
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]]) if sep else digits
    if length == 14:
        return sep.join([digits[:4], digits[4:10], digits[10:]]) if sep else digits
    return sep.join(digits[i : i + 4] for i in range(0, length, 4)) if sep else digits


def _digits(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def gen_phone(rng):
    d = _digits
    forms = [
        lambda: f"09{d(rng, 2)}-{d(rng, 3)}-{d(rng, 3)}",
        lambda: f"09{d(rng, 8)}",
        lambda: f"09{d(rng, 2)} {d(rng, 3)} {d(rng, 3)}",
        lambda: f"(02){rng.choice('23456789')}{d(rng, 3)}-{d(rng, 4)}",
        lambda: f"(02) {rng.choice('23456789')}{d(rng, 3)} {d(rng, 4)}",
        lambda: f"02-{rng.choice('23456789')}{d(rng, 3)}-{d(rng, 4)}",
        lambda: f"0{rng.choice('345678')}-{rng.choice('23456789')}{d(rng, 2)}-{d(rng, 4)}",
        lambda: f"(04){rng.choice('23')}{d(rng, 3)}-{d(rng, 4)}",
        lambda: f"+886 9{d(rng, 2)} {d(rng, 3)} {d(rng, 3)}",
        lambda: f"+886-9{d(rng, 2)}-{d(rng, 3)}-{d(rng, 3)}",
        lambda: f"+8869{d(rng, 8)}",
        lambda: f"+886-2-{rng.choice('23456789')}{d(rng, 3)}-{d(rng, 4)}",
        lambda: f"+886 (0)2 {rng.choice('23456789')}{d(rng, 3)} {d(rng, 4)}",
        lambda: f"+886 09{d(rng, 2)}-{d(rng, 3)}-{d(rng, 3)}",
        lambda: f"（0{rng.choice('2345678')}）{rng.choice('23456789')}{d(rng, 2)}-{d(rng, 4)}",
        lambda: f"09{d(rng, 2)}-{d(rng, 6)}",
        lambda: f"0{rng.choice('689')}{d(rng, 1)}-{d(rng, 3)}-{d(rng, 4)}",
        lambda: f"0{rng.choice('689')}{d(rng, 8)}",
        lambda: f"0{rng.choice('689')}-{d(rng, 4)}-{d(rng, 4)}",
        lambda: f"0{rng.choice('689')}{d(rng, 1)} {d(rng, 3)} {d(rng, 4)}",
        lambda: f"02-{rng.choice('23456789')}{d(rng, 2)}-{d(rng, 4)}",
        lambda: f"0{rng.choice('34567')}{d(rng, 1)}-{rng.choice('23456789')}{d(rng, 2)}-{d(rng, 3)}",
        lambda: f"+66 {rng.choice('689')}{d(rng, 1)} {d(rng, 3)} {d(rng, 4)}",
        lambda: f"+66{rng.choice('689')}{d(rng, 8)}",
        lambda: f"+66-2-{d(rng, 3)}-{d(rng, 4)}",
        lambda: f"+1 {rng.choice('23456789')}{d(rng, 2)}-{rng.choice('23456789')}{d(rng, 2)}-{d(rng, 4)}",
        lambda: f"+1 ({rng.choice('23456789')}{d(rng, 2)}) {rng.choice('23456789')}{d(rng, 2)}-{d(rng, 4)}",
        lambda: f"+44 20 {d(rng, 4)} {d(rng, 4)}",
        lambda: f"+81-3-{d(rng, 4)}-{d(rng, 4)}",
        lambda: f"+852 {rng.choice('2569')}{d(rng, 3)} {d(rng, 4)}",
        lambda: f"+65 {rng.choice('689')}{d(rng, 3)} {d(rng, 4)}",
        lambda: f"+49 30 {d(rng, 8)}",
        lambda: f"+33 {rng.choice('1234567')} {d(rng, 2)} {d(rng, 2)} {d(rng, 2)} {d(rng, 2)}",
        lambda: f"+61 2 {d(rng, 4)} {d(rng, 4)}",
    ]
    return rng.choice(forms)()


def gen_email(rng):
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = "".join(rng.choice(letters + "0123456789") for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.4:
        name += rng.choice("._-+") + "".join(rng.choice(letters) for _ in range(rng.randint(1, 8)))
    domain = rng.choice(
        ["gmail.com", "yahoo.com.tw", "hotmail.co.th", "ms12.hinet.net", "ntu.edu.tw", "chula.ac.th", "outlook.com",
         "company-name.com.tw", "mail.go.th", "proton.me", "qq.com", "163.com"]
    )  # fmt: skip
    return f"{rng.choice([name, name.capitalize()])}{rng.choice(['@'] * 9 + ['＠'])}{domain}"


def gen_ip(rng):
    while True:
        if rng.random() < 0.6:
            address = ipaddress.IPv4Address(rng.getrandbits(32))
        else:  # global unicast, zero runs as addresses have them (`2001:4860:4860::8888`)
            groups = [rng.randint(0x2000, 0x3FFF)] + [rng.choice([0, rng.getrandbits(16)]) for _ in range(7)]
            address = ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))
        if (
            address.is_global
            and not address.is_multicast
            and not (address.version == 4 and str(address) in ("0.0.0.0",))
        ):
            if address.version == 6 and address.compressed.endswith("::") and rng.random() < 0.5:
                continue
            return str(address)


GENERATORS = {"email": gen_email, "ip": gen_ip, "phone": gen_phone, "tw_id": gen_tw_id, "tw_arc": gen_tw_arc,
              "th_id": gen_th_id, "card": gen_card}  # fmt: skip
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")
THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")

LABELS = {
    "zh_Hant": {"email": ["信箱：", "E-mail: ", "請寄信至", ""], "phone": ["電話：", "手機", "聯絡電話 ", "請撥"],
                "ip": ["IP 位址：", "來源 ", ""], "tw_id": ["身分證字號：", "身分證 ", ""], "tw_arc": ["居留證號碼：", ""],
                "th_id": ["泰國身分證 ", ""], "card": ["信用卡號：", "卡號 ", ""]},
    "th": {"email": ["อีเมล ", "ติดต่อ ", ""], "phone": ["โทร ", "โทร.", "เบอร์โทรศัพท์ ", ""], "ip": ["ไอพี ", ""],
           "tw_id": ["", "เลขประจำตัว "], "tw_arc": [""], "th_id": ["เลขประจำตัวประชาชน ", "เลขบัตร ", ""],
           "card": ["บัตรเครดิต ", ""]},
    "en": {"email": ["Email: ", "write to ", "contact "], "phone": ["Tel: ", "call ", "Phone "],
           "ip": ["from ", "IP address ", "host "], "tw_id": ["ID ", "National ID: "], "tw_arc": ["ARC No. ", ""],
           "th_id": ["Thai ID ", ""], "card": ["card number ", "Visa "]},
}  # fmt: skip
ENDINGS = {
    "zh_Hant": ["。", "，", "）", " ", "\n", ""],
    "th": [" ", " ค่ะ ", "\n", ""],
    "en": [". ", ", ", " ", "\n", ")"],
}


def real_documents(language: str) -> list[str]:
    if language == "zh_Hant":
        texts = [t for _, t in gettext_messages("zh_TW")] + corpus_texts("traditionalchinese")
    elif language == "th":
        texts = [t for _, t in gettext_messages("th")] + corpus_texts("thai")
    else:
        texts = stdlib_paragraphs(40, 2000) + corpus_texts("english") + [m for m, _ in gettext_messages("zh_TW")]
    return [t for t in dict.fromkeys(texts) if len(t) >= 20]


def plant(rng: random.Random, text: str, language: str, kind: str) -> tuple[str, tuple[int, int]]:
    """``text`` with one generated identifier of ``kind`` put at a word boundary (for zh and th also between two
    letters), after a label or bare; the span it occupies."""
    value = GENERATORS[kind](rng)
    if language == "zh_Hant" and kind in ("phone", "tw_id", "th_id", "card") and rng.random() < 0.15:
        value = value.translate(FULL_WIDTH)
    if language == "th" and kind in ("phone", "th_id") and rng.random() < 0.15:
        value = value.translate(THAI_DIGITS)

    def boundary(i):
        a, b = text[i - 1 : i], text[i : i + 1]
        glue = lambda c: c.isascii() and (c.isalnum() or c in "._-+@") or c.isdecimal()  # noqa: E731
        return not glue(a) and not glue(b)

    spots = [i for i in range(len(text) + 1) if boundary(i) and (language != "en" or text[i - 1 : i] in ("", " "))]
    at = rng.choice(spots or [len(text)])
    label = rng.choice(LABELS[language][kind])
    ending = rng.choice(ENDINGS[language])
    head = text[:at] + (" " if (language == "en" or not spots) and at and text[at - 1] != " " else "") + label
    return head + value + ending + text[at:], (len(head), len(head) + len(value))


PLANTS_PER_KIND = 400


@pytest.fixture(scope="module")
def documents():
    return {language: real_documents(language) for language in ("zh_Hant", "th", "en")}


@pytest.mark.parametrize("language", ["zh_Hant", "th", "en"])
def test_recall_on_identifiers_planted_in_real_text(documents, language):
    rng = random.Random(f"pii-{language}")
    docs = documents[language]
    assert len(docs) >= 1000 if language != "th" else len(docs) >= 500
    missed: dict[str, list[str]] = {kind: [] for kind in KINDS}
    extra = []
    for kind in KINDS:
        for _ in range(PLANTS_PER_KIND):
            original = rng.choice(docs)
            text, span = plant(rng, original, language, kind)
            found = find_pii(text)
            if (span[0], span[1], kind) not in found:
                missed[kind].append(repr(text[max(0, span[0] - 20) : span[1] + 20]))
            before = {original[s:e] for s, e, _ in find_pii(original)}
            extra += [text[s:e] for s, e, k in found if (s, e) != span and text[s:e] not in before]
    recall = {kind: 1 - len(m) / PLANTS_PER_KIND for kind, m in missed.items()}
    print(f"\n{language}: recall per kind over {PLANTS_PER_KIND} plants each: {recall}")
    assert all(r >= 0.99 for r in recall.values()), {k: m[:5] for k, m in missed.items() if m}
    assert not extra, extra[:10]  # planting an identifier makes nothing else around it look like one


def clean_corpora() -> dict[str, list[str]]:
    corpora = {
        "gettext zh_TW translations": [t for _, t in gettext_messages("zh_TW")],
        "gettext th translations": [t for _, t in gettext_messages("th")],
        "gettext msgids (English)": list(dict.fromkeys(m for loc in ("zh_TW", "th") for m, _ in gettext_messages(loc))),
        "django + sphinx zh_Hant/th": [t for p in ("django", "sphinx") for loc in ("zh_Hant", "zh_TW", "th")
                                       for _, t in package_messages(p, loc)],
        "chatterbot zh/th/en": [t for f in ("traditionalchinese", "thai", "english") for t in corpus_texts(f)],
        "stdlib docstrings": stdlib_paragraphs(40, 3000),
        "stdlib source code": stdlib_source(),
    }  # fmt: skip
    return corpora


def test_real_clean_documents_are_left_alone():
    """On ~70,000 real documents (messages, conversations, docstrings, code), the share the step changes although
    datatrove's PIIFormatter (FineWeb-2) finds no e-mail or public IP in them must be ≤ 0.1 %; where datatrove does
    find addresses, ours are among them."""
    from datatrove.pipeline.formatters import PIIFormatter

    reference = PIIFormatter()
    total = clean = changed_clean = 0
    lines = []
    for name, docs in clean_corpora().items():
        n_clean = n_changed = 0
        for text in docs:
            found = find_pii(text)
            redacted = reference.format(text)
            if redacted == text:
                n_clean += 1
                n_changed += bool(found)
                if found:
                    lines.append(f"{name}: {[text[s:e] for s, e, _ in found]} in {text[:80]!r}")
            else:  # real addresses (bug-wget@gnu.org, a translator's): what we replace there, datatrove does too
                ours = [text[s:e] for s, e, k in found if k == "email" or (k == "ip" and ":" not in text[s:e])]
                assert not [t for t in ours if t in redacted], text
        total, clean, changed_clean = total + len(docs), clean + n_clean, changed_clean + n_changed
        print(f"\n{name}: {len(docs)} documents, {n_clean} clean, {n_changed} of them changed")
    print(f"all: {total} documents, {clean} clean, {changed_clean} changed ({changed_clean / clean:.4%})")
    assert total > 50_000
    assert changed_clean / clean <= 0.001, lines[:20]


@pytest.mark.parametrize(
    "text",
    [
        "a@" + "b." * 5000 + "1",
        ("+1" + "2" * 50 + " ") * 200,
        "1" * 100_000,
        "2001:" * 20_000,
        "0912 " * 20_000,
        "@" * 100_000,
        "-".join(["1234"] * 20_000),
        "a" * 100_000 + "@gmail.com",
    ],
    ids=["dots", "plus", "digits", "hex-colon", "groups", "at", "dashes", "long-local"],
)
def test_no_pathological_backtracking(text):
    import time

    started = time.process_time()
    find_pii(text)
    assert time.process_time() - started < 1.0  # each takes under 40 ms here
