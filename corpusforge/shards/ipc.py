"""Arrow shards readable as both IPC formats: a stream (what `datasets` reads) followed by a file-format footer.

`datasets.load_from_disk` reads shards with ``pyarrow.ipc.open_stream``, which stops at the end-of-stream marker.
`polars.scan_ipc`, ``pyarrow.ipc.open_file`` and ``pyarrow.dataset(format="arrow")`` read the *file* format,
located from the end: ``<footer flatbuffer><int32 footer length>ARROW1``. The file format is the stream format
plus a leading ``ARROW1\\0\\0`` and that trailing footer, whose blocks give each record batch's byte offset. So we
write the stream, and append the footer of the same batches with every block offset moved 8 bytes back (there is
no leading magic). Readers of either format then open the same file; the tests check all of them.

The footer comes from a second ``pyarrow.ipc.new_file`` writer fed the same batches into a sink that counts bytes
and keeps only what follows the stream part.
"""

from __future__ import annotations

import struct

import pyarrow as pa

FILE_MAGIC_PADDED = 8  # b"ARROW1\0\0" at the start of a file-format file


class _TailSink:
    """A write-only sink that discards bytes but counts them, and keeps those from ``keep_from`` on."""

    closed = False

    def __init__(self):
        self.written = 0
        self.keep_from: int | None = None
        self.kept = bytearray()

    def write(self, data) -> int:
        data = memoryview(data)
        if self.keep_from is not None and self.written + len(data) > self.keep_from:
            self.kept += data[max(0, self.keep_from - self.written) :]
        self.written += len(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        self.closed = True

    def tell(self) -> int:
        return self.written

    def writable(self) -> bool:
        return True


def shift_footer_blocks(footer: bytearray, delta: int) -> int:
    """Add ``delta`` to the offset of every Block in an IPC ``Footer`` flatbuffer; returns how many were moved.

    Footer fields (Arrow's File.fbs): 0 version, 1 schema, 2 dictionaries [Block], 3 recordBatches [Block];
    a Block is a 24-byte struct {offset: int64, metaDataLength: int32, (pad), bodyLength: int64}.
    """
    table = struct.unpack_from("<I", footer, 0)[0]
    vtable = table - struct.unpack_from("<i", footer, table)[0]
    n_fields = (struct.unpack_from("<H", footer, vtable)[0] - 4) // 2
    moved = 0
    for field in (2, 3):
        if field >= n_fields:
            continue
        field_offset = struct.unpack_from("<H", footer, vtable + 4 + 2 * field)[0]
        if field_offset == 0:
            continue
        vector = table + field_offset + struct.unpack_from("<I", footer, table + field_offset)[0]
        for i in range(struct.unpack_from("<I", footer, vector)[0]):
            position = vector + 4 + 24 * i
            struct.pack_into("<q", footer, position, struct.unpack_from("<q", footer, position)[0] + delta)
            moved += 1
    return moved


class DualFormatWriter:
    """Write record batches as an Arrow stream to ``sink``; ``close()`` appends the file-format footer."""

    def __init__(self, sink, schema: pa.Schema):
        self.sink = sink
        self.stream = pa.ipc.new_stream(sink, schema)
        self.tail = _TailSink()
        self.file = pa.ipc.new_file(pa.PythonFile(self.tail, mode="w"), schema)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.stream.write_batch(batch)
        self.file.write_batch(batch)

    def close(self) -> bool:
        """Finish both; returns False (plain stream, still valid for `datasets`) if the footer did not line up."""
        self.stream.close()
        stream_length = self.sink.tell()
        self.tail.keep_from = FILE_MAGIC_PADDED + stream_length
        self.file.close()
        tail = self.tail.kept
        if self.tail.written != FILE_MAGIC_PADDED + stream_length + len(tail) or not tail.endswith(b"ARROW1"):
            return False
        footer_length = struct.unpack_from("<i", tail, len(tail) - 10)[0]
        footer = bytearray(tail[:footer_length])
        shift_footer_blocks(footer, -FILE_MAGIC_PADDED)
        self.sink.write(bytes(footer) + bytes(tail[footer_length:]))
        return True
