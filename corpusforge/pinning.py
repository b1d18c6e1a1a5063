"""Hub ids in step parameters, and pinning them to a commit so every worker (and every rerun) loads the same files.

The `tag` template, the `tokens` tokenizer and the `perplexity` model may each be a Hugging Face Hub id. Without a
revision each worker would fetch whatever the repo's main branch holds when it starts: two workers, or a build and
its resume a day later, could render or count with different files. ``pin_step_revisions`` resolves the id to the
commit sha it points at once, at plan time, so the sha lands in the recipe (and its fingerprint) and every worker
downloads that commit. Steps pass their ``revision`` to ``hf_hub_download`` / ``snapshot_download`` /
``from_pretrained``, and ``storage.hub_endpoint()`` to the ``huggingface_hub`` calls, so pinning and downloading ask the
same Hub.
An `hf:` source that names a Hub dataset is pinned the same way (``resolve_revision(..., repo_type="dataset")``, called
by the input layer, ``runner/inputs.py``), and so is each `hf:` dataset a step reads (``HUB_DATASET_LISTS``: the
`decontaminate` step's eval sets), by ``pin_step_revisions``.
"""

from __future__ import annotations

import re
from pathlib import Path

from corpusforge.errors import SourceError
from corpusforge.storage import hub_endpoint
from corpusforge.templates import PRESETS

# step name → the parameter that names what the step loads (a local path, a preset for `tag`, or a Hub id)
HUB_PARAMS: dict[str, str] = {"tag": "template", "tokens": "tokenizer", "perplexity": "model"}
# step name → the parameter listing datasets the step reads, each ``{hf: {path, revision, …}, …}`` where ``path`` may be
# a Hub dataset id (the other entries are left as they are)
HUB_DATASET_LISTS: dict[str, str] = {"decontaminate": "eval_sets"}
# `name` or `org/name`: what the Hub accepts as a model repo id (it also caps the length at 96)
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?", re.ASCII)
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# seconds to wait for the Hub's answer when pinning: an unreachable Hub fails the plan quickly, not after minutes
TIMEOUT = 10.0


def is_hub_id(spec: str) -> bool:
    """Whether ``spec`` names a Hub repo (``org/name`` or ``name``) rather than an existing local file or folder."""
    if not _REPO_ID.fullmatch(spec) or ".." in spec or "--" in spec or spec.endswith((".", "-")):
        return False
    return not Path(spec).expanduser().exists()


def hub_repo_id(name: str, params: dict) -> str | None:
    """The Hub id that step ``name`` would download with ``params``; None for a local path, a preset, a step that
    loads nothing from the Hub, or a value that is not a string."""
    key = HUB_PARAMS.get(name)
    spec = params.get(key) if key else None
    if not isinstance(spec, str) or (name == "tag" and spec in PRESETS):
        return None
    return spec if is_hub_id(spec) else None


def pin_step_revisions(name: str, params: dict) -> dict:
    """``params`` of step ``name`` with ``revision`` set to the commit sha its Hub id points at now.

    Contract: only the step's loading parameter is looked at (``HUB_PARAMS``: ``tag.template``,
    ``tokens.tokenizer``, ``perplexity.model``), as the recipe holds it (the validated params dict). When it is a
    Hub id (not a preset, not an existing local path) and ``revision`` is missing, None or a branch/tag name, the
    Hub is asked once (``HfApi(endpoint=HF_ENDPOINT).model_info(repo_id, revision=…).sha``) and a new dict is
    returned with ``revision`` set to that 40-hex commit sha. Otherwise — a local path, a preset, a revision that is
    already a commit sha, a step that loads nothing from the Hub — ``params`` itself comes back unchanged, without
    any request. ``params`` is never modified. Apart from that one lookup the result depends on ``(name, params)``
    only, so calling it once per step at plan time puts the sha into the recipe fingerprint and every worker
    downloads the same commit. For a step of ``HUB_DATASET_LISTS`` (`decontaminate`), each Hub dataset of its list
    (``eval_sets[j].hf``) is pinned so instead (``pin_dataset_revision``).

    Raises ``SourceError`` (naming the step and the repo id) when the Hub cannot be reached, is offline
    (``HF_HUB_OFFLINE``), or has no such repo or revision: give a local folder instead, or pin ``revision`` to a
    commit sha yourself.
    """
    if name in HUB_DATASET_LISTS:
        return _pin_dataset_list(name, params, HUB_DATASET_LISTS[name])
    repo_id = hub_repo_id(name, params)
    revision = params.get("revision")
    if repo_id is None or (isinstance(revision, str) and _COMMIT_SHA.fullmatch(revision)):
        return params
    return {**params, "revision": resolve_revision(repo_id, revision, step=name)}


