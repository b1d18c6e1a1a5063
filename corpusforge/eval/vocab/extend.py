"""Vocabulary extension: learn target-language pieces, append them to a BPE tokenizer, keep every existing id.

Two kinds of base tokenizer are handled, each the way its own family grows:

- SentencePiece-style BPE (Llama-2, Mistral v1-v3: ``▁`` word marker, ``<0xNN>`` byte fallback). A SentencePiece
  BPE model is trained on the target text; its new pieces are appended to ``tokenizer.json`` (vocab + merges) and,
  when the base has one, to the ``tokenizer.model`` ModelProto with scores below every existing piece — the
  Chinese-LLaMA recipe, except that the scores keep the new pieces' learned order instead of a flat 0.
- Byte-level BPE (GPT-2, Llama-3): a `tokenizers` BPE with the base's normalizer and pre-tokenizer is trained on
  the target text and its new tokens are appended the same way.

New merges rank after every existing merge, and only pieces holding a character of a non-Latin script are taken:
a merge can only fire on text that contains one of its pieces' characters, so English text keeps its exact ids.
The trainer (``corpusforge_trainer.model.init_new_embeddings``) grows a model to the extended tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import regex

from corpusforge.corpus.layout import WORK_DIR
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import CorpusforgeError, OutputError, SourceError
from corpusforge.eval.documents import DEFAULT_MAX_DOCS, Doc, iter_docs, lid_identifier
from corpusforge.eval.vocab.fertility import FertilityReport, measure_fertility
from corpusforge.eval.vocab.tokenizer import (
    HFView,
    auto_tokenizer,
    byte_level_decoder,
    is_sentencepiece_file,
    is_whole_utf8,
    uses_byte_level,
)

log = logging.getLogger("corpusforge.eval")

REPORT_NAME = "vocab_extension.json"
ENGLISH = "en"
# SentencePiece skips sentences longer than max_sentence_length (4,192 bytes by default): chop long lines so that
# even 4-byte characters fit.
MAX_LINE_CHARS = 1000
MAX_HELDOUT_DOCS = 20_000  # the before/after fertility sample; kept in memory
_NON_LATIN = regex.compile(r"[^\p{Latin}\p{Common}\p{Inherited}]")
_LATIN_LETTER = regex.compile(r"\p{Latin}")


@dataclass
class Extension:
    output: Path
    base: str
    method: str
    base_size: int
    requested: int
    added: list[str]
    before: FertilityReport
    after: FertilityReport
    train_docs: int
    heldout_docs: int
    notes: list[str] = field(default_factory=list)

    @property
    def extended_size(self) -> int:
        return self.base_size + len(self.added)

    def to_dict(self) -> dict:
        return {
            "base": self.base,
            "method": self.method,
            "base_size": self.base_size,
            "extended_size": self.extended_size,
            "requested": self.requested,
            "added": len(self.added),
            "first_new_id": self.base_size,
            "train_docs": self.train_docs,
            "heldout_docs": self.heldout_docs,
            "fertility_measured_on": "held-out documents (not used for training)",
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "token_reduction": {
                lang: round(b.tokens / a.tokens, 4)
                for lang, b in self.before.languages.items()
                if (a := self.after.languages.get(lang)) and a.tokens
            },
            "notes": self.notes,
            "added_pieces": self.added,
        }


# -- base tokenizer -------------------------------------------------------------------------------------------------
def load_base(spec: str) -> tuple[object, bytes | None, str]:
    """The base as a fast HF tokenizer, its SentencePiece ModelProto bytes when it has one, and a display name.

    A raw SentencePiece file (``tokenizer.model``, mistral-common's ``tokenizer.model.v3``) becomes a Llama-style
    fast tokenizer, the conversion transformers applies to Llama-2 and Mistral checkpoints; a tekken ``.json``
    becomes the byte-level fast tokenizer transformers builds for Mistral NeMo-style checkpoints.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            from transformers import LlamaTokenizer
        except ImportError as err:
            raise ImportError("this needs `transformers`: pip install 'corpusforge[vocab]'") from err
        if path.suffix == ".json":
            from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

            return convert_tekken_tokenizer(str(path)), None, str(path)
        if not is_sentencepiece_file(path):
            raise SourceError(
                f"--tokenizer '{spec}': extension needs an HF tokenizer folder, a SentencePiece .model file "
                "or a mistral-common tekken .json"
            )
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(path, Path(tmp) / "tokenizer.model")
            # Llama-2 and Mistral prepend <s>; transformers' conversion of a bare .model would not.
            tokenizer = LlamaTokenizer.from_pretrained(tmp, add_bos_token=True)
        return tokenizer, path.read_bytes(), str(path)
    tokenizer = auto_tokenizer(spec)
    sp_file = path / "tokenizer.model"
    return tokenizer, sp_file.read_bytes() if path.is_dir() and sp_file.is_file() else None, spec


def _tokenizer_spec(tokenizer) -> dict:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise SourceError(
            f"{type(tokenizer).__name__} has no fast (tokenizers) backend; extension edits tokenizer.json — "
            "pass a folder with tokenizer.json, or a SentencePiece .model file"
        )
    spec = json.loads(backend.to_str())
    if spec["model"]["type"] != "BPE":
        raise SourceError(
            f"the base tokenizer is a {spec['model']['type']} model; extension supports BPE tokenizers "
            "(SentencePiece BPE like Llama-2 / Mistral, byte-level BPE like GPT-2 / Llama-3)"
        )
    return spec


# -- corpus -----------------------------------------------------------------------------------------------------
def is_heldout(text: str, fraction: float) -> bool:
    """A stable, content-based split: the same document is held out on every run and machine."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


def training_lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.strip()
        yield from (line[i : i + MAX_LINE_CHARS] for i in range(0, len(line), MAX_LINE_CHARS))


def split_corpus(docs: Iterable[Doc], heldout: float, is_target, train_file: Path) -> tuple[int, list[Doc]]:
    """Write the target training documents to ``train_file`` (a line per line) and return their count and the
    held-out documents (every language, at most ``MAX_HELDOUT_DOCS``)."""
    n_train, evaluation = 0, []
    with train_file.open("w", encoding="utf-8") as f:
        for doc in docs:
            if is_heldout(doc.text, heldout):
                if len(evaluation) < MAX_HELDOUT_DOCS:
                    evaluation.append(doc)
            elif is_target(doc):
                n_train += 1
                for line in training_lines(doc.text):
                    f.write(line + "\n")
    return n_train, evaluation


# -- training ---------------------------------------------------------------------------------------------------
def train_sentencepiece_pieces(train_file: Path, vocab_size: int, add_dummy_prefix: bool) -> list[str]:
    """Normal pieces of a SentencePiece BPE model trained on ``train_file``, in learned (score) order."""
    try:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as err:
        raise ImportError("this needs `sentencepiece`: pip install 'corpusforge[vocab]'") from err
    import io

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(train_file),
        model_writer=buffer,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small corpus yields fewer pieces instead of an error
        character_coverage=0.9999,
        byte_fallback=False,
        split_digits=True,
        add_dummy_prefix=add_dummy_prefix,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        allow_whitespace_only_pieces=True,
        num_threads=2,
        input_sentence_size=2_000_000,  # a uniform sample of the lines beyond that: bounded memory
        shuffle_input_sentence=True,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    normal = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    return [p.piece for p in proto.pieces if p.type == normal]


def train_byte_level_tokens(train_file: Path, spec: dict, vocab_size: int) -> list[str]:
    """Tokens a byte-level BPE with the base's normalizer and pre-tokenizer learns on ``train_file``, in merge
    order."""
    from tokenizers import Tokenizer, pre_tokenizers, trainers

    fresh = {**spec, "added_tokens": [], "post_processor": None}
    fresh["model"] = {"type": "BPE", "vocab": {}, "merges": []}
    tokenizer = Tokenizer.from_str(json.dumps(fresh))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + 256, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train([str(train_file)], trainer)
    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [a + b for a, b in (m.split(" ", 1) if isinstance(m, str) else m for m in merges)]


# -- selection and merging --------------------------------------------------------------------------------------
def eligible_sentencepiece(piece: str) -> bool:
    return _NON_LATIN.search(piece) is not None


def eligible_byte_level(token: str) -> bool:
    decoder = byte_level_decoder()
    if not all(c in decoder for c in token):
        return False
    data = bytes(decoder[c] for c in token)
    text = data.decode("utf-8", errors="ignore")
    if _LATIN_LETTER.search(text):
        return False
    if _NON_LATIN.search(text):
        return True
    # A partial character: take it when it can only belong to a character at U+0800 or above (CJK, Thai, ...).
    return not is_whole_utf8(data) and any(b >= 0xE0 or 0x80 <= b < 0xC0 for b in data)


def merges_for(pieces: list[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """Every split of each new piece into two known pieces, pieces in priority order.

    All splits, not just the one the trainer used: the base's merges run first and may cut the text differently,
    and any pair of known halves should still reach the new piece (this is how transformers converts a
    SentencePiece BPE, where any adjacent pair whose concatenation is in the vocabulary can merge).
    """
    out = []
    for piece in pieces:
        splits = [(piece[:i], piece[i:]) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
        out.extend(sorted(splits, key=lambda s: (-len(s[0]), -len(s[1]))))
    return out


def extend_spec(spec: dict, pieces: list[str], first_id: int) -> dict:
    """A copy of a tokenizer.json dict with ``pieces`` at ids ``first_id, first_id + 1, …`` and their merges."""
    model = dict(spec["model"])
    vocab = dict(model["vocab"])
    taken = max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens") or [])], default=-1)
    if taken >= first_id:
        raise CorpusforgeError(f"the base tokenizer uses id {taken}, at or above the first new id {first_id}")
    for i, piece in enumerate(pieces):
        vocab[piece] = first_id + i
    merges = merges_for(pieces, vocab)
    old = model["merges"]
    as_strings = bool(old) and isinstance(old[0], str)
    model["merges"] = old + [f"{a} {b}" if as_strings else [a, b] for a, b in merges]
    model["vocab"] = vocab
    return {**spec, "model": model}


def extend_sentencepiece_proto(proto_bytes: bytes, pieces: list[str]) -> bytes:
    """The ModelProto with ``pieces`` appended as NORMAL pieces, scored below every existing piece in their order."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(proto_bytes)
    # Scores are float32 and some bases park pieces at -1e9, where float32 steps by 64: step one representable
    # value at a time so every new piece gets its own score, below all existing ones, in learned order.
    score = np.float32(min((p.score for p in proto.pieces), default=0.0))
    for piece in pieces:
        score = np.nextafter(score, np.float32(-np.inf))
        new = proto.pieces.add()
        new.piece, new.score, new.type = piece, float(score), sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    return proto.SerializeToString()


def _add_dummy_prefix(proto_bytes: bytes | None, spec: dict) -> bool:
    if proto_bytes is not None:
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(proto_bytes)
        return proto.normalizer_spec.add_dummy_prefix
    pre = spec.get("pre_tokenizer") or {}
    return pre.get("prepend_scheme", "always") != "never"


def _check_output(output: Path, tokenizer: str, overwrite: bool) -> None:
    if output.resolve() == Path(tokenizer).expanduser().resolve():
        raise OutputError(f"--output '{output}' is the base tokenizer's folder; write the extension elsewhere")
    if output.exists() and not output.is_dir():
        raise OutputError(f"--output '{output}' is a file, not a folder")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise OutputError(f"--output '{output}' exists and is not empty; pass --overwrite to replace it")
        foreign = Ledger(output).unrecorded()
        if foreign:
            raise OutputError(
                f"--output '{output}' holds files corpusforge did not write ({', '.join(foreign[:5])}); nothing was "
                "changed. --overwrite removes only what an earlier `vocab extend` wrote there"
            )


def _prepare_output(output: Path) -> Ledger:
    """The output folder emptied of what an earlier extension wrote (``_check_output`` refused anything else)."""
    ledger = Ledger(output)
    ledger.remove(lambda rel: True)
    output.mkdir(parents=True, exist_ok=True)
    return ledger


def extend_tokenizer(
    tokenizer: str,
    corpus: list[str | Path],
    add: int,
    output: str | Path,
    *,
    languages: list[str] | None = None,
    language: str | None = None,
    max_docs: int | None = DEFAULT_MAX_DOCS,
    heldout: float = 0.1,
    text_field: str = "text",
    lid: bool = False,
    overwrite: bool = False,
) -> Extension:
    """Train up to ``add`` new pieces on the corpus's target documents and save the extended tokenizer.

    Target documents are those whose language is in ``languages`` (default: every language but English; documents
    without a language count as target). A stable ``heldout`` fraction of all documents is kept out of training
    and used for the before/after fertility. ``lid=True`` identifies unlabelled documents with fastText.
    """
    if add < 1:
        raise CorpusforgeError(f"--add must be a positive number of pieces, got {add}")
    if not 0.0 <= heldout < 1.0:
        raise CorpusforgeError(f"--heldout must be in [0, 1), got {heldout}")
    output = Path(output).expanduser()
    _check_output(output, tokenizer, overwrite)
    base, proto_bytes, base_name = load_base(tokenizer)
    spec = _tokenizer_spec(base)
    byte_level = uses_byte_level(base)

    def is_target(doc: Doc) -> bool:
        if doc.language is None:
            return True
        return doc.language in languages if languages else doc.language != ENGLISH

    identify = lid_identifier() if lid and language is None else None
    docs = iter_docs(corpus, max_docs, language=language, text_field=text_field, identify=identify)
    # Margin: many learned pieces already exist in the base (characters, common words) or are Latin-only.
    train_size = int(add * 1.25) + 500
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        n_train, evaluation = split_corpus(docs, heldout, is_target, train_file)
        if not n_train:
            wanted = f"in {languages}" if languages else "other than English"
            raise SourceError(f"no training document with a language {wanted} in {[str(c) for c in corpus]}")
        log.info("training %d pieces on %d documents (%d held out)", train_size, n_train, len(evaluation))
        if byte_level:
            method, eligible = "byte-level-bpe", eligible_byte_level
            learned = train_byte_level_tokens(train_file, spec, train_size)
        else:
            method, eligible = "sentencepiece-bpe", eligible_sentencepiece
            learned = train_sentencepiece_pieces(train_file, train_size, _add_dummy_prefix(proto_bytes, spec))
    known = set(base.get_vocab())
    pieces = [p for p in dict.fromkeys(learned) if p not in known and eligible(p)][:add]
    notes = []
    if len(pieces) < add:
        notes.append(f"asked for {add} pieces, the corpus yielded {len(pieces)} new eligible ones")

    base_size = len(base)
    ledger = _prepare_output(output)
    saved = output / WORK_DIR / "save"  # transformers writes its files here; each is recorded, then moved in
    ledger.record_folder(saved)
    base.save_pretrained(saved)
    for path in sorted(saved.iterdir()):
        ledger.record(output / path.name)
        os.replace(path, output / path.name)
    ledger.remove(lambda rel: rel.startswith(f"{WORK_DIR}/save"))
    ledger.write(output / "tokenizer.json", json.dumps(extend_spec(spec, pieces, base_size), ensure_ascii=False))
    if proto_bytes is not None and not byte_level:
        n_proto = _proto_size(proto_bytes)
        if n_proto == base_size:
            ledger.write(output / "tokenizer.model", extend_sentencepiece_proto(proto_bytes, pieces))
        else:
            notes.append(
                f"tokenizer.model not written: it holds {n_proto} pieces but the tokenizer has {base_size} ids, "
                "so appended SentencePiece ids would not match the fast tokenizer's"
            )

    extended = auto_tokenizer(str(output))
    _check_ids_kept(base, extended, len(pieces), output)
    before = measure_fertility(HFView(base, base_name), evaluation)
    after = measure_fertility(HFView(extended, str(output)), evaluation)
    result = Extension(
        output, base_name, method, base_size, add, pieces, before, after, n_train, len(evaluation), notes
    )
    ledger.write(output / REPORT_NAME, json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    return result


def _proto_size(proto_bytes: bytes) -> int:
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(proto_bytes)
    return len(proto.pieces)


def _check_ids_kept(base, extended, n_added: int, output: Path) -> None:
    old, new = base.get_vocab(), extended.get_vocab()
    moved = [t for t, i in old.items() if new.get(t) != i]
    if moved or len(extended) != len(base) + n_added:
        raise CorpusforgeError(
            f"{output}: the extended tokenizer does not keep the base ids ({len(moved)} moved, e.g. {moved[:3]}; "
            f"size {len(extended)}, expected {len(base) + n_added}) — please report this with the base tokenizer"
        )


# -- model ------------------------------------------------------------------------------------------------------
