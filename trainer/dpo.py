"""``mode: dpo``: the preference loss, each completion's log-probability under the policy and the reference, and
the reference itself — without a second copy of the weights.

- LoRA (``dpo.reference: disabled_adapter``, the default there): the reference is the model being trained with its
  adapter switched off (peft's ``disable_adapter()``), run under ``torch.no_grad()`` on the same batch.
- Full fine-tuning (``precomputed``, the default there; LoRA may ask for it too): before the first step the model,
  as loaded, scores every pair once; the log-probabilities are cached in ``output_dir/reference_logps/<key>.npy``,
  keyed by the model files, the tokenized pairs and the settings, so a resumed run reads them back instead of
  scoring its own half-trained weights.
- ``dpo.reference_free``: no reference at all.

The loss follows TRL's ``DPOTrainer`` (``sigmoid``, ``sigmoid_norm``, ``ipo``), and so do the logged metrics:
``rewards/chosen``, ``rewards/rejected`` (β × summed log-ratio), ``rewards/accuracies``, ``rewards/margins``,
``logps/chosen``, ``logps/rejected``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
from pathlib import Path

import numpy as np

from corpusforge_trainer.loop import packed_trainer_class
from corpusforge_trainer.packing import PackedPairs, build_plan

logger = logging.getLogger(__name__)

REFERENCE_DIR = "reference_logps"
_REFERENCE_VERSION = 1  # bump when what the cached reference log-probabilities mean changes
# batch keys the DPO loss reads; the model gets the others
_NOT_MODEL_INPUTS = {"labels", "sequence_ids", "num_sequences", "ref_logps", "num_real_tokens"}


def completion_logps(model, batch: dict, keep_logits: bool = True):
    """Each sequence's summed log-probability of its completion tokens (``[num_sequences]``, the
    ``PairCollator`` order: chosen then rejected) and the number of those tokens.

    The model computes logits only at the positions that predict a completion token (``logits_to_keep``, the
    positions any row of the batch needs): the ``[positions × vocabulary]`` logits of the prompts are never made.
    ``keep_logits=False`` for models whose forward has no ``logits_to_keep``."""
    import torch

    labels = batch["labels"][:, 1:]
    sequences = batch["sequence_ids"][:, 1:]
    keep = labels != -100
    inputs = {k: v for k, v in batch.items() if k not in _NOT_MODEL_INPUTS}
    if keep_logits:
        columns = keep.any(0).nonzero().squeeze(-1)
        logits = model(**inputs, logits_to_keep=columns).logits
        labels, sequences, keep = labels[:, columns], sequences[:, columns], keep[:, columns]
    else:
        logits = model(**inputs).logits[:, :-1]
    picked = logits[keep].float()  # [completion tokens, vocab]
    targets = labels[keep]
    token_logps = picked.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(picked, dim=-1)
    which = sequences[keep]
    n = batch["num_sequences"]
    sums = torch.zeros(n, dtype=token_logps.dtype, device=token_logps.device).index_add(0, which, token_logps)
    return sums, torch.bincount(which, minlength=n)


def preference_loss(policy, reference, lengths, beta: float, loss_type: str = "sigmoid", length_normalized=False):
    """Per-pair loss and implicit rewards from per-sequence log-probabilities, chosen first (``[2P]`` each):
    ``policy`` and ``reference`` summed over each completion (``reference`` None: reference-free, log π_ref = 0),
    ``lengths`` its token counts.

    With s = log π(y|x) − log π_ref(y|x) — divided by the completion's token count when ``length_normalized``, and
    always for ``ipo`` — and margin m = s_chosen − s_rejected: ``sigmoid`` is −log σ(β·m), ``ipo`` (m − 1/(2β))².
    The rewards are β × the summed log-ratio whether or not the loss normalises it (as TRL logs them)."""
    import torch.nn.functional as F

    logratios = policy if reference is None else policy - reference
    scores = logratios / lengths.clamp(min=1) if length_normalized or loss_type == "ipo" else logratios
    chosen, rejected = scores.chunk(2)
    margin = chosen - rejected
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * margin)
    elif loss_type == "ipo":
        losses = (margin - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown dpo.loss_type {loss_type!r}")
    chosen_rewards, rejected_rewards = (beta * logratios.detach()).chunk(2)
    return losses, chosen_rewards, rejected_rewards


def disable_dropout(model) -> None:
    """Every ``nn.Dropout`` (LoRA's included) to p = 0, as TRL's ``disable_dropout`` does."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def accepts_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def dpo_trainer_class():
    import torch

    class DPOTrainer(packed_trainer_class()):
        """The packed trainer with the DPO loss: policy and reference log-probabilities of every completion in the
        batch, the preference loss averaged over its pairs, TRL's reward metrics in the logs."""

        loss_is_scaled_for_ga = False  # our own loss: Trainer divides it by the accumulation steps

        def __init__(self, *args, dpo, reference: str | None, **kwargs):
            super().__init__(*args, **kwargs)
            self.dpo, self.reference = dpo, reference
            self.model_accepts_loss_kwargs = False  # the same, for transformers before `loss_is_scaled_for_ga`
            self.keep_logits = accepts_logits_to_keep(self.model)
            self.pair_sums = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self.count_tokens(inputs)
            policy, lengths = completion_logps(model, inputs, self.keep_logits)
            reference = inputs.get("ref_logps")
            if self.reference == "disabled_adapter":
                unwrapped = self.accelerator.unwrap_model(model)
                with torch.no_grad(), unwrapped.disable_adapter():
                    reference, _ = completion_logps(unwrapped, inputs, self.keep_logits)
            elif self.reference == "precomputed" and reference is None:
                raise RuntimeError("dpo.reference is precomputed but the batch carries no reference log-probabilities")
            d = self.dpo
            losses, chosen, rejected = preference_loss(
                policy, reference, lengths, d.beta, d.loss_type, d.length_normalized
            )
            self.record(chosen, rejected, policy.detach())
            loss = losses.mean()
            return (loss, None) if return_outputs else loss

        def record(self, chosen, rejected, policy) -> None:
            logps_chosen, logps_rejected = policy.chunk(2)
            step = torch.stack(
                [
                    chosen.sum(),
                    rejected.sum(),
                    (chosen > rejected).float().sum(),
                    (chosen - rejected).sum(),
                    logps_chosen.sum(),
                    logps_rejected.sum(),
                    torch.tensor(float(len(chosen)), device=chosen.device),
                ]
            ).double()
            self.pair_sums = step if self.pair_sums is None else self.pair_sums + step

        def log(self, logs, start_time=None):
            if "loss" in logs:  # on every rank (see PackedTrainer.log): the reduce is safe
                sums = self.pair_sums if self.pair_sums is not None else torch.zeros(7, dtype=torch.float64)
                *totals, pairs = self.accelerator.reduce(sums.to(self.args.device), "sum").tolist()
                names = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")
                names += ("logps/chosen", "logps/rejected")
                logs.update({name: total / pairs for name, total in zip(names, totals)} if pairs else {})
                self.pair_sums = None
            super().log(logs, start_time)

    return DPOTrainer


def reference_key(config, tokens, dtype: str, precision: str) -> str:
    """What the reference log-probabilities depend on: the model's files (or Hub id and revision), the tokenized
    pairs (shards, tokenizer, template), the weights' dtype and the training precision, and which pairs fit
    ``data.seq_len``."""
    m = config.model
    local = Path(m.path).expanduser()
    files = []
    if local.is_dir():
        names = [p for p in sorted(local.iterdir()) if p.suffix in (".safetensors", ".bin", ".json")]
        files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in names]
    parts = [
        _REFERENCE_VERSION,
        str(local.resolve()) if local.is_dir() else m.path,
        m.revision,
        files,
        m.tokenizer,
        m.base_tokenizer,
        dtype,
        precision,
        config.data.seq_len,
        tokens._fingerprint,
        len(tokens),
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def precompute_reference(trainer, config, tokens, batch_rows: int) -> np.ndarray:
    """``[pairs, 2]`` reference log-probabilities (chosen, rejected; NaN for pairs longer than ``data.seq_len``,
    which are never trained), from ``trainer.model`` as it is now — before ``train()`` loads a checkpoint — with the
    adapter off for LoRA. Read from the run folder's cache when it holds them; the main process computes them first
    and the other processes read its file."""
    import torch

    args = trainer.args
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    dtype = str(next(trainer.model.parameters()).dtype)
    path = Path(config.train.output_dir) / REFERENCE_DIR / f"{reference_key(config, tokens, dtype, precision)}.npy"
    with args.main_process_first(local=False, desc="reference log-probabilities"):
        if path.is_file():
            cached = np.load(path)
            if cached.shape == (len(tokens), 2):
                logger.info("reference log-probabilities read from %s", path)
                return cached
        lengths = tokens.data.table.column("length").to_numpy().astype(np.int64)
        plan = build_plan(np.arange(len(tokens)), lengths, config.data.seq_len, config.data.packing, "drop")
        dataset = PackedPairs(tokens, plan)
        out = np.full((len(tokens), 2), np.nan, dtype=np.float32)
        model = trainer.model
        was_training = model.training
        model.eval()
        adapter_off = model.disable_adapter() if config.method == "lora" else contextlib.nullcontext()
        logger.info("reference log-probabilities: scoring %d pairs in %d rows", plan.stats["segments"], len(plan))
        with torch.no_grad(), adapter_off, trainer.compute_loss_context_manager():
            for start in range(0, len(dataset), batch_rows):
                rows = [dataset[i] for i in range(start, min(start + batch_rows, len(dataset)))]
                batch = trainer._prepare_inputs(trainer.data_collator(rows))
                logps, _ = completion_logps(model, batch, trainer.keep_logits)
                pairs = np.concatenate([r["pairs"] for r in rows])
                chosen, rejected = logps.float().cpu().numpy().reshape(2, -1)
                out[pairs, 0], out[pairs, 1] = chosen, rejected
        model.train(was_training)
        if args.should_save:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, out)
            tmp.replace(path)
    return out
