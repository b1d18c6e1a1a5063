"""`pii`: find personal identifiers — e-mail addresses, IP addresses, phone numbers, Taiwan's national ID and
resident certificate number, Thailand's citizen ID, payment card numbers — and replace each with a placeholder or
drop the document.

One compiled regular expression finds the candidates of every kind asked for in one pass over the text (it starts
with a single character class, so the engine skips the characters that cannot start one — most of a Chinese or Thai
text — without trying the alternatives); each candidate is then validated in Python (checksums, number plans,
address ranges), so an ordinary number of the right length is left alone. What counts, and what is left alone:

- `email`: ``local@domain.tld``, also with the full-width ``＠`` of CJK text. Left alone: the reserved documentation
  domains (``example.com/.net/.org``, ``*.example``, ``*.test``, ``*.invalid``, ``*.localhost``, ``*.local``:
  nobody's address) and asset names shaped like addresses (``icon@2x.png``).
- `ip`: IPv4 and IPv6 addresses that `ipaddress` calls global, as datatrove's `PIIFormatter` (FineWeb-2) replaces;
  private, loopback, link-local, documentation, reserved and multicast ranges (``192.168.1.1``, ``127.0.0.1``,
  ``192.0.2.1``, ``224.0.0.251``, ``fe80::1``, ``2001:db8::1``) are nobody's and stay. Where we differ from
  datatrove, and why: a dotted quad that continues a longer number or word (``1.2.3.4.5``, ``v1.2.3.4``,
  ``12345.6.7.8``, all of which datatrove's boundary-less pattern rewrites in part) or follows a version word
  (``version``, ``v``, ``build``, ``版本``, ``เวอร์ชัน`` …) is a version; one whose first two numbers are single
  digits (``2.6.32.1``, ``8.2.4.44``, ``1.2.3.4``) is a version or section number, or a public resolver
  (``1.1.1.1``, ``8.8.8.8``), far more often than a person's address (those blocks are 0.16 % of the address
  space); IPv6 is found too, in
  2000::/3 (all global unicast space, so ``Abc::Def`` in C++ is not), except right after ``hex:`` (inside a longer
  hex-colon run, and so also ``IPv6:2001:…`` without a space).
- `phone`: Taiwan (mobiles ``09xx-xxx-xxx``, landlines ``(0x) xxxx-xxxx`` and their 9-digit forms, ``0800``
  numbers), Thailand (mobiles ``0[689]x-xxx-xxxx`` and ``08-xxxx-xxxx``, Bangkok ``02-xxx-xxxx``, provinces
  ``0xx-xxx-xxx``), contiguous or grouped by spaces, dashes or dots, and ``+<country code> …`` numbers with
  spaces, dashes, dots or parentheses. A national number has 9 or 10 digits, ``0`` then 2–9 (so ``0123456789`` and
  zero-padded counters are not phones). An international one starts with a country code in use (E.164), has 8–15
  digits, and for Taiwan (+886), Thailand (+66) and the North American plan (+1) the national length (and for +1
  the area code and exchange starting 2–9): ``+4294967296`` and ``+10011010010`` in code are not phones.
- `tw_id`: Taiwan's national ID, a letter, ``1``/``2`` and 8 digits, with its checksum.
- `tw_arc`: Taiwan's resident certificate (外來人口統一證號), the new format (a letter, ``8``/``9``, 8 digits; since
  2021) and the old one (two letters, the second A–D, and 8 digits), with their checksums.
- `th_id`: Thailand's 13-digit citizen ID, contiguous or grouped ``1-2345-67890-12-3``: the mod-11 check digit and
  digits 2–3 a province code of ISO 3166-2:TH, so an ISBN-13 (``978…``) never passes.
- `card`: payment card numbers, contiguous or in the printed groups (4-4-4-4[-3], 4-6-5, 4-6-4) with spaces or
  dashes: the Luhn check and an issuer prefix with its length (Visa 16/19, Mastercard 16, Amex 15, Diners 14–19,
  Discover, JCB, UnionPay, Mir and Maestro 16/19). 17- and 18-digit numbers (allowed to a few issuers, hardly ever
  issued) and the retired 13-digit Visa are not searched for: long numbers in code and data are not cards.

Digits may be ASCII, full-width (``０９１２…``) or Thai (``๐๘๑…``): ``\\d`` takes any decimal digit and validation
reads it as its value; full-width letters, dashes and parentheses are taken where IDs and phones use them. A number
glued to a letter, a digit or ``_`` on either side, continuing a number through ``.``/``,``, after a ``-`` (a
negative number) or after a digit and ``:`` (a time), or right after ``ISBN`` is not an identifier.

Placeholders are fixed tags (``<EMAIL>``, ``<IP>``, ``<PHONE>``, ``<ID>``, ``<CARD>``), not fake values: a fake phone
number or ID would have to pass its checksum to read as one, a model trained on a few fake values repeats them, and
a tag reads as a redaction, never as a real identifier. ``placeholders: {email: email@example.com}`` gives FineWeb-2's
style for a kind.

Counters: ``count_<kind>`` (identifiers found) and ``count_docs_with_pii``, which the manifest's funnel row for the
step shows as ``counts``; ``dropped_pii_<kind>`` with ``action: drop``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import cache
from typing import Literal

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, field_validator

from corpusforge.config import StrictModel

Kind = Literal["email", "ip", "phone", "tw_id", "tw_arc", "th_id", "card"]
KINDS: tuple[str, ...] = ("email", "ip", "phone", "tw_id", "tw_arc", "th_id", "card")
DEFAULT_PLACEHOLDERS = {
    "email": "<EMAIL>",
    "ip": "<IP>",
    "phone": "<PHONE>",
    "tw_id": "<ID>",
    "tw_arc": "<ID>",
    "th_id": "<ID>",
    "card": "<CARD>",
}

# ------------------------------------------------------------------------------------------------ the candidates
# Every shape is written as its first character (a class) and the rest, which looks back at that character to tell
# which shape it is: the whole expression then starts with one character class, and the regular-expression engine
# skips every position whose character cannot start a candidate (most of a Chinese or Thai text) without trying
# the alternatives there. A guard that looks before the candidate therefore looks one character further back.
#
# A number is not glued to a letter, a digit or `_` (ASCII or full-width), nor continues a number through `.`/`,`,
# nor follows a `-` (`-5749…`: a negative number).
_WORD = r"\dA-Za-z_\uff21-\uff3a\uff41-\uff5a"
_LEFT = rf"(?<![{_WORD}+\-].)(?<!\d[.,].)"
_RIGHT = rf"(?![{_WORD}@\uff20])(?![.,\-]\d)"
_NOT_A_TIME = r"(?<!\d:.)"  # a number after a digit and `:` is the rest of a time (`03:04:05.6789010`)
_SEP = r"[ \-.\u2010-\u2013\uff0d]"  # between the groups of a phone number: space, dashes, dot, full-width dash
_OPEN, _CLOSE = r"[(\uff08]", r"[)\uff09]"

_NUMBER_SHAPES = {  # name → (kinds it may turn out to be, its first character, the rest); tried in this order
    # not from inside a longer hex-colon run (`0439:23af:2309::…`); so not right after `IPv6:` either
    "ip6": (("ip",), "23", r"(?<=[23])(?<![0-9A-Fa-f:]:.)[0-9A-Fa-f]{3}:[0-9A-Fa-f:]{1,35}"),
    "ip4": (("ip",), r"\d", rf"{_NOT_A_TIME}(?<=\d)\d{{0,2}}\.\d{{1,3}}\.\d{{1,3}}\.\d{{1,3}}"),
    "run": (("phone", "th_id", "card"), r"\d", rf"{_NOT_A_TIME}(?<=\d)\d{{8,18}}"),
    "card": (
        ("card",),
        r"\d",
        r"(?<=\d)(?:\d{3}(?P<cs>[ \-\uff0d])\d{4}(?P=cs)\d{4}(?P=cs)\d{4}(?:(?P=cs)\d{1,3})?"
        r"|\d{3}(?P<cs6>[ \-\uff0d])\d{6}(?P=cs6)\d{4,5})",
    ),
    "th_id": (("th_id",), r"\d", r"(?<=\d)(?P<ts>[ \-\uff0d])\d{4}(?P=ts)\d{5}(?P=ts)\d{2}(?P=ts)\d"),
    "national": (
        ("phone",),
        r"\d(\uff08",
        rf"{_NOT_A_TIME}(?:(?<=[(\uff08])\d{{2,4}}{_CLOSE} ?\d{{3,4}}{_SEP}?\d{{3,4}}"
        rf"|(?<=\d)\d{{1,3}}{_SEP}\d{{3,4}}{_SEP}?\d{{3,4}})",
    ),
    # groups split by one separator (a run of digits is never split two ways: no backtracking to speak of), a
    # parenthesized trunk or area code; it ends with two digits (`+35236450.6` is a decimal, not `+35236450` and `6`)
    "intl": (
        ("phone",),
        "+",
        rf"(?<=\+)\d{{1,15}}(?:{_SEP}?{_OPEN}\d{{1,4}}{_CLOSE}{_SEP}?\d{{1,12}}|{_SEP}\d{{1,12}}){{0,6}}(?<=\d\d)",
    ),
}
# A Taiwan ID starts with a letter; these shapes start at the digit after it (so that a letter never starts a
# candidate: English text is full of capitals) and the validation steps back over the letter(s).
_TW_LETTER = r"[A-Z\uff21-\uff3a]"
_TW_SHAPES = {  # name → (letters before the match, pattern)
    "tw": (1, rf"(?<={_TW_LETTER}[1289\uff11\uff12\uff18\uff19])(?<![{_WORD}+\-]..)\d{{8}}"),  # national, new ARC
    "tw_old": (2, rf"(?<={_TW_LETTER}[A-D\uff21-\uff24]\d)(?<![{_WORD}+\-]...)\d{{7}}"),  # old resident certificate
}
_EMAIL_SHAPE = (  # the local part is read backwards from the @ when the candidate is validated
    r"(?<=[A-Za-z0-9._%+\-][@\uff20])"
    r"(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24})(?![A-Za-z0-9\-])"
)


@cache
def candidate_pattern(kinds: frozenset[str]) -> re.Pattern:
    """The one regular expression that finds every candidate of ``kinds``: a first character, then an alternation
    of shapes."""
    shapes = {
        n: (first, f"(?P<{n}>{rest})") for n, (can_be, first, rest) in _NUMBER_SHAPES.items() if kinds & set(can_be)
    }
    firsts = "".join(dict.fromkeys(first for first, _ in shapes.values()))
    parts = []
    if "email" in kinds:
        firsts += "@\uff20"
        parts.append(f"(?P<email>{_EMAIL_SHAPE})")
    if shapes:
        parts.append(f"{_LEFT}(?:{'|'.join(rx for _, rx in shapes.values())}){_RIGHT}")
    if kinds & {"tw_id", "tw_arc"}:
        firsts += r"\d"
        parts += [f"(?P<{name}>{rx}){_RIGHT}" for name, (_, rx) in _TW_SHAPES.items()]
    return re.compile(f"[{firsts}](?:{'|'.join(parts)})" if parts else r"(?!)")


# ------------------------------------------------------------------------------------------------ validation
def ascii_digits(text: str) -> str:
    """The decimal digits of ``text`` as ASCII (full-width and Thai digits read as their values)."""
    return "".join(c if "0" <= c <= "9" else str(unicodedata.decimal(c)) for c in text if c.isdecimal())


# Taiwan: the letter of an ID is read as a two-digit number, A=10 … in this order (I and O were added last)
_TW_LETTERS = {c: i + 10 for i, c in enumerate("ABCDEFGHJKLMNPQRSTUVXYWZIO")}
_TW_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)


def taiwan_id_kind(value: str) -> str | None:
    """``tw_id`` (national ID), ``tw_arc`` (resident certificate, new or old format) or None when the checksum
    fails or the shape is neither."""
    value = unicodedata.normalize("NFKC", value)
    if len(value) != 10 or value[0] not in _TW_LETTERS or not value[2:].isdigit():
        return None
    code, second = _TW_LETTERS[value[0]], value[1]
    if second in "1289":
        kind, second_digit = ("tw_id" if second in "12" else "tw_arc"), int(second)
    elif second in "ABCD":  # the old resident certificate: the second letter counts with its code's last digit
        kind, second_digit = "tw_arc", _TW_LETTERS[second] % 10
    else:
        return None
    digits = (code // 10, code % 10, second_digit, *map(int, value[2:]))
    return kind if sum(w * d for w, d in zip(_TW_WEIGHTS, digits)) % 10 == 0 else None


# ISO 3166-2:TH province numbers: the 2nd and 3rd digits of a Thai ID are the registering office's province
_TH_PROVINCES = frozenset(
    f"{n:02d}"
    for n in (*range(10, 28), *range(30, 59), *range(60, 68), *range(70, 78), *range(80, 87), *range(90, 97))
)


def thai_id_valid(digits: str) -> bool:
    """Thailand's 13-digit citizen ID: a province code and the mod-11 check digit."""
    if len(digits) != 13 or digits[0] == "0" or digits[1:3] not in _TH_PROVINCES:
        return False
    total = sum(int(d) * (13 - i) for i, d in enumerate(digits[:12]))
    return (11 - total % 11) % 10 == int(digits[12])


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _card_issuer_length_ok(d: str) -> bool:
    n, p2, p3, p4, p6 = len(d), int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    if n in (17, 18):  # allowed to a few issuers, hardly ever issued: long numbers in code and data are not cards
        return False
    if d[0] == "4":  # Visa (13 digits retired; 16, 19)
        return n in (16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p2 == 36:  # Diners Club International
        return 14 <= n <= 19
    if 300 <= p3 <= 305 or p2 in (38, 39) or 3528 <= p4 <= 3589:  # Diners, JCB
        return 16 <= n <= 19
    if p4 == 6011 or 644 <= p3 <= 649 or p2 in (62, 65) or 622126 <= p6 <= 622925:  # Discover, UnionPay
        return 16 <= n <= 19
    if 2200 <= p4 <= 2204:  # Mir
        return 16 <= n <= 19
    if p4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):  # Maestro
        return 16 <= n <= 19
    return False


