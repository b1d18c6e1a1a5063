"""Language alignment (InsCP, Table 1): in which language does each model answer English prompts and
target-language prompts?

    from corpusforge.eval.scorecard.evaluate import run_scorecard
    from corpusforge.eval.scorecard.config import load_scorecard_config
    result = run_scorecard(load_scorecard_config("docs/examples/align-th.yaml"))
    result.models[0].cells["target"].shares      # {"en": 0.12, "target": 0.55, "other": 0.03, "degenerate": 0.30}

Each model (any backend: transformers, vllm, an OpenAI-compatible endpoint; a LoRA adapter folder with
transformers) answers both prompt sets — the given files, or the sets corpusforge ships — one user turn per prompt,
``samples`` times each with its own seed (sampled as the config says, or with ``sampling: auto`` as the model's
generation_config.json says). Each response is checked for degeneration (a loop, an echo, empty) and classified by
the `language` step's LID (fastText lid.176, Chinese split by script) on its prose (fenced code blocks left out):
English, the target language, or another language; responses with fewer than ``min_letters`` letters of prose are
`undetermined`, and requests that still fail after the retries are `failed` — both counted apart, outside the
shares. Whether an answer ended or was cut off at ``max_tokens`` is recorded apart from its class. Writes
``align.json`` (counts, shares with their intervals, and every response) and ``align.png`` (grouped bars, models
side by side) to the output folder.

Models run one after another and each is released before the next loads. Each model's responses are kept in
``OUT/responses/``, keyed by what determines them (model and its files' sizes and times, backend settings,
sampling as resolved for that model, samples, system prompt, prompts): a rerun after a crash, or with another
``min_letters``, regenerates nothing but the requests that failed.

Here: prompts, generation and classification, and `run_scorecard`, which drives the whole comparison. The result
types and shares are in `results`, the retention set and the likelihood scores in `retention`, the chart in
`plot`, the measures and verdicts in `verdicts`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from corpusforge.atomic import write_atomic, write_json_atomic
from corpusforge.errors import SourceError
from corpusforge.eval.documents import iter_docs
from corpusforge.eval.scorecard.config import ModelSampling, ScorecardConfig, ScorecardModel
from corpusforge.eval.scorecard.fidelity import measured, wanted_language
from corpusforge.eval.scorecard.plot import plot_alignment
from corpusforge.eval.scorecard.results import (
    PROMPT_SETS,
    RESPONSES_DIR,
    ModelResult,
    Progress,
    Response,
    ScorecardResult,
    check_loadable,
    free_memory,
    model_fingerprint,
    slug,
    tabulate,
)
from corpusforge.eval.scorecard.retention import (
    load_conversations,
    load_heldout,
    measure_likelihood,
    own_answers,
)
from corpusforge.eval.scorecard.verdicts import build_scorecard, render_html
from corpusforge.kd.step import request_seed
from corpusforge.lang.degeneration import degeneration
from corpusforge.lang.fidelity import fidelity
from corpusforge.lang.names import languages_agree
from corpusforge.lang.prose import letters, prose
from corpusforge.llm import backends
from corpusforge.llm.backends import Request
from corpusforge.steps.language import LanguageID, LanguageParams

log = logging.getLogger("corpusforge.eval")


# --------------------------------------------------------------------------------------------- prompts
def load_prompts(paths: list[str], text_field: str = "text", limit: int | None = None) -> list[str]:
    """Distinct prompts from jsonl / txt files or corpusforge output folders (InsCP tags removed), in file order."""
    # Distinct prompts only: a prompt listed 7 times would count 7 answers, and the significance tests would
    # believe in 7 observations where there is one. ``limit`` counts distinct prompts.
    prompts: dict[str, None] = {}
    repeated = 0
    for doc in iter_docs(paths, max_docs=None, text_field=text_field):
        if doc.text in prompts:
            repeated += 1
            continue
        prompts[doc.text] = None
        if limit is not None and len(prompts) >= limit:
            break
    if not prompts:
        raise SourceError(f"no prompt in {', '.join(map(str, paths))} (empty files?)")
    if repeated:
        log.warning(
            "%s: %d repeated prompt(s) left out (each prompt is asked once)", ", ".join(map(str, paths)), repeated
        )
    return list(prompts)


# --------------------------------------------------------------------------------------------- classification
class Classifier:
    """Response → (detected label, score, class) with the `language` step's LID, on the prose: fenced code blocks are
    left out (an answer that is only code is `undetermined`)."""

    def __init__(self, language: str, min_letters: int, lid_model: str | None = None):
        self.language, self.min_letters = language, min_letters
        self.lid = LanguageID(LanguageParams(model=lid_model))

    def __call__(self, text: str) -> tuple[str | None, float | None, str]:
        text = prose(text)
        if letters(text) < self.min_letters:
            return None, None, "undetermined"
        label, score = self.lid.identify(text)
        if label == "en":
            return label, score, "en"
        # `zh` (no script-distinguishing character) agrees with zh_Hant / zh_Hans; the other script does not.
        return label, score, "target" if languages_agree(label, self.language) else "other"


# --------------------------------------------------------------------------------------------- generation
Item = tuple[str, str, int]  # (prompt set, prompt, sample)
Row = tuple[str, str, int, str, str, int]  # (prompt set, prompt, sample, response, finish reason, tokens)


def responses_key(
    model: ScorecardModel, config: ScorecardConfig, prompts: dict[str, list[str]], sampling: ModelSampling
) -> str:
    # the sampling as resolved for this model (and how many answers per prompt): a cached greedy run is never
    # read back for a sampled one, nor one model's `auto` settings for another's
    what = {
        "model": model.model,
        "files": model_fingerprint(model.model),
        "backend": model.backend.model_dump(),
        "sampling": config.sampling.model_dump(),
        "resolved": sampling.to_dict(),
        "system": config.system,
        "prompts": prompts,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _open_backend(model: ScorecardModel):
    # Not kd.backends.get_backend: it keeps every engine for the life of the process, and a comparison of several
    # models must free one before the next loads.
    if model.backend.type == "vllm":
        backends.prepare_vllm(model.backend.tensor_parallel_size)
    classes = {
        "vllm": backends.VLLMBackend,
        "transformers": backends.TransformersBackend,
        "openai": backends.OpenAIBackend,
    }
    return classes[model.backend.type](model.model, model.backend)


def items_of(prompts: dict[str, list[str]], samples: int) -> list[Item]:
    """Every (prompt set, prompt, sample) to answer, in the order the rows are kept."""
    return [(s, p, k) for s in PROMPT_SETS for p in prompts[s] for k in range(samples)]


def generate_responses(
    model: ScorecardModel,
    config: ScorecardConfig,
    sampling: ModelSampling,
    items: list[Item],
    progress: Progress | None = None,
) -> list[Row]:
    """A row for every item, in order; a request that fails ``max_retries + 1`` times has finish reason ``error``
    and the error text as its response. Each request's seed derives from the base seed, the prompt's text and the
    sample's index (so it does not depend on the prompt's position, its batch, or the other prompts)."""
    check_loadable(model)
    backend_sampling = sampling.to_backend()
    system = (("system", config.system),) if config.system else ()
    requests = [
        Request(
            messages=(*system, ("user", prompt)),
            seed=request_seed(sampling.seed, hashlib.sha256(prompt.encode()).hexdigest(), sample, "align"),
        )
        for _, prompt, sample in items
    ]
    backend = _open_backend(model)
    try:
        # An error is kept as its text: an exception's traceback would hold the backend (and its weights) alive.
        results: list = [None] * len(requests)
        size = model.backend.batch_size
        for start in range(0, len(requests), size):
            todo = list(range(start, min(start + size, len(requests))))
            for attempt in range(config.max_retries + 1):
                outs = backend.generate([requests[i] for i in todo], backend_sampling)
                for i, out in zip(todo, outs):
                    results[i] = f"{type(out).__name__}: {out}" if isinstance(out, Exception) else out
                outs = out = None
                todo = [i for i in todo if isinstance(results[i], str)]
                if not todo:
                    break
                log.warning(
                    "%s: %d request(s) failed (attempt %d): %s", model.name, len(todo), attempt + 1, results[todo[0]]
                )
            if progress:
                progress(model.name, min(start + size, len(requests)), len(requests))
    finally:
        del backend  # the next model loads into the memory this one frees
        free_memory()
    rows: list[Row] = []
    for (prompt_set, prompt, sample), out in zip(items, results):
        if isinstance(out, str):
            rows.append((prompt_set, prompt, sample, out, "error", 0))
        else:
            rows.append((prompt_set, prompt, sample, out.text, out.finish_reason, out.n_tokens))
    return rows


def classify_row(row: Row, classify: Classifier) -> Response:
    """One response, classified: its degeneration first (a loop, an echo, empty: `degenerate` whatever its
    language), then its language. Whether it was cut off is its finish reason, apart from both. An answer that
    counts gets its fidelity, line by line, with the same LID."""
    prompt_set, prompt, sample, text, finish, n_tokens = row
    reason = None
    if finish == "error":
        detected, score, answered_in = None, None, "failed"
    else:
        detected, score, answered_in = classify(text)
        reason = degeneration(text, prompt)
        if reason is not None:
            answered_in = "degenerate"
    score = None if score is None else round(float(score), 4)
    response = Response(prompt_set, prompt, text, finish, n_tokens, detected, score, answered_in, reason, sample)
    if measured(response):
        response.fidelity = fidelity(text, wanted_language(prompt_set, classify.language), classify.lid)
    return response


def evaluate_model(
    model: ScorecardModel,
    config: ScorecardConfig,
    prompts: dict[str, list[str]],
    classify: Classifier,
    output: Path,
    progress: Progress | None = None,
) -> ModelResult:
    sampling = config.sampling.for_model(model, config.samples)
    for note in sampling.notes:
        log.warning("%s: sampling: %s", model.name, note)
    log.info("%s: %s", model.name, sampling.describe())
    key = responses_key(model, config, prompts, sampling)
    cache = output / RESPONSES_DIR / f"{slug(model.name)}-{key}.json"
    rows = [tuple(r) for r in json.loads(cache.read_text(encoding="utf-8"))["rows"]] if cache.is_file() else None
    failed = [i for i, row in enumerate(rows or []) if row[4] == "error"]
    reused = rows is not None and not failed
    if rows is None:
        rows = generate_responses(model, config, sampling, items_of(prompts, sampling.samples), progress)
    elif failed:
        # Only the requests that failed last time are sent again, with the seeds they had.
        log.info(
            "%s: %d responses kept, %d failed requests sent again", model.name, len(rows) - len(failed), len(failed)
        )
        todo = [rows[i][:3] for i in failed]
        for i, row in zip(failed, generate_responses(model, config, sampling, todo, progress)):
            rows[i] = row
    else:
        log.info("%s: reusing %d responses from %s", model.name, len(rows), cache)
    if not reused:
        cache.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": model.model, "backend": model.backend.model_dump(), "rows": rows}
        write_json_atomic(cache, payload, indent=None)
    responses = [classify_row(row, classify) for row in rows]
    return ModelResult(
        name=model.name,
        model=model.model,
        backend=model.backend.model_dump(),
        cells={s: tabulate(s, responses) for s in PROMPT_SETS},
        responses=responses,
        reused=reused,
        sampling=sampling.to_dict(),
    )


def run_scorecard(config: ScorecardConfig, progress: Progress | None = None) -> ScorecardResult:
    """Generate, classify, score likelihoods and write the scorecard (``scorecard.json`` / ``.html``) and the matrix
    (``align.json`` / ``.png``) to ``config.output``. The reference model runs first: its own English answers are
    the default retention set."""
    output = Path(config.output).expanduser()
    if output.exists() and not output.is_dir():
        raise SourceError(f"output '{config.output}' exists and is not a folder")
    sources = {s: config.prompts.source(s, config.language) for s in PROMPT_SETS}
    prompts = {s: load_prompts(paths, field, config.prompts.limit) for s, (paths, field) in sources.items()}
    retention = config.retention
    answers = (
        load_conversations(retention.answers, retention.limit) if retention.enabled and retention.answers else None
    )
    heldout = load_heldout(config)
    classify = Classifier(config.language, config.min_letters, config.lid_model)
    output.mkdir(parents=True, exist_ok=True)
    order = sorted(config.models, key=lambda m: m.name != config.reference)  # the reference first
    done: dict[str, ModelResult] = {}
    likelihoods = {}
    for m in order:
        done[m.name] = evaluate_model(m, config, prompts, classify, output, progress)
        if m.name == config.reference and retention.enabled and answers is None:
            answers = own_answers(done[m.name], config)
        likelihoods[m.name] = measure_likelihood(
            m, config, answers if retention.enabled else None, heldout, output, progress
        )
    result = ScorecardResult(
        config.language, config, [done[m.name] for m in config.models], output, likelihoods, prompt_sources=sources
    )
    write_json_atomic(result.json_path, result.to_dict(), indent=1)
    plot_alignment(result, result.png_path)
    result.scorecard = build_scorecard(result, likelihoods)
    write_json_atomic(result.scorecard_json, result.scorecard, indent=1)
    write_atomic(result.scorecard_html, render_html(result.scorecard, result, result.png_path))
    return result
