"""The generation step: source rows → prompts → KD tasks driven in batches through a backend → KD rows (a
conversation each; a `preference` task's rows are pairs, scored and paired by the task, kd/preference.py).

Resumable by design. Every answered request is saved in a per-task replay cache (chunk files written atomically,
one per batched backend call) under a key of (prompt id, sample, call, hash of model + sampling + messages). A
rerun of a killed task replays what it finds and sends only what is missing, so its rows equal those of an
uninterrupted run. The cache holds answers only (``backends.whole_answer`` decides): a fault (no content, a body
cut short, an HTTP error) is retried within the run and, when it still fails, written to
``kd-failures/<task>.jsonl`` and never cached, so a rerun asks again. With ``on_failure: fail`` the task then ends
in error (no shard) and a rerun sends only those requests again. Rows a check drops later were answered: they stay
in the cache, and re-filtering them sends nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

from corpusforge.atomic import temp_path, write_jsonl_atomic
from corpusforge.corpus.ledger import Ledger
from corpusforge.errors import BuildFailed
from corpusforge.kd.answers import get_backend, whole_answer
from corpusforge.kd.config import GenerateConfig
from corpusforge.kd.tasks import Call, Outcome, Prompt, chat, start
from corpusforge.lang.degeneration import degeneration
from corpusforge.lang.fidelity import answer_language, line_languages, line_pass, other_script_count
from corpusforge.lang.lid import LanguageIdentifier
from corpusforge.lang.names import SCRIPT_LABELS, languages_agree
from corpusforge.llm.backends import BackendError, Completion, Request

log = logging.getLogger("corpusforge.kd")
FAILURES_DIR = "kd-failures"
CACHE_DIR = "kd-cache"


class GenerationFailed(BuildFailed):
    pass


def request_seed(base: int, prompt_id: str, sample: int, call: str) -> int:
    digest = hashlib.sha256(f"{base}\x00{prompt_id}\x00{sample}\x00{call}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class ReplayCache:
    """Answered requests of one task: ``chunk-NNNNNN.jsonl`` files, each written to a temp file and renamed. Only
    whole answers go in, and only whole answers come out (a fault an older version cached is asked again)."""

    def __init__(self, folder: Path, ledger: Ledger):
        self.folder, self.ledger = folder, ledger
        folder.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, Completion] = {}
        chunks = sorted(folder.glob("chunk-*.jsonl"))
        for chunk in chunks:
            for line in chunk.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                completion = whole_answer(Completion(rec["text"], rec["finish_reason"], rec["n_tokens"]))
                if isinstance(completion, Completion):
                    self.entries[rec["key"]] = completion
        self.next_chunk = int(chunks[-1].stem.split("-")[1]) + 1 if chunks else 0

    def get(self, key: str) -> Completion | None:
        return self.entries.get(key)

    def put(self, results: dict[str, Completion | BackendError]) -> None:
        """Keep the answers of one batched call (faults are left out: asked again next time)."""
        new = {k: c for k, c in results.items() if isinstance(whole_answer(c), Completion)}
        if not new:
            return
        rows = [
            {"key": k, "text": c.text, "finish_reason": c.finish_reason, "n_tokens": c.n_tokens}
            for k, c in new.items()
        ]
        path = self.folder / f"chunk-{self.next_chunk:06d}.jsonl"
        self.ledger.record(path, temp_path(path))
        write_jsonl_atomic(path, rows)
        self.next_chunk += 1
        self.entries.update(new)


class Job:
    """One (prompt, task, sample): a running task generator and what its calls returned. A preference job is one
    per prompt and draws all its samples (each call names its own)."""

    def __init__(self, prompt: Prompt, task, sample: int, config: GenerateConfig):
        self.prompt, self.task, self.sample = prompt, task, sample
        self.run = start(task, prompt, config)
        self.call: Call | None = None
        self.done: list[tuple[Call, Completion]] = []
        self.outcome: Outcome | None = None
        self.error: str | None = None

    @property
    def draw(self) -> int:
        """The sample the current call draws: its seed and its cache key."""
        return self.sample if self.call.sample is None else self.call.sample

    def advance(self, completion: Completion | None = None) -> bool:
        """Feed the last call's completion; False when the task has returned its rows."""
        try:
            if completion is None:
                self.call = next(self.run)
            else:
                self.done.append((self.call, completion))
                self.call = self.run.send(completion)
        except StopIteration as stop:
            self.call, self.outcome = None, stop.value
            return False
        return True


