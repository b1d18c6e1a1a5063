"""Tokenized documents → training rows → batches.

A *segment* is a token range of one document (a whole document unless it was longer than ``seq_len``). A row is
a list of segments:

- ``flatten``: segments best-fit-decreasing into rows of at most ``seq_len`` tokens, with ``position_ids``
  restarting at 0 on every segment. transformers reads the restarts as document boundaries
  (``masking_utils.find_packed_sequence_indices`` for SDPA/eager, the varlen kernels for flash-attention), so no
  token attends across documents. For flash-attention the collator concatenates a batch into ONE sequence
  (nothing padded); for SDPA/eager it keeps the rows (see ``PackedCollator``).
- ``blocks``: the segment stream cut into rows of exactly ``seq_len`` (a document crossing a row end continues
  as a new segment in the next row); collated the same way, with fixed shapes.
- ``pad``: one segment per row, padded to the longest in the batch with an attention mask.

The plan (which segments make which row) is a few numpy arrays; rows are read from the memory-mapped tokenized
shards on demand, so packing never copies the corpus.

DPO pairs are documents too (prompt+chosen then prompt+rejected, never split): ``flatten`` packs whole pairs into
rows, each pair two segments; ``pad`` gives TRL's layout, the chosen sequences then the rejected ones, padded
(``PackedPairs``, ``PairCollator``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE_INDEX = -100


@dataclass
class Plan:
    """Segments (``doc``, ``start``, ``end``) in row order; row ``i`` is ``segments[offsets[i]:offsets[i+1]]``."""

    doc: np.ndarray
    start: np.ndarray
    end: np.ndarray
    offsets: np.ndarray
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = slice(self.offsets[i], self.offsets[i + 1])
        return self.doc[s], self.start[s], self.end[s]


def select_documents(sizes: list[int], weights: list[float], seed: int) -> np.ndarray:
    """Global document indices over the concatenated sources, each source's rows repeated by its weight.

    Weight 2.5 means every row twice plus a random half once more; the result is shuffled (seeded).
    """
    rng = np.random.default_rng(seed)
    picked = []
    offset = 0
    for size, weight in zip(sizes, weights):
        ids = np.arange(offset, offset + size, dtype=np.int64)
        whole, frac = int(weight), weight - int(weight)
        picked += [ids] * whole
        if frac > 0:
            picked.append(rng.choice(ids, size=round(frac * size), replace=False))
        offset += size
    docs = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    rng.shuffle(docs)
    return docs


def segment_documents(docs: np.ndarray, lengths: np.ndarray, seq_len: int, overlong: str, has_loss=None) -> tuple:
    """Documents → segments of at most ``seq_len`` tokens; ``has_loss(doc, start, end)`` vets cut segments (sft)."""
    docs = docs[lengths[docs] > 0]
    n = lengths[docs]
    fits = n <= seq_len
    seg_doc, seg_start, seg_end = [docs[fits]], [np.zeros(int(fits.sum()), np.int64)], [n[fits]]
    stats = {"overlong_documents": int((~fits).sum()), "dropped_documents": 0, "lost_tokens": 0}
    long_docs = []
    for d, length in zip(docs[~fits].tolist(), n[~fits].tolist()):
        if overlong == "drop":
            stats["dropped_documents"] += 1
            stats["lost_tokens"] += length
            continue
        cuts = (
            [(0, seq_len)]
            if overlong == "truncate"
            else [(s, min(s + seq_len, length)) for s in range(0, length, seq_len)]
        )
        kept = [(s, e) for s, e in cuts if has_loss is None or has_loss(d, s, e)]
        stats["lost_tokens"] += length - sum(e - s for s, e in kept)
        stats["dropped_documents"] += not kept
        long_docs += [(d, s, e) for s, e in kept]
    if long_docs:
        extra = np.array(long_docs, dtype=np.int64)
        seg_doc.append(extra[:, 0])
        seg_start.append(extra[:, 1])
        seg_end.append(extra[:, 2])
    return np.concatenate(seg_doc), np.concatenate(seg_start), np.concatenate(seg_end), stats


class _FreeSpace:
    """Bins grouped by free space, with the smallest free space >= a need found in O(log capacity).

    A max segment tree over free-space values 1..capacity: leaf v holds v while some bin has exactly v free.
    """

    def __init__(self, capacity: int):
        self.size = 1 << (capacity - 1).bit_length()
        self.tree = [0] * (2 * self.size)
        self.bins: dict[int, list[int]] = {}

    def _set(self, space: int, value: int) -> None:
        i = self.size + space - 1
        self.tree[i] = value
        i >>= 1
        while i:
            left, right = self.tree[2 * i], self.tree[2 * i + 1]
            self.tree[i] = left if left >= right else right
            i >>= 1

    def add(self, space: int, bin_id: int) -> None:
        if space <= 0:
            return
        stack = self.bins.setdefault(space, [])
        stack.append(bin_id)
        if len(stack) == 1:
            self._set(space, space)

    def take(self, need: int) -> tuple[int, int] | None:
        """The bin with the least free space that still fits ``need``, removed from the index: (bin, space)."""
        if self.tree[1] < need:
            return None
        i = 1
        while i < self.size:
            i = 2 * i if self.tree[2 * i] >= need else 2 * i + 1
        space = i - self.size + 1
        stack = self.bins[space]
        bin_id = stack.pop()
        if not stack:
            self._set(space, 0)
        return bin_id, space


def best_fit_decreasing(lengths: np.ndarray, capacity: int) -> list[list[int]]:
    """Item indices grouped into bins of total length <= capacity (longest first, each into the tightest bin)."""
    free = _FreeSpace(capacity)
    bins: list[list[int]] = []
    for item in np.argsort(-lengths, kind="stable").tolist():
        need = int(lengths[item])
        found = free.take(need)
        if found is None:
            bins.append([item])
            free.add(capacity - need, len(bins) - 1)
        else:
            bin_id, space = found
            bins[bin_id].append(item)
            free.add(space - need, bin_id)
    return bins


def _cut_blocks(doc, start, end, seq_len: int):
    """The segment stream cut into rows of exactly seq_len tokens (the last row may be shorter)."""
    out_doc, out_start, out_end, offsets = [], [], [], [0]
    room = seq_len
    for d, s, e in zip(doc.tolist(), start.tolist(), end.tolist()):
        while s < e:
            take = min(room, e - s)
            out_doc.append(d)
            out_start.append(s)
            out_end.append(s + take)
            s += take
            room -= take
            if room == 0:
                offsets.append(len(out_doc))
                room = seq_len
    if room < seq_len:
        offsets.append(len(out_doc))
    as_array = lambda x: np.array(x, dtype=np.int64)  # noqa: E731
    return as_array(out_doc), as_array(out_start), as_array(out_end), as_array(offsets)


def build_plan(
    docs: np.ndarray, lengths: np.ndarray, seq_len: int, packing: str, overlong: str, has_loss=None
) -> Plan:
    doc, start, end, stats = segment_documents(docs, lengths, seq_len, overlong, has_loss)
    if packing == "flatten":
        bins = best_fit_decreasing(end - start, seq_len)
        order = np.array([i for b in bins for i in b], dtype=np.int64)
        offsets = np.cumsum([0] + [len(b) for b in bins], dtype=np.int64)
        doc, start, end = doc[order], start[order], end[order]
    elif packing == "blocks":
        doc, start, end, offsets = _cut_blocks(doc, start, end, seq_len)
    else:
        offsets = np.arange(len(doc) + 1, dtype=np.int64)
    tokens = int((end - start).sum())
    rows = len(offsets) - 1
    stats.update(
        documents=len(docs),
        segments=len(doc),
        tokens=tokens,
        rows=rows,
        # How full the rows are: the padding-free modes compute exactly these tokens, so this is what a fixed
        # [rows, seq_len] layout would waste; `pad` pays its padding per batch instead (measured in training).
        row_fill=tokens / (rows * seq_len) if rows else 0.0,
    )
    return Plan(doc, start, end, offsets, stats)


class PackedDataset:
    """Row ``i`` of a plan, read from the tokenized (memory-mapped) documents: input_ids, labels, seq_lengths."""

    def __init__(self, tokens, plan: Plan):
        if getattr(tokens, "_indices", None) is not None:
            tokens = tokens.flatten_indices()
        self.tokens = tokens
        self.plan = plan
        self._table = None

    @property
    def table(self):
        if self._table is None:
            self._table = self.tokens.data.table
        return self._table

    def __getstate__(self):
        # Dataloader workers get the memory-mapped dataset (pickled as its file paths), not a copy of the table.
        return {**self.__dict__, "_table": None}

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> dict:
        import pyarrow as pa
        import pyarrow.compute as pc

        docs, starts, ends = self.plan.row(int(i))
        unique, where = np.unique(docs, return_inverse=True)
        rows = self.table.take(pa.array(unique))
        ids_col = rows.column("input_ids").combine_chunks()
        mask_col = rows.column("loss_mask").combine_chunks()
        offsets = np.concatenate([[0], np.cumsum(pc.list_value_length(ids_col).to_numpy())])
        ids_flat = ids_col.flatten().to_numpy()
        mask_flat = mask_col.flatten().to_numpy()
        pieces_ids, pieces_mask = [], []
        for w, s, e in zip(where.tolist(), starts.tolist(), ends.tolist()):
            base = offsets[w]
            pieces_ids.append(ids_flat[base + s : base + e])
            pieces_mask.append(mask_flat[base + s : base + e])
        input_ids = np.concatenate(pieces_ids).astype(np.int64)
        labels = np.where(np.concatenate(pieces_mask) > 0, input_ids, IGNORE_INDEX)
        return {"input_ids": input_ids, "labels": labels, "seq_lengths": (ends - starts).astype(np.int64)}


@dataclass
class PackedCollator:
    """Rows → one model batch.

    ``flatten``/``blocks`` pass position_ids that restart on every segment and no attention mask (its absence is
    what lets transformers detect the packing). With ``varlen`` (flash-attention) the rows are concatenated into one
    ``[1, T]`` sequence: the kernels skip the masked blocks, so nothing is padded. Otherwise (SDPA, eager) the rows
    stay rows, ``[B, longest row]``: attention costs B·L² and the mask B·L² booleans instead of (B·L)² for one long
    sequence; a row shorter than the longest is filled with a segment of pad tokens (own positions, no labels)
    that no real token can see, since it comes last. ``pad``: one document per row, padded, with a mask.
    ``num_real_tokens`` is for the trainer's accounting; the trainer takes it out before the forward pass.
    """

    packing: str
    pad_token_id: int
    varlen: bool = False

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        if self.packing == "pad":
            longest = max(len(r["input_ids"]) for r in rows)
            input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
            labels = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
            attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
            for i, r in enumerate(rows):
                n = len(r["input_ids"])
                input_ids[i, :n] = torch.from_numpy(r["input_ids"])
                labels[i, :n] = torch.from_numpy(r["labels"])
                attention_mask[i, :n] = 1
            return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
        real = sum(len(r["input_ids"]) for r in rows)
        if self.varlen:
            lengths = np.concatenate([r["seq_lengths"] for r in rows])
            rows = [
                {k: np.concatenate([r[k] for r in rows]) for k in ("input_ids", "labels")} | {"seq_lengths": lengths}
            ]
        width = max(len(r["input_ids"]) for r in rows)
        input_ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
        labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
        position_ids = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            input_ids[i, :n] = r["input_ids"]
            labels[i, :n] = r["labels"]
            position_ids[i] = np.concatenate([np.arange(k) for k in [*r["seq_lengths"], width - n] if k])
        # The model shifts labels left, so a segment's first label would be predicted from the previous segment's
        # last token: never train that.
        labels[position_ids == 0] = IGNORE_INDEX
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "labels": torch.from_numpy(labels),
            "position_ids": torch.from_numpy(position_ids),
            # transformers derives document boundaries from position_ids only without a KV cache; a model whose
            # config says use_cache=True would otherwise build one and attend across documents without a word.
            "use_cache": False,
            "num_real_tokens": torch.tensor(real),
        }
        if self.varlen:
            # Given here (on CPU), the varlen kernels need no device→host sync to find the boundaries per layer.
            cu = torch.from_numpy(np.concatenate([[0], np.cumsum(rows[0]["seq_lengths"])])).to(torch.int32)
            batch.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=int(rows[0]["seq_lengths"].max()))
            batch["max_length_k"] = batch["max_length_q"]
        return batch


class PackedPairs(PackedDataset):
    """Row ``i`` of a plan over tokenized preference pairs (whole pairs, see ``TokenizePairs``): as ``PackedDataset``,
    with each pair split into its two sequences (``seq_lengths``: chosen₁, rejected₁, chosen₂, ...), ``pairs`` (the
    tokenized rows' indices) and, once ``reference`` is set (an ``[n_pairs, 2]`` array of precomputed reference
    log-probabilities), the pairs' rows of it."""

    def __init__(self, tokens, plan: Plan, reference: np.ndarray | None = None):
        super().__init__(tokens, plan)
        self.reference = reference

    def __getitem__(self, i: int) -> dict:
        import pyarrow as pa

        row = super().__getitem__(i)
        docs = self.plan.row(int(i))[0]
        chosen = self.table.column("chosen_length").take(pa.array(docs)).to_numpy().astype(np.int64)
        row["seq_lengths"] = np.stack([chosen, row["seq_lengths"] - chosen], axis=1).reshape(-1)
        row["pairs"] = docs.astype(np.int64)
        if self.reference is not None:
            row["reference"] = self.reference[docs]
        return row


