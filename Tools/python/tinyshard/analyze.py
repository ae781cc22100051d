"""What a teacher pass knows (Spec/ANALYZE.md), with numpy alone: agreement with the image store's labels
(overall, per epoch, per class, per image), the hard samples, the probability mass each top-k keeps, and the
class correlations of the teacher's soft labels.

    result = analyze("pass", images="digits.tsimg")      # an AnalysisResult
    write_report(result, "out", class_names)            # analysis.json, hard_samples.tsv / .json,
                                                        # mass_by_k.tsv, correlation.npy, correlation.svg
    tinyshard-py analyze pass --images digits.tsimg --out out [--hard-share 0.5] [--json]

The numbers are Swift's `tinyshard analyze`'s for the same folder (counts, shares and histogram
percentiles exactly, float64 sums up to their summation order); analysis.json has the same fields.
Two things are the Swift tool's alone: a student's correlation (`--model W --arch A`, which replays every
used record's view through a TinyViT) and the contact sheet of hard samples (hard_samples.png). Bytes per
record of each top k are this package's writer's (ANALYZE.md 3: writer-dependent, not compared).

Two passes over the records, as ANALYZE.md reads them (epochs ascending, shards by ascending rank,
ordinals ascending), each block checked and decoded whole and handled a chunk of records at a time with
array operations: memory is per key (a few counters), per class and per class pair of the correlation
matrix, never per record. The first pass counts agreement, the mass histograms and top-1 frequencies;
the second sums the correlation (every m-th record) and the values of the hard images' records.
"""

import dataclasses
import json
import os

import numpy as np

from . import format as F
from ._keyvec import KeyBuffer, match, padded
from .codec import decode_block, encode_block
from .dataset import Dataset
from .errors import ShardError
from .layout import read_block

BINS = 4096                          # mass histogram bins (ANALYZE.md 3)
PERCENTILES = (10, 50, 90)
BYTES_SAMPLE_RECORDS = 16_384        # records whose top-k bytes are measured (ANALYZE.md 3)
CORRELATION_BUDGET = 1 << 31         # N·K² above this: every m-th record (ANALYZE.md 4)
MAX_CORRELATION_CLASSES = 4096
HEATMAP_CLASSES = 100
TOP_PAIRS = 20
HARD_CANDIDATES = 3
CHUNK_ENTRIES = 1 << 20              # records x K per chunk: numpy's cost per call is paid per chunk
PAIR_TERMS = 1 << 21                 # records x K² per step of the correlation's pair sums (16 MiB each)
NO_LABELS = "agreement and hard samples: no image store (labels) was given"


class AnalyzeError(ValueError):
    """Input analyze cannot use: a logit or unsorted shard, a store that lacks a dataset key or a label, a
    class count that differs. One line naming the file (and the key)."""

    def __init__(self, code, message, file=None):
        self.code, self.message, self.file = code, message, file
        super().__init__(f"{file}: [{code}] {message}" if file else f"[{code}] {message}")


records_per_block = F.default_records_per_block


@dataclasses.dataclass
class AnalysisResult:
    """`data`: analysis.json's object (Swift's AnalysisResult field names); `matrix`: the correlation,
    float64 (W, W) over data["correlation_classes"]; `top_one`: how often each class is a record's top 1
    (int64 (C,): the heatmap's classes are the most frequent)."""

    data: dict
    matrix: np.ndarray
    top_one: np.ndarray = None

    def __getitem__(self, name):
        return self.data[name]


# ---- reading ---------------------------------------------------------------------------------------


def _entries_in_reading_order(dataset):
    """[(epoch, manifest entry)]: epochs ascending, shards by ascending rank."""
    return [(epoch, entry) for epoch in dataset.epochs()
            for entry in sorted((e for e in dataset.manifest.shards if e.epoch == epoch), key=lambda e: e.rank)]