def prompt_key(text: str) -> bytes:
    from corpusforge.steps.dedup import exact_key

    return hashlib.blake2b(exact_key(text).encode(), digest_size=8).digest()


class KDGenerate(PipelineStep):
    name = "generate"
    type = "🤖 - KD"

    def __init__(self, config: GenerateConfig, work_dir: str):
        super().__init__()
        self.config = config
        self.work_dir = work_dir
        self.params_hash = config.params_hash()
        self._backend = None

    @property
    def backend(self):
        if self._backend is None:  # looked up once per task: the registry key is a JSON dump of the config
            self._backend = get_backend(self.config)
        return self._backend

    def __getstate__(self):  # a step pickles to the workers without its engine
        return {**self.__dict__, "_backend": None}

    # -- prompts -----------------------------------------------------------------------------------
    def _prompt(self, doc: Document) -> Prompt | None:
        fields = {k: v for k, v in doc.metadata.items() if isinstance(v, str)}
        try:
            user = self.config.prompts.template.format_map({**fields, "text": doc.text})
        except KeyError as err:
            # The recipe check made sure some source lists the field; this row lacks it (null or absent).
            log.warning(
                "generate.prompts.template: row %s has no field %s; dropped (prompt_missing_field)", doc.id, err
            )
            return None
        return Prompt(doc.id, doc.text, user, fields)

    def _jobs(self, data: DocumentsPipeline):
        cfg = self.config
        # Per task (its index in generate.tasks, not its place among the tasks this row's source and language
        # select: that place differs between sources): 8-byte keys of the prompts it has taken.
        seen: dict[int, set[bytes]] = {}
        for doc in data:
            self.stat_update("total")
            prompt = self._prompt(doc)
            if prompt is None:
                self.stat_update("dropped_prompt_missing_field")
                continue
            source = doc.metadata.get("source")
            language = doc.metadata.get("language")
            tasks = [
                (task_index, t)
                for task_index, t in enumerate(cfg.tasks)
                if (t.sources is None or source in t.sources) and (t.languages is None or language in t.languages)
            ]
            if not tasks:
                self.stat_update("dropped_no_task")
                continue
            if len(prompt.user) > cfg.prompts.max_chars or (
                cfg.prompts.max_tokens
                and self.backend.prompt_tokens(Request(chat(prompt.user, cfg.prompts.system), 0))
                > cfg.prompts.max_tokens
            ):
                self.stat_update("dropped_prompt_too_long")
                continue
            for task_index, task in tasks:
                if cfg.prompts.dedup:
                    key = prompt_key(prompt.user)
                    bucket = seen.setdefault(task_index, set())
                    if key in bucket:
                        self.stat_update(f"dropped_duplicate_prompt_{task.kind}")
                        continue
                    bucket.add(key)
                for sample in range(task.jobs(cfg.sampling.n)):
                    yield Job(prompt, task, sample, cfg)

    # -- driving -----------------------------------------------------------------------------------
    def _key(self, job: Job) -> str:
        what = [job.prompt.id, job.draw, job.call.name, self.params_hash, job.call.messages]
        return hashlib.sha256(json.dumps(what, ensure_ascii=False).encode()).hexdigest()[:32]

    def _generate(self, requests: dict[str, Request]) -> dict[str, Completion | BackendError]:
        """Send the requests; ask again those that got no whole answer, after a doubling backoff or the
        Retry-After an endpoint asked for, whichever is longer."""
        results: dict[str, Completion | BackendError] = {}
        todo = list(requests)
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                backoff = self.config.retry_backoff * 2 ** (attempt - 1)
                time.sleep(max([backoff] + [results[k].retry_after or 0.0 for k in todo]))
            outs = self.backend.generate([requests[k] for k in todo], self.config.sampling)
            secrets = self.backend.secrets
            for key, out in zip(todo, outs):
                results[key] = whole_answer(out, secrets)
            self.stat_update("requests", value=len(todo))
            todo = [k for k in todo if isinstance(results[k], BackendError)]
            if not todo:
                break
            log.warning("%d request(s) failed (attempt %d): %s", len(todo), attempt + 1, results[todo[0]])
        return results

    def _drive(self, jobs: list[Job], cache: ReplayCache) -> None:
        active = [job for job in jobs if job.advance()]
        while active:
            keys = {id(job): self._key(job) for job in active}
            missing = {}
            for job in active:
                key = keys[id(job)]
                if cache.get(key) is None:
                    seed = request_seed(self.config.sampling.seed, job.prompt.id, job.draw, job.call.name)
                    missing[key] = Request(job.call.messages, seed)
            fresh = self._generate(missing) if missing else {}
            cache.put(fresh)
            self.stat_update("cache_hits", value=len(active) - len(missing))
            self._report_progress(
                len(missing),
                len(active) - len(missing),
                sum(v.n_tokens for v in fresh.values() if isinstance(v, Completion)),
            )
            still = []
            for job in active:
                key = keys[id(job)]
                result = cache.get(key) or fresh[key]
                if isinstance(result, BackendError):
                    job.error = f"{job.call.name}: {type(result).__name__}: {result}"
                    continue
                if job.advance(result):
                    still.append(job)
            active = still

    def _documents(self, job: Job) -> list[Document]:
        if not job.done and job.sample > 0:
            return []  # nothing generated (a supplied pair): one copy, not one per sample
        finish = "length" if any(c.finish_reason == "length" for _, c in job.done) else "stop"
        n_tokens = sum(c.n_tokens for _, c in job.done)
        checks = [
            {"field": call.name, "text": c.text, "language": call.language, "prompt": call.messages[-1][1]}
            for call, c in job.done
        ]
        docs = []
        for row in job.outcome.rows:
            row_id = f"{job.prompt.id}/{job.task.kind}/{job.sample}" + (f"/{row.suffix}" if row.suffix else "")
            metadata = {
                **row.columns,
                "kind": job.task.kind,
                "source_id": job.prompt.id,
                "model": self.config.model,
                "params_hash": self.params_hash,
                "finish_reason": row.finish_reason or (finish if job.done else "supplied"),
                "n_tokens": n_tokens,
                "_checks": checks if row.checked else [],
            }
            docs.append(Document(text=row.text, id=row_id, metadata=metadata))
        return docs

    def _report_progress(self, sent: int, replayed: int, tokens: int) -> None:
        """Requests sent and replayed, tokens generated: for the CLI's progress bar (best effort, never fails)."""
        counts = self._progress
        counts["requests"] += sent
        counts["replayed"] += replayed
        counts["tokens"] += tokens

        path = Path(self.work_dir) / "progress" / f"kd.{self._rank:05d}.json"
        with contextlib.suppress(OSError):
            self._ledger.write_json(path, counts)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._rank, self._progress = rank, {"requests": 0, "replayed": 0, "tokens": 0}
        work = Path(self.work_dir)
        self._ledger = Ledger(work.parent)  # work_dir is OUT/.corpusforge: every file written here is OUT's build's
        cache = ReplayCache(work / CACHE_DIR / f"{rank:05d}", self._ledger)
        failures_file = work / FAILURES_DIR / f"{rank:05d}.jsonl"
        failures = []
        batch: list[Job] = []
        jobs = self._jobs(data)
        while True:
            batch.clear()
            for job in jobs:
                batch.append(job)
                if len(batch) >= self.config.backend.batch_size:
                    break
            if not batch:
                break
            with self.track_time("batch"):
                self._drive(batch, cache)
            for job in batch:
                if job.error is not None:
                    failures.append(
                        {"prompt_id": job.prompt.id, "task": job.task.kind, "sample": job.draw, "error": job.error}
                    )
                    self.stat_update("dropped_request_failed")
                    continue
                for key, count in sorted(job.outcome.counts.items()):
                    self.stat_update(f"count_{key}", value=count)
                if job.outcome.dropped:
                    self.stat_update(f"dropped_{job.outcome.dropped}")
                for doc in self._documents(job):
                    self.stat_update("forwarded")
                    self.stat_update("generated_tokens", value=doc.metadata["n_tokens"])
                    yield doc
        self._record_failures(failures_file, failures, self._ledger)
        if failures and self.config.on_failure == "fail":
            raise GenerationFailed(
                f"task {rank}: {len(failures)} request(s) failed after {self.config.max_retries} retries "
                f"(first: {failures[0]['error']}); listed in {failures_file}. Rerun to retry only those, or set "
                "generate.on_failure: skip"
            )

    @staticmethod
    def _record_failures(path: Path, failures: list[dict], ledger: Ledger) -> None:
        if not failures:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        ledger.record(path, temp_path(path))
        write_jsonl_atomic(path, failures)


