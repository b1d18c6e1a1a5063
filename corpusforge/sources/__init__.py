"""Recipe sources → datatrove readers.

Every reader turns rows into ``Document``s the same way (``records.py``): bad rows (malformed JSON, invalid UTF-8,
a missing or empty text field) are dropped, counted by reason in the step's stats, and logged with file and line.
Resolving, checking and fingerprinting a recipe's inputs belongs to the build plan (``corpusforge.runner.inputs``).
"""

from corpusforge.sources.files import FileReader, expand_glob, resolve_files
from corpusforge.sources.hf import HFReader

__all__ = ["FileReader", "HFReader", "expand_glob", "resolve_files"]
