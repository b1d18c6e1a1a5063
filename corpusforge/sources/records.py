"""Row → Document conversion shared by all readers, with drop reasons and bounded per-file warnings."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseReader

from corpusforge.corpus.ledger import Ledger

log = logging.getLogger("corpusforge.sources")
WARNINGS_PER_FILE = 5
# Metadata key of a document's place in the recipe's input: (source index, file index, row) packed into one integer.
# Set only where a dedup step needs it (the survivor of a duplicate cluster is its first document in recipe order,
# whatever the task split), and removed by that step before anything is written.
ORDER_KEY = "_corpusforge_order"


def order_key(source_index: int, file_index: int, row: int) -> int:
    """Packs a document's place in the recipe's input into a uint64 that sorts in recipe order."""
    if not (source_index < 1 << 12 and file_index < 1 << 20 and row < 1 << 32):
        raise ValueError(f"input position out of range for dedup ordering: {(source_index, file_index, row)}")
    return source_index << 52 | file_index << 32 | row


class RecordReader(BaseReader):
    """Base for our readers: builds documents from dict rows, counts bad rows by reason, reports progress."""

    type = "📖 - READER"

    def __init__(
        self,
        source_name: str,
        text_field: str,
        id_field: str | None,
        fields: list[str],
        limit: int | None,
        progress_dir: str | None = None,
        source_index: int | None = None,
    ):
        super().__init__(limit=limit or -1, text_key=text_field, id_key=id_field or "id")
        self.source_name = source_name
        self.source_index = source_index  # set: documents carry ORDER_KEY (see there)
        self.file_index = 0
        self.text_field = text_field
        self.id_field = id_field
        self.fields = list(fields)
        self.progress_dir = progress_dir
        self._warned: dict[str, int] = {}
        self._progress = {"docs": 0, "bytes": 0}
        self._last_report = 0.0
        self._ledger: Ledger | None = None

    # -- problems -----------------------------------------------------------------------------------
    def bad_row(self, reason: str, where: str, detail: str) -> None:
        """Count a dropped row and warn (a few times per file, then once with the total)."""
        self.stat_update("dropped", f"dropped_{reason}")
        file_key = where.rsplit(":", 1)[0]
        seen = self._warned.get(file_key, 0) + 1
        self._warned[file_key] = seen
        if seen <= WARNINGS_PER_FILE:
            log.warning("%s: %s (row dropped: %s)", where, detail, reason)
        elif seen == WARNINGS_PER_FILE + 1:
            log.warning("%s: more bad rows in this file; further ones are counted in the manifest only", file_key)

    # -- rows → documents ---------------------------------------------------------------------------
    def make_document(self, row: dict, where: str, default_id: str, row_no: int) -> Document | None:
        """A document from one row (``row_no`` of file ``self.file_index``), or None (counted) for a bad row."""
        if self.text_field not in row:
            self.bad_row("missing_text_field", where, f"no field '{self.text_field}' (fields: {sorted(row)[:10]})")
            return None
        text = row[self.text_field]
        if not isinstance(text, str):
            if text is None:
                self.bad_row("empty_text", where, f"'{self.text_field}' is null")
            else:
                self.bad_row("text_not_string", where, f"'{self.text_field}' is a {type(text).__name__}")
            return None
        if not text.strip():
            self.bad_row("empty_text", where, f"'{self.text_field}' is empty")
            return None
        doc_id = default_id
        if self.id_field is not None:
            value = row.get(self.id_field)
            if value is None or value == "":
                self.bad_row("missing_id", where, f"no value in id field '{self.id_field}'")
                return None
            doc_id = str(value)
        metadata = {"source": self.source_name}
        if self.source_index is not None:
            metadata[ORDER_KEY] = order_key(self.source_index, self.file_index, row_no)
        for name in self.fields:
            value = row.get(name)
            metadata[name] = (
                value
                if isinstance(value, (str, int, float, bool)) or value is None
                else json.dumps(value, ensure_ascii=False, default=str)
            )
        self._progress["docs"] += 1
        return Document(text=text, id=doc_id, metadata=metadata)

    # -- progress -----------------------------------------------------------------------------------
    def report_progress(self, rank: int, bytes_done: int | None = None, force: bool = False) -> None:
        """Write this task's counters to ``progress_dir`` about twice a second (the CLI's progress bar reads them)."""
        if bytes_done is not None:
            self._progress["bytes"] = bytes_done
        if not self.progress_dir or (not force and self._progress["docs"] % 256):
            return
        now = time.monotonic()
        if not force and now - self._last_report < 0.5:
            return
        self._last_report = now
        path = Path(self.progress_dir) / f"{self.source_name}.{rank:05d}.json"
        try:
            # progress_dir is OUT/.corpusforge/progress (BuildPlan.progress_dir): recorded in OUT's ledger
            self._ledger = self._ledger or Ledger(path.parents[2])
            self._ledger.write_json(path, self._progress, indent=None)
        except OSError:  # progress is best effort; never fail a task over it
            pass

    def limited(self, docs):
        """Apply ``limit`` (per task) to a document generator, and record how many documents were read."""
        try:
            # zip stops at the end of the range before asking ``docs`` for one more: a document made (and counted
            # as read) but never passed on would leave the funnel short between the reader and the first step
            yield from docs if self.limit == -1 else (doc for _, doc in zip(range(self.limit), docs))
        finally:
            # one stats update per task, not per document: on short texts they cost as much as the LID call
            self.stat_update("documents", value=self._progress["docs"])
