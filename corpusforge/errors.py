"""Errors a user can act on: each one names where (a YAML key path, a file and line) and what."""

from __future__ import annotations


def did_you_mean(word: str, choices, aliases: dict[str, str] | None = None, otherwise: str = "") -> str:
    """`` — did you mean 'X'?`` for the choice closest to ``word`` (``aliases``: known misspellings, lower-cased, to
    their choice), else ``otherwise``. Every "unknown name" message of recipes and configs ends with it."""
    import difflib

    if aliases and word.lower() in aliases:
        return f" — did you mean '{aliases[word.lower()]}'?"
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else otherwise


class CorpusforgeError(Exception):
    """Base class for errors caused by user input (recipes, files, options)."""


class RecipeError(CorpusforgeError):
    """One or more problems in a recipe, each tied to a key path like ``steps[2].language.keep``.

    ``problems`` is a list of ``(loc, message)`` where ``loc`` is a tuple of keys and list indices. The recipe
    loader adds the YAML file and line of each key path when it knows them.
    """

    def __init__(self, problems: list[tuple[tuple, str]], source: str | None = None, lines: dict | None = None):
        self.problems = problems
        self.source = source
        self.lines = lines or {}
        super().__init__(self._render())

    def _render(self) -> str:
        out = []
        for loc, message in self.problems:
            where = f"{format_loc(loc)}: " if loc else ""  # none: the problem is the whole file (its message says)
            line = self.lines.get(tuple(loc))
            prefix = f"{self.source}:{line}: " if self.source and line else (f"{self.source}: " if self.source else "")
            out.append(f"{prefix}{where}{message}")
        return "\n".join(out)


class SourceError(CorpusforgeError):
    """An input that cannot be read: a glob that matches nothing, a missing field, an unreadable file."""


class OutputError(CorpusforgeError):
    """The output folder holds something we must not overwrite."""


def format_loc(loc: tuple | list) -> str:
    """``("steps", 2, "language", "keep")`` → ``steps[2].language.keep``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class BuildFailed(Exception):
    """A build that started but did not finish: a task failed (its log says why). Not bad input: exit code 1."""
