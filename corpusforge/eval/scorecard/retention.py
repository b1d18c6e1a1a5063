"""What a model kept (the likelihood half of ``corpusforge eval align``): the retention set — conversations
ending with an assistant answer, from KD outputs, jsonl, or the reference model's own English answers — and the
held-out texts for perplexity, scored under each model's own weights and cached beside its responses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from corpusforge.atomic import write_json_atomic
from corpusforge.errors import SourceError
from corpusforge.eval.documents import corpus_files, iter_docs
from corpusforge.eval.scorecard.config import ScorecardConfig, ScorecardModel
from corpusforge.eval.scorecard.likelihood import Scorer
from corpusforge.eval.scorecard.results import (
    RESPONSES_DIR,
    ModelResult,
    Progress,
    check_loadable,
    free_memory,
    model_fingerprint,
    slug,
)
from corpusforge.eval.scorecard.verdicts import Likelihood


def load_conversations(paths: list[str], limit: int | None) -> list[list[dict]]:
    """Conversations ending with an assistant answer, from KD output folders (``recovery`` rows when the set has a
    `kind` column) or jsonl files with a `messages` field."""
    out: list[list[dict]] = []
    for path in corpus_files(paths):
        if path.is_dir():
            from datasets import load_from_disk  # heavy: only a KD output folder needs it

            ds = load_from_disk(str(path))
            if "messages" not in ds.column_names:
                raise SourceError(f"{path}: no `messages` column — a retention set is a KD output (recovery rows)")
            rows = (r for r in ds if r.get("kind", "recovery") == "recovery")
        else:
            rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        for i, row in enumerate(rows):
            messages = row.get("messages") if isinstance(row, dict) else None
            if not messages or messages[-1].get("role") != "assistant":
                raise SourceError(f"{path}: row {i} has no `messages` ending with an assistant turn")
            out.append([{"role": m["role"], "content": m["content"]} for m in messages])
            if limit is not None and len(out) >= limit:
                return out
    if not out:
        raise SourceError(f"no conversation in {', '.join(map(str, paths))}")
    return out


def own_answers(reference: ModelResult, config: ScorecardConfig) -> list[list[dict]] | None:
    """The reference's answers to the English prompts that are English and not degenerate: a recovery-KD set."""
    system = [{"role": "system", "content": config.system}] if config.system else []
    kept = [
        [*system, {"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.response}]
        for r in reference.responses
        if r.prompt_set == "en" and r.answered_in == "en" and r.finish_reason == "stop"
    ]
    limit = config.retention.limit
    kept = kept[:limit] if limit else kept
    return kept or None


def load_heldout(config: ScorecardConfig) -> dict[str, list[str]]:
    ppl = config.perplexity
    if ppl is None:
        return {}
    out = {}
    for s, paths in (("target", ppl.target), ("en", ppl.en)):
        if paths:
            out[s] = [d.text for d in iter_docs(paths, max_docs=ppl.limit, text_field=ppl.text_field)]
            if not out[s]:
                raise SourceError(f"perplexity.{s}: no document in {', '.join(paths)}")
    return out


def measure_likelihood(
    model: ScorecardModel,
    config: ScorecardConfig,
    answers: list[list[dict]] | None,
    heldout: dict[str, list[str]],
    output: Path,
    progress: Progress | None = None,
):
    """Retention NLL of ``answers`` and perplexity of ``heldout`` under the model's own weights; kept in
    ``OUT/responses`` keyed by the model's files and the texts, so a rerun loads no model."""
    if not answers and not heldout:
        return None
    max_tokens = config.perplexity.max_tokens if config.perplexity else None
    if model.backend.type == "openai":
        return Likelihood(note="retention and perplexity not measured: the openai backend serves text, not weights")
    what = {
        "model": model.model,
        "files": model_fingerprint(model.model),
        "dtype": model.backend.dtype,
        "answers": answers,
        "heldout": heldout,
        "max_tokens": max_tokens,
    }
    key = hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
    cache = output / RESPONSES_DIR / f"{slug(model.name)}-likelihood-{key}.json"
    if cache.is_file():
        return Likelihood.from_cache(json.loads(cache.read_text(encoding="utf-8")))
    check_loadable(model)
    device = getattr(model.backend, "device", "auto")
    scorer = Scorer.load(model.model, dtype=model.backend.dtype, device=device)

    def step(label):
        return (lambda done, total: progress(f"{model.name} · {label}", done, total)) if progress else None

    try:
        result = Likelihood()
        if answers:
            result.retention = scorer.answer_nll(answers, step("retention"))
        for s, texts in heldout.items():
            result.perplexity[s] = scorer.text_nll(texts, max_tokens, step(f"perplexity {s}"))
    finally:
        del scorer
        free_memory()
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, result.to_cache(), indent=None)
    return result
