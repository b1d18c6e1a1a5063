"""How likely a model finds given text: the retention and perplexity measures of the transfer scorecard.

- ``answer_nll``: negative log-likelihood of each assistant answer (and its end-of-turn token) given the
  conversation before it, rendered with the model's own chat template. On a recovery-KD set — the base model's
  own answers to English prompts — a rise after training is what the model forgot of how it used to answer.
- ``text_nll``: the same over plain held-out text (first token unscored), for target and English perplexity.

Both return one ``Scored`` per input: the NLL sum in nats, the tokens scored and the characters they cover, so a
caller can average per token (perplexity) or per character (comparable across tokenizers: a vocabulary-extended
model splits the same text into fewer tokens).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Progress = Callable[[int, int], None]  # (texts done, total)


@dataclass(frozen=True)
class Scored:
    nll: float  # nats, summed over the scored tokens
    tokens: int
    chars: int  # characters of the scored text

    @property
    def per_token(self) -> float:
        return self.nll / self.tokens if self.tokens else float("nan")


def mean_per_token(scored: Sequence[Scored]) -> float | None:
    """Token-weighted mean NLL (log of the perplexity)."""
    tokens = sum(s.tokens for s in scored)
    return sum(s.nll for s in scored) / tokens if tokens else None


def mean_per_char(scored: Sequence[Scored]) -> float | None:
    chars = sum(s.chars for s in scored)
    return sum(s.nll for s in scored) / chars if chars else None


def perplexity(scored: Sequence[Scored]) -> float | None:
    mean = mean_per_token(scored)
    return None if mean is None else math.exp(mean)


class Scorer:
    """A causal LM and its tokenizer, scoring in batches of ``batch_size`` sequences (right-padded)."""

    def __init__(self, model, tokenizer, batch_size: int = 4):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @classmethod
    def load(cls, path: str, dtype: str = "auto", device: str = "auto", batch_size: int = 4) -> Scorer:
        """A local model folder, a LoRA adapter folder (transformers loads base + adapter through peft) or a Hub id."""
        from corpusforge.llm import load_causal_lm, load_tokenizer

        return cls(load_causal_lm(path, dtype=dtype, device=device), load_tokenizer(path), batch_size)

    # ------------------------------------------------------------------------------------------ inputs
    def _answer_ids(self, messages: list[dict]) -> tuple[list[int], int, int]:
        """(token ids of the whole conversation, where the answer starts, characters of the answer part)."""
        tok = self.tokenizer
        before = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        whole = tok.apply_chat_template(messages, tokenize=False)
        if not whole.startswith(before):
            raise ValueError(
                "the chat template renders the conversation without the answer as something other than a prefix of "
                "the whole conversation; the answer's likelihood cannot be isolated"
            )
        answer = whole[len(before) :]
        # Tokenized apart: the answer's tokens never merge with the prompt's, so every model with this tokenizer
        # scores exactly the same tokens.
        head = tok(before, add_special_tokens=False)["input_ids"]
        tail = tok(answer, add_special_tokens=False)["input_ids"]
        return head + tail, len(head), len(answer)

    def answer_nll(self, conversations: Sequence[list[dict]], progress: Progress | None = None) -> list[Scored]:
        """NLL of each conversation's last (assistant) message, end-of-turn included."""
        items = [self._answer_ids(messages) for messages in conversations]
        return self._score(items, progress)

    def text_nll(self, texts: Sequence[str], max_tokens: int = 512, progress: Progress | None = None) -> list[Scored]:
        """NLL of each text's tokens after the first, truncated to ``max_tokens`` tokens."""
        items = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
            scored_chars = len(self.tokenizer.decode(ids[1:])) if len(ids) > 1 else 0
            items.append((ids, 1, scored_chars))
        return self._score(items, progress)

    # ------------------------------------------------------------------------------------------ scoring
    def _score(self, items: list[tuple[list[int], int, int]], progress: Progress | None) -> list[Scored]:
        import torch

        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out: list[Scored | None] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]))  # similar lengths together
        done = 0
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(items[i][0]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            scored = torch.zeros((len(chunk), width), dtype=torch.bool)  # positions whose token is scored
            for row, i in enumerate(chunk):
                seq, first, _ = items[i]
                ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
                scored[row, max(first, 1) : len(seq)] = True
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                # token t is predicted at position t-1; float32 log-softmax whatever the weights' dtype
                logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                target = ids[:, 1:].to(device)
                nll = -logprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
                keep = scored[:, 1:].to(device)
                sums = (nll * keep).sum(dim=1).tolist()
                counts = keep.sum(dim=1).tolist()
            del logits, logprobs
            for row, i in enumerate(chunk):
                out[i] = Scored(float(sums[row]), int(counts[row]), items[i][2])
            done += len(chunk)
            if progress:
                progress(done, len(items))
        return out  # type: ignore[return-value]
