"""One view over the tokenizers the diagnostics accept: an HF tokenizer (local folder or Hub id), a raw SentencePiece
``.model`` file, or a mistral-common tekken ``.json``.

Each view encodes batches without special tokens and classifies every id once — normal, byte (a SentencePiece
``<0xNN>`` fallback piece, or a byte-level BPE token that is not whole UTF-8 characters), unknown, special — so the
per-document work is one ``numpy.bincount``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np

from corpusforge.errors import SourceError

NORMAL, BYTES, UNK, SPECIAL = 0, 1, 2, 3
N_KINDS = 4
_SP_BYTE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


@cache
def byte_level_decoder() -> dict[str, int]:
    """GPT-2's byte ↔ printable-character table, inverted: the alphabet of byte-level BPE tokens."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def is_whole_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _missing(package: str, extra: str = "vocab") -> ImportError:
    return ImportError(f"this needs `{package}`: pip install 'corpusforge[{extra}]'")


class TokenizerView:
    name: str
    kinds: np.ndarray  # one of NORMAL, BYTES, UNK, SPECIAL per id
    byte_level: bool = False

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.kinds)


class HFView(TokenizerView):
    def __init__(self, tokenizer, name: str):
        self.tokenizer = tokenizer
        self.name = name
        self.byte_level = uses_byte_level(tokenizer)
        self.kinds = self._classify()

    def _classify(self) -> np.ndarray:
        tok = self.tokenizer
        kinds = np.zeros(len(tok), dtype=np.int8)
        decoder = byte_level_decoder() if self.byte_level else None
        for i, piece in enumerate(tok.convert_ids_to_tokens(list(range(len(tok))))):
            if piece is None:
                continue
            if decoder is None:
                kinds[i] = BYTES if _SP_BYTE.match(piece) else NORMAL
            elif all(c in decoder for c in piece):
                kinds[i] = NORMAL if is_whole_utf8(bytes(decoder[c] for c in piece)) else BYTES
        kinds[[i for i in tok.all_special_ids if i < len(kinds)]] = SPECIAL
        if tok.unk_token_id is not None and tok.unk_token_id < len(kinds):
            kinds[tok.unk_token_id] = UNK
        return kinds

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]


def uses_byte_level(tokenizer) -> bool:
    """Whether a fast tokenizer is a byte-level BPE (GPT-2 / Llama-3 style) rather than SentencePiece-like."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    spec = json.loads(backend.to_str())

    def has_byte_level(node) -> bool:
        if not isinstance(node, dict):
            return False
        return node.get("type") == "ByteLevel" or any(has_byte_level(n) for n in node.get("decoders") or [])

    return (
        has_byte_level(spec.get("decoder"))
        or has_byte_level(spec.get("pre_tokenizer") or {})
        or any(has_byte_level(n) for n in (spec.get("pre_tokenizer") or {}).get("pretokenizers") or [])
    )


class SentencePieceView(TokenizerView):
    def __init__(self, path: Path):
        try:
            import sentencepiece as spm
        except ImportError as err:
            raise _missing("sentencepiece") from err
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(str(path))
        except (OSError, RuntimeError) as err:
            raise SourceError(f"tokenizer '{path}' is not a SentencePiece model: {err}") from err
        self.name = str(path)
        sp = self.sp
        self.kinds = np.array(
            [
                BYTES
                if sp.IsByte(i)
                else UNK
                if sp.IsUnknown(i)
                else SPECIAL
                if sp.IsControl(i) or sp.IsUnused(i)
                else NORMAL
                for i in range(sp.GetPieceSize())
            ],
            dtype=np.int8,
        )

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)


class TekkenView(TokenizerView):
    byte_level = True

    def __init__(self, path: Path):
        try:
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer
        except ImportError as err:
            raise ImportError("tekken tokenizer files need `mistral-common`: pip install mistral-common") from err
        self.tekken = Tekkenizer.from_file(path)
        self.name = str(path)
        n_special = self.tekken.num_special_tokens
        kinds = np.zeros(self.tekken.n_words, dtype=np.int8)
        kinds[:n_special] = SPECIAL
        for i in range(n_special, len(kinds)):
            if not is_whole_utf8(self.tekken.id_to_byte_piece(i)):
                kinds[i] = BYTES
        kinds[self.tekken.unk_id] = UNK
        self.kinds = kinds

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.tekken.encode(t, bos=False, eos=False) for t in texts]


def is_sentencepiece_file(path: Path) -> bool:
    """``tokenizer.model`` and mistral-common's ``tokenizer.model.v3``-style names."""
    return path.suffix == ".model" or ".model." in path.name


def auto_tokenizer(spec: str):
    """``AutoTokenizer.from_pretrained(spec)``: a local folder, or a Hub id when online."""
    try:
        from transformers import AutoTokenizer
    except ImportError as err:
        raise _missing("transformers") from err
    try:
        return AutoTokenizer.from_pretrained(spec)
    except (OSError, ValueError) as err:
        raise SourceError(
            f"--tokenizer '{spec}': AutoTokenizer cannot load it ({str(err).splitlines()[0]}); pass a folder with "
            "tokenizer.json / tokenizer.model, a Hub id (online), a SentencePiece .model file or a tekken .json"
        ) from err


def tokenizer_view(spec: str | Path) -> TokenizerView:
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix == ".json":
            return TekkenView(path)
        if is_sentencepiece_file(path):
            return SentencePieceView(path)
        raise SourceError(
            f"--tokenizer '{spec}' is a file but neither a SentencePiece .model nor a tekken .json; "
            "pass the tokenizer's folder to load it with AutoTokenizer"
        )
    if not path.exists() and (str(spec).startswith(("/", ".", "~")) or str(spec).count("/") > 1):
        raise SourceError(f"--tokenizer '{spec}' does not exist (cwd={Path.cwd()})")
    return HFView(auto_tokenizer(str(spec)), str(spec))