@dataclass
class PairCollator:
    """Packed pair rows → one model batch for the DPO loss: the ``PackedCollator`` batch plus ``sequence_ids``, the
    sequence each position belongs to (chosen of the batch's pair j: j, its rejected: P + j, for P pairs; -1 on
    padding and filler), ``num_sequences`` (2P), and ``ref_logps`` (``[2P]``, the same order) when the rows carry
    precomputed ones."""

    packing: str
    pad_token_id: int
    varlen: bool = False

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        n_pairs = sum(len(r["pairs"]) for r in rows)
        sequences = []  # per collated row: (sequence ids per position)
        index = 0
        if self.packing == "pad":  # TRL's layout: every chosen sequence, then every rejected one, one per row
            singles = [[], []]
            for r in rows:
                start = 0
                for k, n in enumerate(r["seq_lengths"].tolist()):
                    part = slice(start, start + n)
                    singles[k % 2].append({key: r[key][part] for key in ("input_ids", "labels")})
                    start += n
            model_rows = [*singles[0], *singles[1]]
            for k, r in enumerate(model_rows):
                r["seq_lengths"] = np.array([len(r["input_ids"])])
                sequences.append(np.full(len(r["input_ids"]), k, dtype=np.int64))
            batch = PackedCollator("pad", self.pad_token_id)(model_rows)
        else:
            for r in rows:
                ids = []
                for k, n in enumerate(r["seq_lengths"].tolist()):
                    pair = index + k // 2
                    ids.append(np.full(n, pair if k % 2 == 0 else n_pairs + pair, dtype=np.int64))
                index += len(r["pairs"])
                sequences.append(np.concatenate(ids))
            if self.varlen:
                sequences = [np.concatenate(sequences)]
            batch = PackedCollator(self.packing, self.pad_token_id, self.varlen)(rows)
        width = batch["input_ids"].shape[1]
        sequence_ids = np.full((len(sequences), width), -1, dtype=np.int64)
        for k, ids in enumerate(sequences):
            sequence_ids[k, : len(ids)] = ids
        batch["sequence_ids"] = torch.from_numpy(sequence_ids)
        batch["num_sequences"] = 2 * n_pairs
        if "reference" in rows[0]:
            reference = np.concatenate([r["reference"] for r in rows])  # [P, 2]: (chosen, rejected) per pair
            batch["ref_logps"] = torch.from_numpy(np.concatenate([reference[:, 0], reference[:, 1]]))
        return batch
