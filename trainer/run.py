"""One training run: config → TrainingArguments → packed data → model (+ vocabulary extension, LoRA) → Trainer.

transformers' ``Trainer`` runs the loop, so ``accelerate launch`` / ``torchrun`` (DDP, DeepSpeed, FSDP) work
unchanged: the launcher's environment reaches ``TrainingArguments``. Writes into ``train.output_dir``:
``data_stats.json`` (the packing plan), ``corpusforge_train.json`` (the resolved config, what ``merge`` needs),
checkpoints, the final adapter or model with its tokenizer, and ``train_stats.json`` (tokens, real-token share,
tokens/s). ``mode: dpo`` trains on preference pairs with ``PackedPairs``, ``PairCollator`` and the DPO trainer
(``dpo.py``); with a precomputed reference its log-probabilities are cached in ``reference_logps/``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from corpusforge_trainer.config import TrainConfig
from corpusforge_trainer.data import DataError, open_shards, tokenize_sources
from corpusforge_trainer.dpo import disable_dropout, dpo_trainer_class, precompute_reference
from corpusforge_trainer.loop import packed_trainer_class
from corpusforge_trainer.model import (
    RUN_INFO,
    ModelError,
    apply_lora,
    init_new_embeddings,
    load_base_model,
    load_tokenizer,
    require,
    trainable_in_float32,
)
from corpusforge_trainer.packing import (
    PackedCollator,
    PackedDataset,
    PackedPairs,
    PairCollator,
    build_plan,
    select_documents,
)

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output_dir: Path
    global_step: int
    data_stats: dict
    train_stats: dict


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_defaults() -> dict:
    import os

    import torch

    defaults = {"dataloader_pin_memory": _has_cuda()}
    if not torch.accelerator.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Launched with several processes on a machine without GPUs: without use_cpu, accelerate would leave each
        # process training alone on the whole data instead of joining a gloo process group.
        defaults["use_cpu"] = True
    return defaults


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    import torch

    if _has_cuda():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def load_dtype(config: TrainConfig, precision: str) -> str:
    if config.model.dtype != "auto":
        return config.model.dtype
    if config.method == "full":
        return "float32"  # master weights; autocast computes in bf16/fp16
    return {"bf16": "bfloat16", "fp16": "float16"}.get(precision, "float32")


def training_arguments(config: TrainConfig, precision: str):
    from transformers import TrainingArguments

    t, o = config.train, config.optim
    try:
        return TrainingArguments(
            output_dir=t.output_dir,
            num_train_epochs=t.epochs,
            max_steps=t.max_steps or -1,
            per_device_train_batch_size=t.batch_size,
            gradient_accumulation_steps=t.grad_accum,
            learning_rate=o.lr,
            optim=o.name,
            weight_decay=o.weight_decay,
            lr_scheduler_type=o.scheduler,
            warmup_steps=int(o.warmup) if o.warmup >= 1 else o.warmup,
            max_grad_norm=o.max_grad_norm,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            gradient_checkpointing=t.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
            logging_steps=t.logging_steps,
            save_strategy="steps",
            save_steps=t.save_steps,
            save_total_limit=t.save_total_limit,
            seed=t.seed,
            report_to=t.report_to,
            remove_unused_columns=False,
            # in a log tqdm's bar is one endless line of carriage returns: plain lines instead
            # (_plain_progress_callback); trainer_args may still say otherwise
            **{**_device_defaults(), "disable_tqdm": not sys.stderr.isatty(), **t.trainer_args},
        )
    except (ValueError, ImportError) as err:
        loc = ("train", "precision") if any(p in str(err) for p in ("bf16", "fp16")) else ("train",)
        raise config.error(loc, f"transformers rejects these training arguments: {err}") from None


def _plain_progress_callback():
    """When stderr is not a terminal (a log, a Slurm job), one line every CORPUSFORGE_PROGRESS_SECONDS from the main
    process: steps done / total, steps/s, the last logged loss, ETA."""
    from transformers import TrainerCallback

    from corpusforge.progress import PlainProgress

    def detail(fields: dict) -> str:
        return f"loss {fields['loss']:.4g}" if fields.get("loss") is not None else ""

    class PlainLines(TrainerCallback):
        display: PlainProgress | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.display = PlainProgress(detail=detail)
                self.task = self.display.add_task("training steps", total=state.max_steps, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.display and logs and "loss" in logs:
                self.display.update(self.task, loss=logs["loss"])

        def on_step_end(self, args, state, control, **kwargs):
            if self.display:
                self.display.update(self.task, completed=state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if self.display:
                self.display.__exit__(None)

    return PlainLines()


def resolve_resume(config: TrainConfig) -> str | None:
    """The checkpoint to resume from, or None; refuses to train over another run's checkpoints by accident."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.train.output_dir)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    resume = config.train.resume
    if resume is False:
        if last:
            raise config.error(
                ("train", "resume"),
                f"{out} already holds {Path(last).name}; set `train.resume: true` to continue that run, or choose "
                "another train.output_dir",
            )
        return None
    if resume is True:
        if last is None:
            logger.info("train.resume: no checkpoint in %s yet, starting from step 0", out)
        return last
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise config.error(("train", "resume"), f"'{path}' is not a checkpoint folder (no trainer_state.json)")
    return str(path)