def _chunks(dataset):
    """(epoch, position, ids int64 (n,), indices int64 (n, K), values float16 (n, K), sums float64 (n,)) of
    every record in reading order, a chunk of whole blocks of one shard at a time; position is the first
    record's place in the reading order. Each block is checked (frame, checksums, every record's content
    rules, ids below the key count) as the readers check it."""
    position = 0
    keys = len(dataset.keys)
    for epoch, entry in _entries_in_reading_order(dataset):
        reader = dataset.reader(entry)
        header = reader.header
        per_chunk = max(1, CHUNK_ENTRIES // header.k)
        pending, held = [], 0
        for b in range(reader.layout.blocks):
            try:
                raw = read_block(reader._buf, reader.layout, b)
            except ShardError as exc:
                raise exc.located(file=reader.path) from None
            block = decode_block(header, raw.first, raw.n, raw.sections)
            if block.problems:
                code, row, message = block.problems[0]
                raise ShardError(code, message, file=reader.path, block=b, record=raw.first + row)
            beyond = np.flatnonzero(block.ids >= keys)
            if len(beyond):
                at = int(beyond[0])
                raise ShardError("manifest-mismatch", f"sample id {int(block.ids[at])} >= key count {keys}",
                                 file=reader.path, block=b, record=raw.first + at)
            pending.append(block)
            held += raw.n
            if held >= per_chunk or b == reader.layout.blocks - 1:
                yield (epoch, position, np.concatenate([p.ids for p in pending]).astype(np.int64),
                       np.concatenate([p.indices for p in pending]), np.concatenate([p.values for p in pending]),
                       np.concatenate([p.sums for p in pending]))
                position += held
                pending, held = [], 0


def _store_labels(dataset, store):
    """int32 label (-1: none) of every sample id, from the store image with its key, matched in bulk;
    AnalyzeError naming the first dataset key the store lacks."""
    if store.classes != 0 and store.classes != dataset.classes:
        raise AnalyzeError("mismatch", f"the store has {store.classes} classes, the shards {dataset.classes}",
                           file=store.path)
    table = dataset.keys.all_keys()
    store._mapped()
    # The store's keys in its own key bytes (no Python string per key), as a table to match against.
    entries = store._entries
    stored = KeyBuffer(padded(np.frombuffer(store._key_blob, np.uint8)), entries["key_offset"].astype(np.int64),
                       entries["key_length"].astype(np.int64))
    rows = match(stored, table.buffer())
    missing = np.flatnonzero(rows < 0)
    if len(missing):
        raise AnalyzeError("mismatch", f"the store has no image with the dataset's key {table[int(missing[0])]!r}",
                           file=store.path)
    return store.labels()[rows].astype(np.int32)


# ---- the two passes ----------------------------------------------------------------------------------


class _FirstPass:
    """ANALYZE.md 1–3: agreement per epoch, class and image; the mass-by-k histograms and sums; how often
    each class is the teacher's top 1."""

    def __init__(self, classes, k, keys, epochs, labels, key_of, store_path=None):
        self.classes, self.k, self.n = classes, k, min(5, k)
        self.labels, self.key_of, self.store_path = labels, key_of, store_path
        self.epoch_slot = {epoch: i for i, epoch in enumerate(epochs)}
        self.per_epoch = np.zeros((len(epochs), 3), np.int64)          # records, top-1, top-n
        labelled = labels is not None
        self.per_class = np.zeros((classes if labelled else 0, 3), np.int64)
        # Per sample id: records, top-1 records, records whose label is outside the top n.
        self.image = np.zeros((3, keys if labelled else 0), np.uint32)
        self.top_one = np.zeros(classes, np.int64)
        self.histogram = np.zeros((k, BINS), np.int64)
        self.mass_sum = np.zeros(k)
        self.residual_sum = np.zeros(k)
        # Residual of mass_r(k): max(0, 1 - mass) / (C - k) for k < C, nothing at k = C.
        self.others = classes - np.arange(1, k + 1)
        self.records = 0

    def add(self, epoch, ids, indices, values):
        k, count = self.k, len(ids)
        # Cumulative sums of float16 values in float64 are exact (multiples of 2^-24 below K + 1), so
        # numpy's order of summation is the record's own.
        mass = np.cumsum(values.astype(np.float64), axis=1)
        bins = np.minimum(BINS - 1, np.floor(mass * BINS).astype(np.int64))      # mass · 4096: exact
        bins += np.arange(k) * BINS
        self.histogram += np.bincount(bins.ravel(), minlength=k * BINS).reshape(k, BINS)
        self.mass_sum += mass.sum(axis=0)
        cut = self.others > 0
        self.residual_sum[cut] += (np.maximum(0.0, 1.0 - mass[:, cut]) / self.others[cut]).sum(axis=0)
        self.top_one += np.bincount(indices[:, 0], minlength=self.classes)
        self.records += count
        e = self.epoch_slot[epoch]
        if self.labels is None:
            self.per_epoch[e, 0] += count
            return
        label = self.labels[ids]
        if (label < 0).any():
            sample = int(ids[np.argmax(label < 0)])
            raise AnalyzeError("no-label", f"the image of the dataset's key {self.key_of(sample)!r} (sample "
                               f"{sample}) has no label", file=self.store_path)
        top1 = indices[:, 0] == label
        top_n = (indices[:, :self.n] == label[:, None]).any(axis=1)
        self.per_epoch[e] += (count, int(top1.sum()), int(top_n.sum()))
        for column, chosen in ((0, label), (1, label[top1]), (2, label[top_n])):
            self.per_class[:, column] += np.bincount(chosen, minlength=self.classes)
        for row, chosen in ((0, ids), (1, ids[top1]), (2, ids[~top_n])):
            np.add.at(self.image[row], chosen, 1)

    def hard_images(self, share):
        """Sample ids of the hard images (ANALYZE.md 2), ascending."""
        records, misses = self.image[0], self.image[2]
        seen = records > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.flatnonzero(seen & (misses / np.maximum(records, 1) >= share))

    def correlation_classes(self, limit):
        """All classes, or the `limit` most frequent top-1 classes (ties to the lower index), ascending."""
        if self.classes <= limit:
            return np.arange(self.classes)
        order = np.lexsort((np.arange(self.classes), -self.top_one))
        return np.sort(order[:limit])

    def percentile(self, p, j):
        """(b + 1) / 4096, b the bin of the record of rank ⌈p/100 · N⌉ (integers: no rounding)."""
        rank = max(1, -(-p * self.records // 100))
        seen = np.cumsum(self.histogram[j])
        if not len(seen) or seen[-1] < rank:
            return 1.0
        return (int(np.searchsorted(seen, rank)) + 1) / BINS


class _SecondPass:
    """ANALYZE.md 2 and 4: the correlation sums over every `stride`-th record (from the sparse form), and
    the value sums of the hard images' three candidate classes."""

    def __init__(self, classes, k, selected, stride, hard, keys):
        self.classes, self.k, self.stride = classes, k, stride
        self.selected = np.asarray(selected, np.int64)
        width = len(self.selected)
        self.width = width
        self.position = np.full(classes, -1, np.int64)
        self.position[self.selected] = np.arange(width)
        self.used = 0
        self.sum_r = self.sum_r2 = 0.0
        self.sum_d, self.sum_rd = np.zeros(width), np.zeros(width)
        self.sum_dd = np.zeros(width * width)
        self.hard = np.asarray(hard, np.int64)
        self.slot = np.full(keys if len(hard) else 0, -1, np.int64)
        self.slot[self.hard] = np.arange(len(hard))
        self.candidates = np.full((len(hard), HARD_CANDIDATES), -1, np.int64)
        self.candidate_sums = np.zeros((len(hard), HARD_CANDIDATES))

    def add(self, start, ids, indices, values, sums):
        v = values.astype(np.float64)
        if len(self.hard):
            self._candidates(ids, indices, v)
        first = (-start) % self.stride
        if first < len(ids):
            rows = np.arange(first, len(ids), self.stride)
            self._correlation(indices[rows], v[rows], sums[rows])

    def _candidates(self, ids, indices, v):
        rows = np.flatnonzero(self.slot[ids] >= 0)
        if not len(rows):
            return
        slots = self.slot[ids[rows]]
        fresh = self.candidates[slots, 0] < 0
        if fresh.any():
            # The image's first record in reading order names its candidates: its top 3 entries.
            named, first = np.unique(slots[fresh], return_index=True)
            take = min(HARD_CANDIDATES, self.k)
            self.candidates[named, :take] = indices[rows[fresh][first], :take]
        # A record's K indices are distinct: each candidate matches at most one entry (-1 none).
        found = indices[rows][:, None, :] == self.candidates[slots][:, :, None]
        np.add.at(self.candidate_sums, slots, (found * v[rows][:, None, :]).sum(axis=2))

    def _correlation(self, indices, v, sums):
        count, k, width = len(indices), self.k, self.width
        self.used += count
        # x = r·1 + d: r the section-7 residual (float32, widened), d_j = v_j - r at the stored classes.
        if k < self.classes:
            r = (np.maximum(0.0, 1.0 - sums) / (self.classes - k)).astype(np.float32).astype(np.float64)
        else:
            r = np.zeros(count)
        self.sum_r += float(r.sum())
        self.sum_r2 += float((r * r).sum())
        at = self.position[indices]
        inside = at >= 0
        d = np.where(inside, v - r[:, None], 0.0)
        at = np.where(inside, at, 0)                        # outside classes add 0 to bin 0
        self.sum_d += np.bincount(at.ravel(), weights=d.ravel(), minlength=width)
        self.sum_rd += np.bincount(at.ravel(), weights=(r[:, None] * d).ravel(), minlength=width)
        step = max(1, PAIR_TERMS // (k * k))
        for lo in range(0, count, step):
            a, da = at[lo:lo + step], d[lo:lo + step]
            flat = (a[:, :, None] * width + a[:, None, :]).ravel()
            terms = (da[:, :, None] * da[:, None, :]).ravel()
            if len(flat) * 4 >= width * width:
                self.sum_dd += np.bincount(flat, weights=terms, minlength=width * width)
            else:                                           # fewer terms than bins: no W² temporary
                np.add.at(self.sum_dd, flat, terms)

    def correlation(self):
        """Pearson correlations of the selected classes, (W, W), 0 where a variance is not positive. In
        place over two W x W arrays (at W = 4,096 each is 128 MiB), in Swift's order of operations."""
        width, n = self.width, float(self.used)
        if not self.used:
            return np.zeros((width, width))
        s = self.sum_r + self.sum_d
        # S_ij = ((Σr² + Σr·d_i) + Σr·d_j) + Σd_i d_j
        out = (self.sum_r2 + self.sum_rd)[:, None] + self.sum_rd[None, :]
        out += self.sum_dd.reshape(width, width)
        variance = np.diagonal(out) - s * s / n
        scratch = np.multiply.outer(s, s)
        scratch /= n
        out -= scratch
        np.multiply.outer(variance, variance, out=scratch)
        np.sqrt(scratch, out=scratch)
        with np.errstate(invalid="ignore", divide="ignore"):
            out /= scratch
        flat = variance <= 0
        out[flat, :] = 0.0
        out[:, flat] = 0.0
        return out


def _top_pairs(matrix, classes, count=TOP_PAIRS):
    """The `count` pairs i < j by correlation descending, then (i, j) ascending: per block of rows, the
    block's own top `count` right of the diagonal, then one sort of those few."""
    width, step = len(matrix), 256
    rows, cols = [], []
    for lo in range(0, width, step):
        hi = min(width, lo + step)
        block = matrix[lo:hi, lo:].copy()                  # columns j >= lo
        block[np.tril_indices(hi - lo, 0, width - lo)] = -np.inf      # j <= i
        flat = block.ravel()
        if len(flat) > count:
            kth = np.partition(flat, len(flat) - count)[len(flat) - count]
            above = np.flatnonzero(flat > kth)
            # Of the entries equal to the count-th largest, the first in (i, j) order are the ones a tie
            # keeps (many classes no record holds are all exactly 1 apart: millions of ties).
            at = np.concatenate([above, np.flatnonzero(flat == kth)[:count - len(above)]])
            at = at[flat[at] > -np.inf]
        else:
            at = np.flatnonzero(flat > -np.inf)
        rows.append(lo + at // (width - lo))
        cols.append(lo + at % (width - lo))
    a, b = np.concatenate(rows), np.concatenate(cols)
    value = matrix[a, b]
    order = np.lexsort((b, a, -value))[:count]
    return [{"a": int(classes[a[o]]), "b": int(classes[b[o]]), "correlation": float(value[o])} for o in order]


# ---- bytes per record --------------------------------------------------------------------------------


def _shard_bytes(header, ids, aug, indices, bits):
    """The size of the shard ShardWriter writes for these records with this header: preamble and header,
    blocks of R records (codec.encode_block, the writer's own encoder), index, footer. Computed without a
    file, a block at a time: the writer checks and buffers records one Python call each, which for the
    K·16,384 records measured costs minutes at K = 100 (tests/test_analyze.py holds the two equal)."""
    size = len(F.pack_preamble_and_header(header))
    per_block = header.records_per_block
    blocks = 0
    for lo in range(0, len(ids), per_block):
        hi = lo + per_block
        size += len(encode_block(header, lo, ids[lo:hi], aug[lo:hi], indices[lo:hi], bits[lo:hi]))
        blocks += 1
    return size + F.index_length(blocks) + len(F.pack_footer(blocks, 0, len(ids)))


def _bytes_per_record(dataset, wanted=BYTES_SAMPLE_RECORDS):
    """ANALYZE.md 3: the first min(N_0, wanted) records of the first epoch, truncated to k entries, as one
    shard of this package's writer with its block size for K = k, divided by the records; [] without one."""
    epochs = dataset.epochs()
    if not epochs:
        return []
    first = [entry for epoch, entry in _entries_in_reading_order(dataset) if epoch == epochs[0]]
    parts = {"ids": [], "aug": [], "indices": [], "values": []}
    held = 0
    for entry in first:
        reader = dataset.reader(entry)
        for b in range(reader.layout.blocks):
            if held >= wanted:
                break
            raw = read_block(reader._buf, reader.layout, b)
            block = decode_block(reader.header, raw.first, raw.n, raw.sections)
            take = min(raw.n, wanted - held)
            for name in parts:
                parts[name].append(getattr(block, name)[:take])
            held += take
    if not held:
        return []
    ids, aug, indices, values = (np.concatenate(parts[name]) for name in ("ids", "aug", "indices", "values"))
    template = dataset.reader(first[0]).header
    out = []
    for k in range(1, dataset.k + 1):
        header = dataclasses.replace(template, k=k, records_per_block=records_per_block(k))
        out.append(_shard_bytes(header, ids, aug, np.ascontiguousarray(indices[:, :k]),
                                np.ascontiguousarray(values[:, :k]).view(np.uint16)) / held)
    return out


# ---- the analysis -----------------------------------------------------------------------------------


def _agreement(counts):
    records, top1, top_n = (int(c) for c in counts)
    return {"records": records, "top1": top1 / records if records else 0.0,
            "topN": top_n / records if records else 0.0}


def _image_agreement(first):
    records, top1, misses = (a.astype(np.int64) for a in first.image)
    seen = records > 0
    m, t, miss = records[seen], top1[seen], misses[seen]
    images = int(seen.sum())
    # Bins ⌊10 · share⌋ (share 1 in bin 9) from the integers, so no rounding of t / m can move a bin.
    return {"images": images,
            "meanTop1Share": float((t / m).sum()) / max(1, images),
            "meanTopNShare": float(((m - miss) / m).sum()) / max(1, images),
            "top1Histogram": np.bincount(np.minimum(9, 10 * t // m), minlength=10).tolist(),
            "topNHistogram": np.bincount(np.minimum(9, 10 * (m - miss) // m), minlength=10).tolist()}


def analyze(dataset, images=None, hard_share=0.5, bytes_records=BYTES_SAMPLE_RECORDS,
            max_correlation_classes=MAX_CORRELATION_CLASSES, correlation_budget=CORRELATION_BUDGET):
    """ANALYZE.md over a dataset folder (or Dataset) and optionally its image store (path or ImageStore):
    an AnalysisResult. Raises AnalyzeError for a logit or unsorted shard (naming it), a store without a
    dataset key or without a label for a sample with records (naming the key), a class-count mismatch;
    ShardError for a damaged shard. A student's correlation (ANALYZE.md 4, `--model W --arch A`) is the
    Swift tool's only: it needs the student's forward pass on every used record's replayed view, so
    `student_similarity` never appears here. `bytes_records` = 0 skips the bytes per record;
    `max_correlation_classes` and `correlation_budget` are the spec's 4,096 and 2^31 (smaller in tests)."""
    if not 0 <= hard_share <= 1:
        raise AnalyzeError("invalid-argument", f"the hard share must be in 0...1, got {hard_share}")
    dataset = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    classes, k = dataset.classes, dataset.k
    order = _entries_in_reading_order(dataset)
    for _, entry in order:
        header = dataset.reader(entry).header
        if header.value_kind != "probability" or not header.sorted:
            raise AnalyzeError("invalid-argument", "analyze reads sorted probability shards; this one stores "
                               + ("logits" if header.value_kind != "probability" else "unsorted values"),
                               file=dataset.reader(entry).path)
    store = None
    if images is not None:
        from .imagestore import ImageStore
        store = images if isinstance(images, ImageStore) else ImageStore(images, pixel_check="never")
    labels = _store_labels(dataset, store) if store is not None else None
    epochs = dataset.epochs()
    key_count = len(dataset.keys)
    first = _FirstPass(classes, k, key_count, epochs, labels, lambda sample: dataset.keys[sample],
                       store.path if store is not None else None)
    for epoch, _, ids, indices, values, _ in _chunks(dataset):
        first.add(epoch, ids, indices, values)
    total = first.records
    hard = first.hard_images(hard_share) if labels is not None else np.zeros(0, np.int64)
    selected = first.correlation_classes(max_correlation_classes)
    stride = max(1, -(-total * k * k // correlation_budget))
    second = _SecondPass(classes, k, selected, stride, hard, key_count)
    for _, position, ids, indices, values, sums in _chunks(dataset):
        second.add(position, ids, indices, values, sums)
    matrix = second.correlation()
    bytes_per_record = _bytes_per_record(dataset, bytes_records) if bytes_records else []

    labelled = labels is not None
    data = {"records": total, "classes": classes, "k": k, "n": first.n, "hard_share_threshold": float(hard_share)}
    if labelled:
        data["overall"] = _agreement(first.per_epoch.sum(axis=0))
        data["per_image"] = _image_agreement(first)
        data["hard_image_share"] = len(hard) / max(1, int((first.image[0] > 0).sum()))
    data["per_epoch"] = ([{"epoch": int(e), "agreement": _agreement(c)} for e, c in zip(epochs, first.per_epoch)]
                         if labelled else [])
    data["per_class"] = [{"label": int(c), "agreement": _agreement(first.per_class[c])}
                         for c in np.flatnonzero(first.per_class[:, 0] > 0)] if labelled else []
    samples = []
    keys = dataset.keys.all_keys() if len(hard) else None       # one pass over the table, not a page a key
    for slot, sample in enumerate(hard.tolist()):
        m = int(first.image[0, sample])
        named = [(int(c), float(s) / m) for c, s in zip(second.candidates[slot], second.candidate_sums[slot]) if c >= 0]
        named.sort(key=lambda pair: (-pair[1], pair[0]))
        samples.append({"sampleID": int(sample), "key": keys[sample], "label": int(labels[sample]),
                        "records": m, "missShare": int(first.image[2, sample]) / m,
                        "topClasses": [c for c, _ in named], "topMeans": [mean for _, mean in named]})
    samples.sort(key=lambda s: (-s["missShare"], s["key"].encode("utf-8")))
    data["hard_samples"] = samples
    rows = []
    for j in range(k):
        row = {"k": j + 1, "mean": float(first.mass_sum[j]) / max(1, total)}
        for p in PERCENTILES:
            row[f"p{p}"] = first.percentile(p, j)
        row["residual"] = float(first.residual_sum[j]) / max(1, total)
        if j < len(bytes_per_record):
            row["bytesPerRecord"] = bytes_per_record[j]
        rows.append(row)
    data["mass_by_k"] = rows
    data["correlation_records"] = second.used
    data["correlation_stride"] = stride
    data["correlation_classes"] = [int(c) for c in selected]
    data["top_pairs"] = _top_pairs(matrix, selected)
    data["skipped"] = [] if labelled else [NO_LABELS]
    return AnalysisResult(data=data, matrix=matrix, top_one=first.top_one)


# ---- the report ----------------------------------------------------------------------------------------


def _name(c, names):
    return names[c] if c < len(names) and names[c] else str(c)


def hard_samples_tsv(result, names=()):
    lines = ["key\tlabel\tmiss_share\trecords\ttop_classes"]
    for s in result["hard_samples"]:
        top = ", ".join(f"{_name(c, names)} {mean:.4f}" for c, mean in zip(s["topClasses"], s["topMeans"]))
        lines.append(f"{s['key']}\t{_name(s['label'], names)}\t{s['missShare']:.4f}\t{s['records']}\t{top}")
    return "\n".join(lines) + "\n"


def mass_tsv(result):
    lines = ["k\tmean\tp10\tp50\tp90\tresidual\tbytes_per_record"]
    for row in result["mass_by_k"]:
        size = f"{row['bytesPerRecord']:.2f}" if "bytesPerRecord" in row else ""
        lines.append(f"{row['k']}\t{row['mean']:.6f}\t{row['p10']:.6f}\t{row['p50']:.6f}\t{row['p90']:.6f}\t"
                     f"{row['residual']:.3e}\t{size}")
    return "\n".join(lines) + "\n"


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def heatmap_classes(result, limit=HEATMAP_CLASSES):
    """Positions in the matrix of the classes the heatmap shows (ANALYZE.md 4): at most `limit`, the most
    frequent top-1 classes (ties to the lower class), ascending, as Swift's heatmap shows them."""
    classes = np.asarray(result["correlation_classes"], np.int64)
    if len(classes) <= limit or result.top_one is None:
        return list(range(min(len(classes), limit)))
    counts = result.top_one[classes]
    return sorted(np.lexsort((classes, -counts))[:limit].tolist())


def heatmap_svg(result, names=(), limit=HEATMAP_CLASSES):
    """The correlation of the heatmap's classes as an SVG heatmap: blue below 0, red above, white at 0."""
    classes, matrix = result["correlation_classes"], result.matrix
    shown = heatmap_classes(result, limit)
    cell = max(4, 600 // max(1, len(shown)))
    margin = 120
    side = margin + cell * len(shown) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{side}" height="{side}" font-family="sans-serif" '
           f'font-size="9">',
           f'<text x="4" y="14" font-size="12">class correlation of the teacher\'s soft labels '
           f'({result["correlation_records"]} records)</text>']
    for row, i in enumerate(shown):
        y = margin + row * cell
        if cell >= 8:
            out.append(f'<text x="{margin - 4}" y="{y + cell - 1}" text-anchor="end">'
                       f'{_escape(_name(classes[i], names))}</text>')
        for column, j in enumerate(shown):
            value = max(-1.0, min(1.0, float(matrix[i, j])))
            shade = int((1 - abs(value)) * 255)
            color = f"rgb(255,{shade},{shade})" if value >= 0 else f"rgb({shade},{shade},255)"
            out.append(f'<rect x="{margin + column * cell}" y="{y}" width="{cell}" height="{cell}" fill="{color}"/>')
    return "\n".join(out) + "\n</svg>\n"


def to_json(result):
    return json.dumps(result.data, indent=2, sort_keys=True, ensure_ascii=False)


def write_report(result, folder, names=()):
    """analysis.json, hard_samples.json, hard_samples.tsv, mass_by_k.tsv, correlation.npy (float64) and
    correlation.svg in `folder` (created); `names[c]` names class c where the store names classes."""
    os.makedirs(folder, exist_ok=True)
    files = {"analysis.json": to_json(result) + "\n",
             "hard_samples.json": json.dumps(result["hard_samples"], indent=2, sort_keys=True, ensure_ascii=False) + "\n",
             "hard_samples.tsv": hard_samples_tsv(result, names), "mass_by_k.tsv": mass_tsv(result),
             "correlation.svg": heatmap_svg(result, names)}
    for name, text in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text)
    np.save(os.path.join(folder, "correlation.npy"), np.ascontiguousarray(result.matrix, dtype=np.float64))


def summary(result, names=()):
    """The lines `tinyshard-py analyze` prints (as the Swift tool's)."""
    d = result.data
    out = [f"{d['records']} records, K = {d['k']}, C = {d['classes']}"]
    if "overall" in d:
        overall, n = d["overall"], d["n"]
        out.append(f"agreement: label is the teacher's top 1 in {100 * overall['top1']:.2f}% of records, in its top "
                   f"{n} in {100 * overall['topN']:.2f}%")
        image = d["per_image"]
        out.append(f"per image ({image['images']} images): mean top-1 share {image['meanTop1Share']:.3f}, mean top-{n} "
                   f"share {image['meanTopNShare']:.3f}")
        out.append(f"hard samples (label outside the top {n} in ≥ {100 * d['hard_share_threshold']:.0f}% of an image's "
                   f"records): {len(d['hard_samples'])}, {100 * d.get('hard_image_share', 0):.2f}% of images")
    out.append("mass kept by the top k (mean, p10 / p50 / p90; residual per other class; bytes/record):")
    rows = d["mass_by_k"]
    if len(rows) > 12:
        rows = [r for r in rows if r["k"] in (1, 2, 3, 5, 10, 20, 50, 100, 200, d["k"])]
    for r in rows:
        size = f"{r['bytesPerRecord']:.1f}" if "bytesPerRecord" in r else "-"
        out.append(f"  k = {r['k']:3d}: {r['mean']:.4f}  {r['p10']:.4f} / {r['p50']:.4f} / {r['p90']:.4f}  "
                   f"{r['residual']:.2e}  {size}")
    every = f", every {d['correlation_stride']}th" if d["correlation_stride"] > 1 else ""
    out.append(f"most correlated classes ({d['correlation_records']} records{every}):")
    for pair in d["top_pairs"][:5]:
        out.append(f"  {_name(pair['a'], names)} ~ {_name(pair['b'], names)}: {pair['correlation']:.3f}")
    out += [f"skipped: {s}" for s in d["skipped"]]
    return "\n".join(out) + "\n"
