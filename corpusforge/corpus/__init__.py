"""The build folder: every name in it (``layout``) and the record of what a build wrote there (``ledger``)."""

from corpusforge.corpus.layout import (
    DATASET_INFO,
    LOCK,
    MANIFEST,
    PLAN,
    REPORT_DIR,
    REPORT_HTML,
    STATE,
    WORK_DIR,
    shard_name,
)
from corpusforge.corpus.ledger import Ledger, LedgerFolder

__all__ = [
    "DATASET_INFO",
    "LOCK",
    "MANIFEST",
    "PLAN",
    "REPORT_DIR",
    "REPORT_HTML",
    "STATE",
    "WORK_DIR",
    "Ledger",
    "LedgerFolder",
    "shard_name",
]