def card_valid(digits: str) -> bool:
    return 14 <= len(digits) <= 19 and _card_issuer_length_ok(digits) and luhn_valid(digits)


def national_phone_valid(digits: str) -> bool:
    """A Taiwan or Thailand number written nationally: 9 or 10 digits, ``0`` then 2–8, or ``09`` and 10 digits
    (the mobiles of both)."""
    if len(digits) not in (9, 10) or digits[0] != "0":
        return False
    return digits[1] in "2345678" or (digits[1] == "9" and len(digits) == 10)


# E.164 country calling codes in use (ITU), prefix-free: a `+` number must start with one
_COUNTRY_CODES = frozenset(
    "1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 "
    "86 90 91 92 93 94 95 98 211 212 213 216 218 290 291 297 298 299 350 351 352 353 354 355 356 357 358 359 370 371 "
    "372 373 374 375 376 377 378 379 380 381 382 383 385 386 387 389 420 421 423 500 501 502 503 504 505 506 507 508 "
    "509 590 591 592 593 594 595 596 597 598 599 670 672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 "
    "689 690 691 692 800 808 850 852 853 855 856 870 878 880 881 882 883 886 888 960 961 962 963 964 965 966 967 968 "
    "970 971 972 973 974 975 976 977 979 992 993 994 995 996 998".split()
    + [str(n) for n in range(220, 259)]
    + [str(n) for n in range(260, 270)]
)
# national significant numbers of the countries whose numbers we know: Taiwan 8–9 digits, Thailand 8–9, the
# North American plan 10 with area code and exchange starting 2–9 (so `+4294967296`, `+10011010010` are not phones)
_NATIONAL_LENGTHS = {"886": (8, 9), "66": (8, 9), "1": (10, 10)}