def prepare_data(config: TrainConfig, tokenizer) -> tuple:
    """Tokenized documents (all sources, concatenated) and the packing plan over them."""
    import numpy as np
    from datasets import concatenate_datasets

    shards = open_shards(config)
    tokenized = tokenize_sources(config, tokenizer, shards)
    tokens = concatenate_datasets(tokenized) if len(tokenized) > 1 else tokenized[0]
    lengths = tokens.data.table.column("length").to_numpy().astype(np.int64)
    docs = select_documents([len(t) for t in tokenized], [s.weight for s in config.data.sources], config.train.seed)
    has_loss = None
    if "sft" in {s.mode or config.mode for s in config.data.sources}:
        masks = tokens.data.table.column("loss_mask")

        def has_loss(doc: int, start: int, end: int) -> bool:
            # The first token of a segment has no label (nothing precedes it in the packed sequence).
            return any(masks[doc].values.to_numpy()[start + 1 : end])

    plan = build_plan(docs, lengths, config.data.seq_len, config.data.packing, config.overlong, has_loss)
    if not len(plan):
        raise DataError(
            f"nothing to train on: {plan.stats['documents']} document(s), {plan.stats['dropped_documents']} dropped "
            f"as longer than data.seq_len={config.data.seq_len} (data.overlong={config.overlong})"
        )
    plan.stats.update(
        mode=config.mode,
        packing=config.data.packing,
        seq_len=config.data.seq_len,
        overlong=config.overlong,
        sources=[{"path": s.path, "rows": len(t), "weight": s.weight} for s, t in zip(config.data.sources, tokenized)],
    )
    return tokens, plan


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_model(config: TrainConfig, tokenizer, dtype: str):
    from transformers import set_seed

    # Before anything random is drawn: the LoRA A matrices and new embedding rows are initialised here, before
    # Trainer seeds itself, so without this two runs of one config trained two different models.
    set_seed(config.train.seed)
    m = config.model
    try:
        model = load_base_model(
            m.path, dtype, m.attn_implementation, revision=m.revision, trust_remote_code=m.trust_remote_code
        )
    except ModelError as err:
        raise config.error(("model", "path"), str(err)) from None
    rows = model.get_input_embeddings().weight.shape[0]
    base_spec = m.base_tokenizer or (m.path if m.tokenizer else None)
    new: list[int] = []
    if base_spec:
        try:
            base = load_tokenizer(base_spec, trust_remote_code=m.trust_remote_code)
            new = init_new_embeddings(model, tokenizer, base)
        except ModelError as err:
            raise config.error(("model", "base_tokenizer" if m.base_tokenizer else "tokenizer"), str(err)) from None
    elif len(tokenizer) > rows:
        raise config.error(
            ("model", "base_tokenizer"),
            f"the tokenizer has {len(tokenizer)} tokens but the model only {rows} embedding rows: set "
            "model.base_tokenizer to the original tokenizer so the new rows can be initialised from its pieces",
        )
    if new and config.method == "lora" and not {"embed_tokens", "lm_head"} & set(config.lora.modules_to_save):
        logger.warning(
            "%d new token(s) but lora.modules_to_save has no embed_tokens/lm_head: their rows stay at the "
            "initial mean and never train",
            len(new),
        )
    model.config.use_cache = False  # no KV cache while training (and gradient checkpointing warns about it)
    if config.method == "lora":
        model = apply_lora(model, config.lora, config.error)
    trainable_in_float32(model)
    vocabulary = {"rows_before": rows, "rows_after": model.get_input_embeddings().weight.shape[0]}
    vocabulary.update(new_tokens=len(new), base_tokenizer=base_spec)
    return model, vocabulary


