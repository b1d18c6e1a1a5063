"""Recipe sources → datatrove readers, plus the checks that run before any work starts.

Every reader turns rows into ``Document``s the same way (``records.py``): bad rows (malformed JSON, invalid UTF-8,
a missing or empty text field) are dropped, counted by reason in the step's stats, and logged with file and line.
"""

from corpusforge.sources.files import FileReader, expand_glob, resolve_files
from corpusforge.sources.hf import HFReader
from corpusforge.sources.preflight import fingerprint_inputs, make_readers, preflight

__all__ = ["FileReader", "HFReader", "expand_glob", "resolve_files", "preflight", "make_readers", "fingerprint_inputs"]