def international_phone_valid(text: str) -> bool:
    """``+<country code> …``: a country code in use and 8–15 digits in all (E.164); a ``(0)`` trunk prefix, or the
    national ``0`` written after the country code as many do (``+886 0912…``), not counted."""
    digits = ascii_digits(re.sub(r"[(\uff08][0\uff10\u0e50][)\uff09]", "", text))
    if not 8 <= len(digits) <= 15:
        return False
    code = next((digits[:n] for n in (1, 2, 3) if digits[:n] in _COUNTRY_CODES), None)
    if code is None:
        return False
    national = digits[len(code) :]
    if code in ("886", "66"):
        national = national.removeprefix("0")
    low, high = _NATIONAL_LENGTHS.get(code, (4, 14))
    if not low <= len(national) <= high:
        return False
    return code != "1" or (national[0] in "23456789" and national[3] in "23456789")


_VERSION_BEFORE = re.compile(
    r"(?:(?<![A-Za-z])(?:version|ver\.?|release|build|rev\.?|v)|版本|版|เวอร์ชัน|รุ่น)[ :：]*\Z", re.IGNORECASE
)
_ISBN_BEFORE = re.compile(r"ISBN(?:-1[03])?[ :：]*\Z", re.IGNORECASE)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def ipv4_valid(text: str, before: str) -> bool:
    dotted = "".join(c if c in ".0123456789" else str(unicodedata.decimal(c)) for c in text)
    try:
        address = ipaddress.IPv4Address(dotted)
    except ValueError:  # an octet over 255 or with a leading zero
        return False
    if not address.is_global or address.is_multicast or _VERSION_BEFORE.search(before):
        return False
    # two single-digit numbers first (`2.6.32.1`, `8.2.4.44`, `1.2.3.4`): a version or section number, or one of the
    # few public resolvers (`1.1.1.1`, `8.8.8.8`, `9.9.9.9`), not a person's address (0.16 % of the address space)
    return not (dotted[1] == "." and dotted[3] == ".")