def _pin_dataset_list(name: str, params: dict, key: str) -> dict:
    """``params`` with the ``revision`` of every Hub dataset in ``params[key]`` set to its commit sha (``params``
    itself when there is none to pin). Raises a ``SourceError`` naming the step and the entry."""
    entries = params.get(key)
    if not isinstance(entries, list):
        return params
    pinned = list(entries)
    for j, entry in enumerate(entries):
        spec = entry.get("hf") if isinstance(entry, dict) else None
        path = spec.get("path") if isinstance(spec, dict) else None
        if not isinstance(path, str) or not is_hub_id(path):
            continue
        try:
            sha = pin_dataset_revision(path, spec.get("revision"))
        except SourceError as err:
            raise type(err)(f"step '{name}': {key}[{j}]: {err}") from None
        if sha != spec.get("revision"):
            pinned[j] = {**entry, "hf": {**spec, "revision": sha}}
    return params if pinned == entries else {**params, key: pinned}


def pin_dataset_revision(repo_id: str, revision: str | None) -> str:
    """The commit sha a Hub dataset source loads: ``revision`` itself when it is a commit sha already (no request),
    else the commit it (default: the main branch) points at now. Raises like ``resolve_revision``."""
    if isinstance(revision, str) and _COMMIT_SHA.fullmatch(revision):
        return revision
    return resolve_revision(repo_id, revision, repo_type="dataset")


class HubUnreachable(SourceError):
    """The Hub did not answer (connection refused, timeout, ``HF_HUB_OFFLINE``): nothing is known about the repo."""


def resolve_revision(repo_id: str, revision: str | None = None, step: str = "", repo_type: str = "model") -> str:
    """The commit sha that ``revision`` (default: the main branch) of repo ``repo_id`` (a model, or with
    ``repo_type="dataset"`` a dataset) points at now. Raises ``HubUnreachable`` when the Hub does not answer, a
    ``SourceError`` when it has no such repo or revision."""
    # huggingface_hub: heavy (about 0.5 s), and it reads HF_ENDPOINT / HF_HUB_OFFLINE once, when first imported
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    kind = "dataset" if repo_type == "dataset" else "model"
    key = HUB_PARAMS.get(step, "model")
    where = f"step '{step}': " if step else ""
    at = f" at revision '{revision}'" if revision else ""
    hub = hub_endpoint() or "https://huggingface.co"
    if kind == "dataset":
        fix = "give local files (`data_files`) or a local folder as `path`, or set `revision` to a commit sha"
    else:
        fix = f"give a local model folder as `{key}`, or set `revision` to a commit sha"
    api = HfApi(endpoint=hub_endpoint())
    info = api.dataset_info if kind == "dataset" else api.model_info
    try:
        sha = info(repo_id, revision=revision, timeout=TIMEOUT).sha
    except RevisionNotFoundError:
        raise SourceError(f"{where}Hub {kind} '{repo_id}' has no revision '{revision}' ({hub})") from None
    except RepositoryNotFoundError:
        raise SourceError(
            f"{where}no Hub {kind} '{repo_id}' on {hub} (or it is private or gated and no token is set: "
            f"`hf auth login`); {fix}"
        ) from None
    except Exception as err:  # connection refused, timeout, HF_HUB_OFFLINE, a proxy's error page …
        raise HubUnreachable(
            f"{where}cannot pin Hub {kind} '{repo_id}'{at} to a commit: the Hub ({hub}) did not answer "
            f"({type(err).__name__}: {err}). Offline, {fix}"
        ) from None
    if not isinstance(sha, str) or not _COMMIT_SHA.fullmatch(sha):
        raise SourceError(f"{where}the Hub ({hub}) gave no commit sha for '{repo_id}'{at} (got {sha!r}); {fix}")
    return sha
