"""Per-language words and marks, as the `quality` rules read them: stop words, boilerplate phrases, the marks that
end a sentence, the quotes and brackets that may close one, bullets and ellipses."""

STOP_WORDS = {
    # Gopher's list (Rae et al. 2021, appendix A1).
    "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
    # Function characters and words, both scripts; matched as substrings (no word boundaries in Chinese).
    "zh": "的 了 是 在 和 有 不 也 就 都 這 这 們 们 個 个 與 与 及 而 被 將 将 之 於 于 為 为 或 其 會 会 以 可以 如果".split(),
    # Particles and common auxiliaries.
    "ja": "の に は を が で と も た です ます する ない いる から こと".split(),
    # Function words: that/which, and, in, (nominalizer), be, of, have, can, give, not, will, that (quote), with, …
    "th": "ที่ และ ใน การ เป็น ของ มี ได้ ให้ ไม่ จะ ว่า กับ นี้ แล้ว จาก โดย หรือ ซึ่ง อยู่ ก็ ต้อง คือ ถ้า".split(),
}

# Lines containing one of these (case-insensitive; a space also matches no space) are boilerplate: cookie and policy
# banners, "enable JavaScript" notices, copyright footers. The English ones apply to every language: they show up
# untranslated on pages in any language. "lorem ipsum" anywhere drops the document.
BOILERPLATE = {
    "common": [
        "enable javascript",
        "javascript is disabled",
        "javascript is required",
        "requires javascript",
        "javascript must be enabled",
        "terms of use",
        "terms of service",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
        "accept cookies",
        "cookie settings",
        "all rights reserved",
    ],
    "zh": [
        "啟用 javascript",
        "启用 javascript",
        "開啟 javascript",
        "开启 javascript",
        "javascript 已停用",
        "javascript 已禁用",
        "使用 cookie",
        "接受 cookie",
        "cookie 政策",
        "隱私權政策",
        "隱私權條款",
        "隱私政策",
        "隐私政策",
        "隐私权政策",
        "使用條款",
        "使用条款",
        "服務條款",
        "服务条款",
        "版權所有",
        "版权所有",
    ],
    "ja": [
        "javascript を有効",
        "javascript が無効",
        "cookie を使用",
        "クッキーを使用",
        "プライバシーポリシー",
        "利用規約",
        "無断転載",
    ],
    "th": [
        "เปิดใช้งาน javascript",
        "เปิด javascript",
        "ใช้คุกกี้",
        "นโยบายคุกกี้",
        "นโยบายความเป็นส่วนตัว",
        "ข้อกำหนดการใช้งาน",
        "เงื่อนไขการใช้งาน",
        "สงวนลิขสิทธิ์",
    ],
    "ko": ["javascript를 활성화", "쿠키를 사용", "개인정보 처리방침", "개인정보처리방침", "이용약관", "무단 전재"],
}

# Marks that end a sentence in most scripts: Latin, CJK full-width, Devanagari danda, Arabic, Armenian, Ethiopic,
# Khmer, Myanmar, Tibetan, Thai angkhankhu / khomut and paiyannoi.
SENTENCE_END = ".!?。！？…｡؟۔।॥։።។။།๚๛ฯ"
# closing quotes and brackets, which may follow the mark that ends a sentence
CLOSERS = "\"'”’」』）)]】》〉»›"
# marks that open a list item
BULLETS = ("•", "-", "*", "·", "‧", "・", "●", "○", "◦", "▪", "■", "□", "►", "▶", "➢", "➤", "→", "–", "—", "◆", "◇")
# a line ending in one was cut short
ELLIPSES = ("...", "…", "⋯")
