"""The one place that takes credentials out of text. Endpoint bodies and library errors pass through ``redact``
where they enter corpusforge (the generation backends), the recorded recipe passes through ``redact_values`` when the
build plan is made (so plan.json, manifest.json and report.html show none), and publishing's scrub calls it too.

Removed: the secret values given (the configured API key, whatever variable it came from), ``Bearer …`` tokens,
tokens with a well-known key prefix (``sk-…``, ``hf_…``, ``ghp_…``), the value of an ``Authorization`` header
(quoted by a proxy in a 401 body, in header or JSON form), URL userinfo (``user:pass@``) and the values of
secret-looking query parameters (``api_key``, ``key``, ``token``, ``access_token``, ``password``, ``secret``,
``sig``…). Each becomes ``<redacted>``; the text around it is kept, so an error still says what went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"
MIN_SECRET_CHARS = 4  # a shorter "secret" would blank out ordinary words

# `Authorization: Bearer x`, `"authorization": "Basic x"`, `'Authorization': 'x'`: the value up to its quote or line end
_AUTHORIZATION = re.compile(r"""(\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)[^"'\r\n]+""", re.I)
_BEARER = re.compile(r"\b(bearer\s+)[\w.~+/=-]+", re.I)
_KEY_PREFIXED = re.compile(r"(?<![\w-])(?:(?:sk|xox[abprs])-[\w-]{8,}|(?:hf|gh[pousr])_[A-Za-z0-9]{20,})")
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@?#'\"]+@", re.I)
_SECRET_PARAM = re.compile(
    r"([?&;][\w.-]*(?:key|token|password|passwd|pwd|secret|sig|signature|credential|auth)=)[^&#\s'\"<>]+", re.I
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secret values and without anything that looks like a credential."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _KEY_PREFIXED.sub(REDACTED, text)
    text = _URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


def map_strings(value, fn):
    """A copy of a JSON-like value (dicts, lists, strings) with ``fn`` applied to every string in it (keys kept)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value


def redact_values(value, secrets: Iterable[str | None] = ()):
    """A copy of a JSON-like value (dicts, lists, strings) with every string redacted."""
    secrets = tuple(secrets)
    return map_strings(value, lambda text: redact(text, secrets))