def ipv6_length(text: str) -> int:
    """Length of the global unicast IPv6 address ``text`` starts with (one or two colons that end the sentence
    left out), or 0."""
    for cut in (0, 1, 2):
        if cut and text[len(text) - cut :] != ":" * cut:
            break
        candidate = text[: len(text) - cut]
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        return len(candidate) if address.is_global and address in _GLOBAL_UNICAST else 0
    return 0


# the reserved documentation names (RFC 2606, RFC 6761): nobody's address
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})
# what follows the @ of an asset name (`icon@2x.png`, `logo@3x.webp`) is a file extension, not a top-level domain
_FILE_EXTENSIONS = frozenset(
    "png jpg jpeg gif svg webp bmp ico tif tiff avif heic js mjs css scss html htm php json xml txt pdf md csv "
    "mp3 mp4 mov wav ttf otf woff woff2 zip gz".split()
)
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _latin_letter(c: str) -> bool:
    """A letter of the Latin-1 and Latin Extended blocks (`é`, `ő`): part of an internationalized local part
    (`főo@bar.com`), where stopping at it would leave half the address."""
    return "\u00c0" <= c <= "\u024f" and c.isalpha()


def email_start(text: str, at: int, floor: int) -> int | None:
    """Where the local part of the address whose ``@`` is at ``at`` starts (at most 64 characters, not before
    ``floor``), or None when there is none."""
    start = at
    while start > max(floor, at - 64) and (text[start - 1] in _LOCAL_CHARS or _latin_letter(text[start - 1])):
        start -= 1
    while start < at and text[start] == ".":
        start += 1
    if start == at or text[at - 1] == "." or ".." in text[start:at]:
        return None
    return start