def raise_if_failed_requests(work: Path, tasks: list[int]) -> None:
    """After a KD stage with unfinished tasks: name the failed requests, if that is why."""
    files = [work / FAILURES_DIR / f"{rank:05d}.jsonl" for rank in tasks]
    failures = [json.loads(line) for f in files if f.exists() for line in f.read_text(encoding="utf-8").splitlines()]
    if failures:
        raise GenerationFailed(
            f"{len(failures)} request(s) failed after all retries (first: {failures[0]['error']}); they are listed "
            f"in {work / FAILURES_DIR}/. Rerun to retry only those (every finished request is replayed from the "
            "cache), or set generate.on_failure: skip to drop them"
        )


class KDChecks(BaseFilter):
    """Output checks on each generated field: empty, truncated, degenerate (a loop, an echo of its prompt), in the
    expected script (any character of the other Chinese script), in the expected language (script-aware LID), and
    (opt-in, ``checks.lines``) every line in it. Script and language are read by lang/fidelity.py, the functions the
    scorecard measures answers with."""

    name = "checks"

    def __init__(self, config: GenerateConfig):
        super().__init__()
        self.checks = config.checks
        self.lid = LanguageIdentifier()  # the `language` step's defaults

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        checks = doc.metadata.pop("_checks")
        if self.checks.empty == "drop" and any(not c["text"].strip() for c in checks):
            return False, "empty_output"
        if self.checks.truncated == "drop" and doc.metadata["finish_reason"] == "length":
            return False, "truncated"
        if self.checks.degenerate == "drop":
            for c in checks:
                reason = degeneration(c["text"], c.get("prompt"))
                if reason in ("loop", "echo"):  # empty and cut-off answers have checks of their own
                    return False, f"{reason}_{c['field']}"
        if self.checks.script:
            for c in checks:
                if c["language"] in SCRIPT_LABELS and other_script_count(c["text"], c["language"]):
                    return False, f"wrong_script_{c['field']}"
        if self.checks.language:
            for c in checks:
                if c["language"] is None:
                    continue
                detected = answer_language(c["text"], self.lid, self.checks.min_language_chars)
                if detected is not None and not languages_agree(detected[0], c["language"]):
                    return False, f"wrong_language_{c['field']}"
        if self.checks.lines:  # after the whole-field check: a field wrong as a whole keeps that reason
            for c in checks:
                if (
                    c["language"] is not None
                    and line_pass(line_languages(c["text"], c["language"], self.lid)) is False
                ):
                    return False, f"switched_language_{c['field']}"
        return True