@dataclass
class RunSetup:
    """What a run prepares before it loads the model: the training arguments (and the distributed state they set
    up), the checkpoint to resume from, the tokenizer, the tokenized documents and the packing plan."""

    args: object
    precision: str
    resume: str | None
    tokenizer: object
    tokens: object
    plan: object


def setup_run(config: TrainConfig) -> RunSetup:
    """Arguments, resume check, tokenizer, data (tokenized and cached, ``data_stats.json`` written)."""
    require("torch", "transformers", "accelerate", *(["peft"] if config.method == "lora" else []))
    precision = resolve_precision(config.train.precision)
    args = training_arguments(config, precision)  # sets up the distributed state the launcher asked for
    resume = resolve_resume(config)
    out = Path(config.train.output_dir)
    m = config.model
    try:
        tokenizer = load_tokenizer(m.tokenizer or m.path, None if m.tokenizer else m.revision, m.trust_remote_code)
    except ModelError as err:
        raise config.error(("model", "tokenizer" if m.tokenizer else "path"), str(err)) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # only `pad` packing pads, and its labels there are -100
    with args.main_process_first(desc="tokenizing shards"):
        tokens, plan = prepare_data(config, tokenizer)
    data_stats = plan.stats
    logger.info(
        "data: %d documents → %d segments → %d rows of ≤ %d tokens (%s), %d tokens, row fill %.1f%%",
        data_stats["documents"],
        data_stats["segments"],
        data_stats["rows"],
        config.data.seq_len,
        config.data.packing,
        data_stats["tokens"],
        100 * data_stats["row_fill"],
    )
    if args.should_save:
        _write_json(out / "data_stats.json", data_stats)
    return RunSetup(args, precision, resume, tokenizer, tokens, plan)


def build_trainer(config: TrainConfig, setup: RunSetup):
    """The model (vocabulary extension, LoRA) and the Trainer over the packed data, ready to ``train()``; a dpo run
    with a precomputed reference has it computed (or read from the run folder) here."""
    args, tokenizer = setup.args, setup.tokenizer
    out = Path(config.train.output_dir)
    dtype = load_dtype(config, setup.precision)
    model, vocabulary = build_model(config, tokenizer, dtype)
    if config.mode == "dpo" and config.dpo.disable_dropout:
        disable_dropout(model)
    if args.should_save:
        exclude = None if config.mode == "dpo" else {"dpo"}
        info = {
            "config": config.model_dump(mode="json", exclude=exclude),
            "dtype": dtype,
            "precision": setup.precision,
        }
        _write_json(out / RUN_INFO, {**info, "vocabulary": vocabulary})
    varlen = "flash" in config.model.attn_implementation
    common = {
        "model": model,
        "args": args,
        "processing_class": tokenizer,
        "callbacks": None if sys.stderr.isatty() else [_plain_progress_callback()],
    }
    if config.mode != "dpo":
        return packed_trainer_class()(
            train_dataset=PackedDataset(setup.tokens, setup.plan),
            data_collator=PackedCollator(config.data.packing, tokenizer.pad_token_id, varlen=varlen),
            **common,
        )
    pairs = PackedPairs(setup.tokens, setup.plan)
    trainer = dpo_trainer_class()(
        train_dataset=pairs,
        data_collator=PairCollator(config.data.packing, tokenizer.pad_token_id, varlen=varlen),
        dpo=config.dpo,
        reference=config.reference,
        **common,
    )
    if config.reference == "precomputed":
        pairs.reference = precompute_reference(trainer, config, setup.tokens, config.train.batch_size)
    return trainer


def train(config: TrainConfig, prepare_only: bool = False) -> TrainResult:
    """Train as the config says; with ``prepare_only``, tokenize and plan the data (fills the cache) and stop."""
    setup = setup_run(config)
    out, args = Path(config.train.output_dir), setup.args
    data_stats = dict(setup.plan.stats)
    if prepare_only:
        return TrainResult(out, 0, data_stats, {})
    trainer = build_trainer(config, setup)
    result = trainer.train(resume_from_checkpoint=setup.resume)
    trainer.save_model(str(out))
    totals = trainer.token_totals()
    runtime = result.metrics.get("train_runtime") or 0.0
    train_stats = {
        **totals,
        "global_step": trainer.state.global_step,
        "resumed_from": setup.resume,
        "train_runtime": runtime,
        "tokens_per_second": totals["real_tokens"] / runtime if runtime else None,
        "train_loss": result.metrics.get("train_loss"),
        "precision": setup.precision,
        "world_size": args.world_size,
    }
    if args.should_save:
        _write_json(out / "train_stats.json", train_stats)
    return TrainResult(out, trainer.state.global_step, data_stats, train_stats)
