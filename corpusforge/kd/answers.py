"""What KD takes from a generation backend (``corpusforge.llm.backends``): the engine its requests go to, one per
process and configuration (``get_backend``), and the one rule for what is an answer (``whole_answer``).

Whatever a backend returns goes through ``whole_answer`` before the replay cache sees it: the one rule for what is
an answer (and so may be cached) and what is a fault (retried, never cached), and the one place where a fault's
text (an endpoint's body, a library's message) is redacted.
"""

from __future__ import annotations

import json

from corpusforge.kd.config import GenerateConfig
from corpusforge.llm.backends import BackendError, Completion, open_backend
from corpusforge.redact import redact

FINISH_REASONS = ("stop", "length")  # generation ended: at a stop (EOS, stop string) or at max_tokens


def whole_answer(out: Completion | BaseException, secrets=()) -> Completion | BackendError:
    """The one rule for what the replay cache may keep, applied to everything every backend returns (and to what
    the cache reads back, so a fault cached by an older version is asked again). An answer is text whose
    generation ended (``stop``, or ``length``: cut at max_tokens is whole at that length); empty text counts only
    when the backend generated a token (a model that ended at once). No content (a transient ``"content": null``),
    empty content with no token, any other finish reason, and every exception are faults: a ``BackendError``
    whose message has the ``secrets`` (the API key) and anything that looks like a credential removed."""
    if isinstance(out, BaseException):
        message = str(out) if isinstance(out, BackendError) else f"{type(out).__name__}: {out}"
        return BackendError(redact(message, secrets), getattr(out, "retry_after", None))
    if not isinstance(out.text, str):
        fault = "no content"
    elif out.finish_reason not in FINISH_REASONS:
        fault = "generation did not end"
    elif not out.text and out.n_tokens <= 0:
        fault = "empty content and no token generated"
    else:
        return out
    return BackendError(redact(f"{fault} (finish_reason {out.finish_reason!r})", secrets))


_ENGINES: dict[str, object] = {}


def get_backend(config: GenerateConfig):
    """One engine per process and configuration: datatrove runs several tasks in one worker, and loading the
    model again per task would dominate a short task."""
    key = json.dumps([config.model, config.backend.model_dump()], sort_keys=True)
    if key not in _ENGINES:
        _ENGINES[key] = open_backend(config.model, config.backend)
    return _ENGINES[key]