def email_domain_ok(domain: str) -> bool:
    domain = domain.lower()
    tld = domain.rsplit(".", 1)[-1]
    if tld in _RESERVED_TLDS or tld in _FILE_EXTENSIONS:
        return False
    return not any(domain == d or domain.endswith("." + d) for d in _RESERVED_DOMAINS)


def find_pii(text: str, kinds: frozenset[str] | set[str] | None = None) -> list[tuple[int, int, str]]:
    """Every identifier of ``kinds`` (default: all) in ``text``: ``(start, end, kind)`` in text order."""
    kinds = frozenset(KINDS if kinds is None else kinds)
    found: list[tuple[int, int, str]] = []
    last = 0
    for m in candidate_pattern(kinds).finditer(text):
        shape = m.lastgroup
        start, end = m.span()
        kind = None
        if shape == "email":
            local = email_start(text, start, last)
            if local is not None and email_domain_ok(m.group("domain")):
                kind, start = "email", local
        elif shape == "ip4":
            kind = "ip" if ipv4_valid(m.group(), text[max(0, start - 12) : start]) else None
        elif shape == "ip6":
            length = ipv6_length(m.group())
            kind, end = ("ip", start + length) if length else (None, end)
        elif shape in _TW_SHAPES:
            start -= _TW_SHAPES[shape][0]
            kind = taiwan_id_kind(text[start:end])
        elif shape == "intl":
            kind = "phone" if international_phone_valid(m.group()) else None
        elif _ISBN_BEFORE.search(text, max(0, start - 10), start):
            kind = None  # an ISBN-10 can look like a Taiwan landline
        else:
            digits = ascii_digits(m.group())
            if shape == "national":
                kind = "phone" if national_phone_valid(digits) else None
            elif shape == "card":
                kind = "card" if card_valid(digits) else None
            elif shape == "th_id":
                kind = "th_id" if thai_id_valid(digits) else None
            elif len(digits) <= 10:  # a contiguous run
                kind = "phone" if national_phone_valid(digits) else None
            elif len(digits) == 13:
                kind = "th_id" if thai_id_valid(digits) else None
            else:
                kind = "card" if card_valid(digits) else None
        if kind is not None and kind in kinds:
            found.append((start, end, kind))
            last = end
    return found


