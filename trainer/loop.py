"""The transformers ``Trainer`` the runs use: it counts the positions it computes, the real (non-pad) tokens and the
tokens with a loss, summed over processes, for ``train_stats.json`` and the training logs. The DPO trainer
(``dpo.dpo_trainer_class``) extends it."""

from __future__ import annotations


def packed_trainer_class():
    import torch
    from transformers import Trainer

    class PackedTrainer(Trainer):
        """Trainer that counts the positions it computes, the real (non-pad) tokens and the tokens with a loss."""

        counts = None

        def count_tokens(self, inputs: dict) -> None:
            """Add this batch to the counts (and take the collator's ``num_real_tokens`` out of ``inputs``)."""
            ids = inputs["input_ids"]
            positions = torch.tensor(ids.numel(), device=ids.device)
            real = inputs.pop("num_real_tokens", None)
            if real is None:
                real = inputs["attention_mask"].sum() if "attention_mask" in inputs else positions
            with_loss = (inputs["labels"][..., 1:] != -100).sum()
            # Stays on the device: no host sync per step, only when logging.
            step = torch.stack([positions, real.long(), with_loss.long()])
            self.counts = step if self.counts is None else self.counts + step

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self.count_tokens(inputs)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def token_totals(self) -> dict:
            """Summed over processes (a collective: every rank calls it at the same point)."""
            counts = self.counts if self.counts is not None else torch.zeros(3, dtype=torch.long)
            positions, real, with_loss = self.accelerator.reduce(counts.to(self.args.device), "sum").tolist()
            return {
                "positions": int(positions),
                "real_tokens": int(real),
                "loss_tokens": int(with_loss),
                "real_token_share": real / positions if positions else 0.0,
            }

        def log(self, logs, start_time=None):
            if "loss" in logs:  # training logs are emitted on every rank, so the reduce below is safe
                totals = self.token_totals()
                logs["real_token_share"] = round(totals["real_token_share"], 4)
                logs["tokens"] = totals["real_tokens"]
            super().log(logs, start_time)

    return PackedTrainer
