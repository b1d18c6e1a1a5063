"""The training config: pydantic models loaded from YAML, with errors that name the key path and the YAML line.

```yaml
mode: cp                      # cp: InsCP / plain corpus shards (text); sft: KD shards (messages); dpo: preference pairs
method: lora                  # lora | full
model: {path: meta-llama/Meta-Llama-3-8B-Instruct}
data:
  sources: [{path: out/inscp-zh-tw, weight: 1.0}]
  seq_len: 2048
lora: {r: 16, alpha: 32, modules_to_save: [embed_tokens, lm_head]}
optim: {lr: 2.0e-4, scheduler: cosine, warmup: 0.03}
train: {output_dir: runs/inscp-zh-tw, epochs: 1, batch_size: 4, precision: bf16}
```

Relative paths are resolved against the working directory, as in recipes.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from corpusforge.config import StrictModel
from corpusforge.config.overrides import apply_overrides
from corpusforge.config.problems import lines_for, model_keys, pydantic_problems
from corpusforge.config.yaml import read_yaml
from corpusforge.errors import RecipeError, did_you_mean


class ConfigError(RecipeError):
    """Problems in a training config, each tied to a key path like ``data.sources[0].path``."""


class ModelConfig(StrictModel):
    path: str = Field(..., description="Local model folder or Hub model id.")
    tokenizer: str | None = Field(
        None,
        description="Tokenizer folder or Hub id (default: `path`). A tokenizer with tokens the model has no "
        "embedding row for (vocabulary extension) makes the trainer resize the embeddings.",
    )
    base_tokenizer: str | None = Field(
        None,
        description="The model's original tokenizer, used to initialise each new embedding row as the mean of the "
        "pieces it splits the new token into (default: the tokenizer in `path`).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weights dtype on load. `auto`: float32 for full fine-tuning (master weights for mixed "
        "precision), the training precision for LoRA (the frozen base needs no float32 copy).",
    )
    attn_implementation: str = Field(
        "sdpa", description="`sdpa`, `flash_attention_2`, `flash_attention_3`, `eager`, ... (transformers names)."
    )
    revision: str | None = None
    trust_remote_code: bool = False


class SourceConfig(StrictModel):
    path: str = Field(..., description="A shard folder written by `corpusforge run` (datasets `save_to_disk` layout).")
    weight: float = Field(
        1.0,
        gt=0,
        description="Row multiplier: 2 repeats every row twice, 0.5 keeps a random half (seeded by `train.seed`).",
    )
    mode: Literal["cp", "sft"] | None = Field(
        None,
        description="This source's mode, default: the run's `mode`. Mixes CP text with KD `messages` in one run "
        "(e.g. InsCP text plus recovery KD, `mode: sft`: loss on the assistant turns only).",
    )
    text_format: Literal["auto", "formatted", "plain"] = Field(
        "auto",
        description="cp only. `formatted`: text already carries BOS and chat tags (InsCP) and is tokenized as is; "
        "`plain`: BOS (and EOS, see `data.add_eos`) are added; `auto`: formatted when the shard's recipe ran `tag` "
        "or the row starts with the tokenizer's BOS.",
    )


class DataConfig(StrictModel):
    sources: list[SourceConfig] = Field(..., min_length=1)
    seq_len: int = Field(2048, ge=8, description="Tokens per packed row (the longest a document can be).")
    packing: Literal["flatten", "blocks", "pad"] = Field(
        "flatten",
        description="`flatten`: documents best-fit into rows of `seq_len` with per-document `position_ids` (no "
        "attention across documents; one padding-free sequence per batch with flash-attention); `blocks`: the "
        "document stream cut into rows of exactly `seq_len` (fixed shapes, documents split at row ends); `pad`: "
        "one document per row, padded to the longest in the batch (for models whose attention ignores packed "
        "`position_ids`).",
    )
    overlong: Literal["split", "truncate", "drop"] | None = Field(
        None,
        description="Documents longer than `seq_len`: `split` into pieces, `truncate`, or `drop`. "
        "Default: split for cp, drop for sft (a truncated answer teaches the model to stop mid-sentence).",
    )
    add_eos: bool = Field(True, description="cp: append EOS to plain text (formatted text already ends its turn).")
    separator: str = Field(
        "auto",
        description="cp, plain text: what marks a document's bounds. `auto`: the tokenizer's BOS before and EOS "
        "after (`add_eos`), except that a BOS or EOS the chat template uses as a turn token (chatml's "
        "`<|im_start|>`/`<|im_end|>`, Llama-3-Instruct's `<|eot_id|>`) is replaced by the model's document "
        "separator (`<|endoftext|>`, `<|end_of_text|>`, `</s>`…) after the document — with a warning; "
        "`bos_eos`: BOS and EOS whatever they are; `none`: nothing; any other value: that token after each "
        "document.",
    )
    num_proc: int = Field(1, ge=1, description="Processes for tokenization.")
    cache_dir: str | None = Field(
        None, description="Where tokenized shards are cached (default: $XDG_CACHE_HOME/corpusforge/tokenized)."
    )


class DPOConfig(StrictModel):
    """``mode: dpo``: the preference loss over (prompt, chosen, rejected) pairs and where its reference comes from."""

    beta: float = Field(0.1, gt=0, description="How far the policy may move from the reference (TRL's `beta`).")
    loss_type: Literal["sigmoid", "ipo"] = Field(
        "sigmoid",
        description="`sigmoid`: −log σ(β·margin), DPO (Rafailov et al., 2023); `ipo`: (margin − 1/(2β))², IPO "
        "(Azar et al., 2023), on per-token averages as TRL computes it.",
    )
    length_normalized: bool = Field(
        False,
        description="sigmoid: compare per-token average log-probabilities instead of sums (TRL's `sigmoid_norm`; "
        "with `reference_free`, SimPO without its margin).",
    )
    reference_free: bool = Field(
        False, description="No reference model: the margin is log π(chosen) − log π(rejected) alone."
    )
    reference: Literal["auto", "disabled_adapter", "precomputed"] = Field(
        "auto",
        description="`disabled_adapter`: the model itself with the LoRA adapter switched off, each step (no second "
        "copy); `precomputed`: reference log-probabilities computed once before training and cached in "
        "`output_dir/reference_logps/`; `auto`: disabled_adapter with `method: lora`, precomputed with `full`.",
    )
    disable_dropout: bool = Field(
        True,
        description="Dropout off in the whole model (LoRA's too), as TRL does: policy and reference agree at step 0.",
    )


class LoraConfig(StrictModel):
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or `all-linear`."
    )
    modules_to_save: list[str] = Field(
        default_factory=list,
        description="Modules trained in full beside the adapter, e.g. `[embed_tokens, lm_head]` (TransLLM; "
        "needed for new vocabulary rows to learn anything).",
    )


class OptimConfig(StrictModel):
    name: str = Field("adamw_torch", description="A transformers optimizer name (`adamw_torch`, `adamw_8bit`, ...).")
    lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    scheduler: str = Field("cosine", description="A transformers scheduler name (`cosine`, `linear`, `constant`...).")
    warmup: float = Field(0.03, ge=0, description="Warmup steps (an integer) or a fraction of all steps (< 1).")
    max_grad_norm: float = Field(1.0, ge=0)

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        from transformers.training_args import OptimizerNames  # heavy, the train extra

        return _one_of(name, [o.value for o in OptimizerNames])

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        from transformers.trainer_utils import SchedulerType  # heavy, the train extra

        return _one_of(name, [s.value for s in SchedulerType])

    @field_validator("warmup")
    @classmethod
    def _steps_or_fraction(cls, warmup: float) -> float:
        if warmup >= 1 and warmup != int(warmup):
            raise ValueError(f"warmup is a step count (an integer) or a fraction below 1, got {warmup}")
        return warmup


# TrainingArguments fields this config sets itself; `trainer_args` must not set them a second way.
_OWNED_ARGS = {
    "output_dir": "train.output_dir",
    "num_train_epochs": "train.epochs",
    "max_steps": "train.max_steps",
    "per_device_train_batch_size": "train.batch_size",
    "gradient_accumulation_steps": "train.grad_accum",
    "bf16": "train.precision",
    "fp16": "train.precision",
    "gradient_checkpointing": "train.gradient_checkpointing",
    "logging_steps": "train.logging_steps",
    "save_steps": "train.save_steps",
    "save_total_limit": "train.save_total_limit",
    "seed": "train.seed",
    "report_to": "train.report_to",
    "resume_from_checkpoint": "train.resume",
    "learning_rate": "optim.lr",
    "optim": "optim.name",
    "weight_decay": "optim.weight_decay",
    "lr_scheduler_type": "optim.scheduler",
    "warmup_steps": "optim.warmup",
    "max_grad_norm": "optim.max_grad_norm",
    "remove_unused_columns": "(always false: the packed rows carry their own columns)",
}


# The standard TrainingArguments names a TRL or LLaMA-Factory user writes, accepted in `train:` for our own fields
# (`warmup_ratio` too: the fraction form of `optim.warmup`). Any other TrainingArguments field there is passed through.
STANDARD_NAMES = {
    **{name: tuple(where.split(".")) for name, where in _OWNED_ARGS.items() if where.startswith(("train.", "optim."))},
    "warmup_ratio": ("optim", "warmup"),
}


def standard_names(data: dict) -> dict:
    """``data`` with TrainingArguments names in its `train:` section moved to the fields they mean: e.g.
    `learning_rate` → `optim.lr`, `per_device_train_batch_size` → `train.batch_size`, `bf16: true` →
    `train.precision: bf16`, `dataloader_num_workers` → `train.trainer_args`. A value given both ways is an error."""
    from transformers import TrainingArguments  # heavy, the train extra

    train = data.get("train")
    if not isinstance(train, dict):
        return data
    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    ours = set(TrainSection.model_fields)
    data = {**data, "train": dict(train)}
    train = data["train"]
    problems = []
    if train.get("max_steps") == -1:  # TrainingArguments' "no limit"
        train["max_steps"] = None
    for name in [k for k in train if k not in ours and (k in fields or k in STANDARD_NAMES)]:
        value = train.pop(name)
        if name in ("bf16", "fp16"):
            if not value:
                continue
            section, key, value = "train", "precision", name
        elif name in STANDARD_NAMES:
            section, key = STANDARD_NAMES[name]
        elif name == "remove_unused_columns":
            problems.append(f"train.{name}: {_OWNED_ARGS[name]}")
            continue
        else:
            section, key = "train", "trainer_args"
            value = {**train.get("trainer_args", {}), name: value}
            if name in train.get("trainer_args", {}):
                problems.append(f"train.{name} is also in train.trainer_args")
        target = data["train"] if section == "train" else dict(data.get(section) or {})
        if key != "trainer_args" and key in target and target[key] != value:
            problems.append(f"train.{name} and {section}.{key} both set ({value!r} vs {target[key]!r}): keep one")
        target[key] = value
        data[section] = target
    if problems:
        raise ValueError("; ".join(problems))
    return data


class TrainSection(StrictModel):
    output_dir: str = Field(..., description="Checkpoints, the final adapter or model, tokenizer and stats.")
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(1, ge=1, description="Packed rows per device per step (each up to `data.seq_len`).")
    grad_accum: int = Field(1, ge=1)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="`auto`: bf16 on a GPU that supports it, else fp16 on a GPU, fp32 on CPU."
    )
    gradient_checkpointing: bool = False
    logging_steps: int = Field(10, ge=1)
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = Field(2, ge=1)
    seed: int = 42
    report_to: list[str] = Field(
        default_factory=lambda: ["none"], description="`[none]`, `[wandb]`, `[tensorboard]`..."
    )
    resume: bool | str = Field(
        False,
        description="`true`: continue from the newest checkpoint in `output_dir` (start fresh if there is none); "
        "a path: continue from that checkpoint.",
    )
    trainer_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Other `transformers.TrainingArguments` fields, passed through (e.g. `dataloader_num_workers`).",
    )

    @field_validator("report_to", mode="before")
    @classmethod
    def _listify(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("trainer_args")
    @classmethod
    def _known_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        from transformers import TrainingArguments  # heavy, the train extra

        fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
        problems = []
        for key in args:
            if key in _OWNED_ARGS:
                problems.append(f"'{key}' is set by {_OWNED_ARGS[key]}")
            elif key not in fields:
                problems.append(f"'{key}' is not a TrainingArguments field{did_you_mean(key, fields)}")
        if problems:
            raise ValueError("; ".join(problems))
        return args


class TrainConfig(StrictModel):
    mode: Literal["cp", "sft", "dpo"] = Field(
        ...,
        description="`cp`: continual pre-training on `text` rows; `sft`: loss on assistant turns of `messages`; "
        "`dpo`: preference optimisation on `prompt` / `chosen` / `rejected` rows (its own stage, after cp/sft).",
    )
    method: Literal["lora", "full"] = "lora"
    model: ModelConfig
    data: DataConfig
    lora: LoraConfig = Field(default_factory=LoraConfig)
    dpo: DPOConfig = Field(default_factory=DPOConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainSection

    _source: str | None = PrivateAttr(None)
    _lines: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _standard_names(cls, data):
        return standard_names(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _lora_only_with_lora(self) -> TrainConfig:
        if self.method == "full" and "lora" in self.model_fields_set:
            raise ValueError("a `lora:` section is only used with `method: lora` (this config says `method: full`)")
        return self

    @property
    def overlong(self) -> str:
        return self.data.overlong or ("split" if self.mode == "cp" else "drop")

    @property
    def reference(self) -> str | None:
        """Where a dpo run's reference log-probabilities come from: `disabled_adapter`, `precomputed`, or None
        (reference-free, or not a dpo run)."""
        if self.mode != "dpo" or self.dpo.reference_free:
            return None
        if self.dpo.reference != "auto":
            return self.dpo.reference
        return "disabled_adapter" if self.method == "lora" else "precomputed"

    def problems(self) -> list[tuple[tuple, str]]:
        """Settings that are each valid but do not go together, as (key path, message)."""
        out = []
        if self.mode != "dpo":
            if "dpo" in self.model_fields_set:
                out.append(
                    (
                        ("dpo",),
                        f"a `dpo:` section is only used with `mode: dpo` (this config says `mode: {self.mode}`)",
                    )
                )
            return out
        for i, source in enumerate(self.data.sources):
            if source.mode is not None:
                out.append(
                    (
                        ("data", "sources", i, "mode"),
                        f"a dpo run reads preference pairs only, got a `mode: {source.mode}` source; DPO is its own "
                        "stage: train cp/sft first, merge (`corpusforge train merge`), then point model.path at it",
                    )
                )
        if self.data.packing == "blocks":
            out.append(
                (("data", "packing"), "dpo keeps each pair whole: use `flatten` (default) or `pad`, got 'blocks'")
            )
        if self.data.overlong not in (None, "drop"):
            out.append(
                (
                    ("data", "overlong"),
                    f"dpo drops pairs longer than data.seq_len, got {self.data.overlong!r}: a cut "
                    "pair compares two answers that were not written",
                )
            )
        d = self.dpo
        if d.reference == "disabled_adapter" and self.method == "full":
            out.append(
                (("dpo", "reference"), "`disabled_adapter` needs `method: lora`; full fine-tuning uses `precomputed`")
            )
        if d.reference_free and d.reference != "auto":
            out.append(
                (("dpo", "reference"), f"`reference_free: true` uses no reference, got `reference: {d.reference}`")
            )
        if d.loss_type == "ipo" and d.length_normalized:
            out.append((("dpo", "length_normalized"), "`loss_type: ipo` already compares per-token averages"))
        return out

    def error(self, loc: tuple, message: str) -> ConfigError:
        """A ConfigError about ``loc`` carrying this config's file and the line of that key."""
        return ConfigError([(loc, message)], self._source, lines_for([(loc, message)], self._lines))


def _one_of(name: str, choices: list[str]) -> str:
    if name not in choices:
        raise ValueError(f"unknown name '{name}'{did_you_mean(name, choices)}")
    return name


def config_from_dict(
    data: Any, overrides: list[str] | None = None, source: str | None = None, lines: dict | None = None
) -> TrainConfig:
    if not isinstance(data, dict):
        raise ConfigError([((), f"a training config is a mapping (mode, model, data, train), got {data!r}")], source)
    if overrides:
        try:
            data = apply_overrides(data, overrides)
        except RecipeError as err:
            raise ConfigError(err.problems, source) from None
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as err:
        problems = pydantic_problems(err, partial(model_keys, TrainConfig))
        raise ConfigError(problems, source, lines_for(problems, lines or {})) from None
    config._source, config._lines = source, lines or {}
    problems = config.problems()
    if problems:
        raise ConfigError(problems, source, lines_for(problems, lines or {}))
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Load and validate a training config file (``overrides``: ``key.path=value`` strings, YAML-parsed)."""
    data, lines = read_yaml(path, what="file", error=ConfigError, loc=("config",))
    return config_from_dict(data, overrides, str(path), lines)