# ------------------------------------------------------------------------------------------------ the step
class PIIParams(StrictModel):
    """Personal identifiers replaced by a placeholder (`<EMAIL>`, `<PHONE>`, `<ID>`, …) or the document dropped:
    e-mail addresses, global IPv4 and IPv6 addresses, phone numbers of Taiwan and Thailand and `+<country code> …`,
    Taiwan's national ID and resident certificate, Thailand's citizen ID, payment card numbers. Check digits (IDs,
    Luhn), number plans and address ranges are verified, so versions (`1.2.3.4`, `2.6.32.1`), dates, prices, ISBNs,
    order numbers and code are left alone, and so are private and documentation addresses (`192.168.1.1`,
    `you@example.com`). Full-width and Thai digits count. One regular-expression pass per document; the identifiers
    found, per kind, are the funnel row's `counts` in the manifest. Formats, and what is left alone and why: the
    `corpusforge.steps.pii` docstring; recall and false positives measured on real text: docs/benchmarks.md."""

    action: Literal["replace", "drop"] = Field(
        "replace",
        description="`replace`: each identifier becomes its kind's placeholder. `drop`: a document with any "
        "identifier is dropped, reason `pii_<kind>` (the kind of its first identifier).",
    )
    kinds: list[Kind] = Field(
        list(KINDS),
        min_length=1,
        description="Kinds to look for: `email`, `ip` (global IPv4/IPv6), `phone` (Taiwan, Thailand, `+<country>…`), "
        "`tw_id` (national ID), `tw_arc` (resident certificate, new and old format), `th_id` (13-digit citizen ID), "
        "`card` (Luhn and issuer prefix). `[email, ip]` is FineWeb-2's choice.",
    )
    placeholders: dict[Kind, str] = Field(
        dict(DEFAULT_PLACEHOLDERS),
        description="Replacement per kind (the kinds not named keep their default); fixed tags rather than fake "
        "values: a tag never reads as a real identifier.",
    )

    @field_validator("kinds")
    @classmethod
    def _once_each(cls, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))

    @field_validator("placeholders")
    @classmethod
    def _fill_defaults(cls, placeholders: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_PLACEHOLDERS, **placeholders}


class PII(PipelineStep):
    type = "✂️ - MAP"
    name = "pii"

    def __init__(self, params: PIIParams):
        super().__init__()
        self.params = params
        self.kinds = frozenset(params.kinds)

    def redact(self, text: str) -> tuple[str, list[tuple[int, int, str]]]:
        found = find_pii(text, self.kinds)
        if not found:
            return text, found
        parts, pos = [], 0
        for start, end, kind in found:
            parts += [text[pos:start], self.params.placeholders[kind]]
            pos = end
        parts.append(text[pos:])
        return "".join(parts), found

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        drop = self.params.action == "drop"
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                if drop:
                    found = find_pii(doc.text, self.kinds)
                else:
                    doc.text, found = self.redact(doc.text)
            if found:
                self.stat_update("count_docs_with_pii")
                counts: dict[str, int] = {}
                for _, _, kind in found:
                    counts[kind] = counts.get(kind, 0) + 1
                for kind, n in counts.items():
                    self.stat_update(f"count_{kind}", value=n)
                if drop:
                    self.stat_update("dropped", f"dropped_pii_{found[0][2]}")
                    continue
            self.stat_update("forwarded")
            yield doc
