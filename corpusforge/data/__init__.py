"""Where the data corpusforge ships lives: this folder (the bundled sample that `builtin:` globs name) and its
`prompts/` (the scorecard's prompt sets, which the `decontaminate` step can also name as eval sets). Each README.md
here says where the data came from; the `build_*.py` scripts rebuild it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_PROMPT_FIELD = "prompt"  # the field of prompts/*.jsonl (its README says where each came from)


def builtin_data_dir() -> Path:
    return Path(str(resources.files(__name__)))


def shipped_prompts(language: str) -> Path | None:
    """The prompt set corpusforge ships for ``language`` (``corpusforge/data/prompts/<code>.jsonl``), or None."""
    path = builtin_data_dir() / "prompts" / f"{language}.jsonl"
    return path if path.is_file() else None


def shipped_languages() -> list[str]:
    return sorted(p.stem for p in (builtin_data_dir() / "prompts").glob("*.jsonl"))
