"""The teacher pass from PyTorch, under torch.distributed (Spec/PASS.md): every rank writes its own
(epoch, rank) shard of the samples its DistributedSampler gives it; rank 0 writes `pass.json` first,
the key table next, and the manifest after every epoch all ranks finished, so a pass that crashes, is
preempted or fills the disk keeps its finished epochs, and `resume=True` continues it to the bytes a
pass that never stopped writes.

    writer = TeacherPassWriter(folder, keys, classes=1000, k=10, output_size=(224, 224),
                               epochs=E, batch_size=b, fingerprint={...}, resume=resume)
    writer.stop_on_signals()                        # SIGTERM/SIGINT/SIGUSR1: stop after the batch
    share = ShareSampler(views, seed=seed)          # the rank's DistributedSampler share
    for epoch in range(E):
        order = share.set_epoch(epoch)              # store indices of the rank's share
        with writer.shard(epoch, sample_ids[order]) as shard:
            share.start = shard.start               # resumed: from the batch of the first missing record
            for images, ids, codes in DataLoader(views, batch_size=b, sampler=share):
                shard.add(ids, logits=model(images) if shard.needs(len(ids)) else None, codes=codes)
                if writer.stop_agreed():            # every rank stops after the same batch
                    break
        if writer.stopped and not shard.finished:
            break                                   # complete blocks synced, the rest in the tail
        writer.commit(epoch)                        # barrier; rank 0 writes the manifest; barrier

A DistributedSampler pads the last round by repeating samples, so a sample can be in two ranks' shards
of one epoch (FORMAT.md section 2 says which copy a lookup returns). Within one shard a sample is
written once: a repeat in a rank's own share is skipped (counted in `skipped`), and the shard's
order is the share without those repeats.

Without `epochs` the writer is the plain one of earlier versions: no pass.json, no resume; call
`finish()` once at the end.
"""

import hashlib
import json
import os
import signal

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from .. import __version__
from .. import format as F
from ..keys import encode_keys
from ..layout import parse_layout
from ..manifest import KEYS_NAME, MANIFEST_NAME, FileEntry, Manifest, ShardEntry
from ..files import file_size_and_crc
from ..passfolder import (PassError, PassRecord, check_finished_shard, check_key_table, prepare_folder,
                          prepare_plain_folder, read_tail, remove_tail, write_atomically, write_tail)
from ..reader import map_file
from ..writer import PARTIAL_SUFFIX, ShardWriter

WRITER = f"tinyshard-python {__version__}"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


def shard_name(epoch, rank):
    """The file name of the (epoch, rank) shard, as the Swift DatasetWriter names it."""
    return f"epoch{epoch:04d}-rank{rank:03d}.tshard"


def _rank_and_world(rank, world_size):
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def top_k(logits, k, temperature=1.0):
    """(indices int64 (n, k), probabilities float32 (n, k)) of softmax(logits / T), descending, ties to
    the lower class (the Swift teacher pass's rule); the softmax is taken in float64."""
    probabilities = torch.softmax(logits.detach().double() / temperature, dim=-1).float().cpu().numpy()
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probabilities, order, axis=1)


def model_sha256(model):
    """SHA-256 of a model's state_dict: every entry's name, dtype, shape and bytes, in the state_dict's
    order (the teacher's identity when it has no checkpoint file, e.g. weights drawn from a seed)."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        tensor = tensor.detach().cpu().contiguous().reshape(-1)      # 0-d tensors cannot be viewed as bytes
        hasher.update(f"{name}\0{tensor.dtype}\0{shape}\0".encode())
        hasher.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return hasher.hexdigest()


def file_sha256(path):
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _as_ids(values):
    if isinstance(values, torch.Tensor):
        values = values.cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)


class ShareSampler(Sampler):
    """A rank's share of each epoch, as DistributedSampler(dataset, world, rank, shuffle, seed) deals it,
    yielded from position `start`: a resumed pass sets `start = shard.start`, so its DataLoader's batches
    are the batches of an uninterrupted pass from there on."""

    def __init__(self, dataset, num_replicas=None, rank=None, seed=0, shuffle=True):
        replicas = num_replicas if num_replicas is not None else _rank_and_world(None, None)[1]
        rank = rank if rank is not None else _rank_and_world(None, None)[0]
        self._sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=shuffle,
                                           seed=seed)
        self.indices = []
        self.start = 0

    def set_epoch(self, epoch):
        """The whole share of `epoch` (dataset indices, in order); `start` goes back to 0."""
        self._sampler.set_epoch(epoch)
        self.indices = list(self._sampler)
        self.start = 0
        return self.indices

    def __iter__(self):
        return iter(self.indices[self.start:])

    def __len__(self):
        return len(self.indices) - self.start


class ShardOfEpoch:
    """One rank's shard of one epoch, open for appends: new, continued from what an interrupted run left
    (salvaged `.partial` and tail), or finished already (then nothing is written)."""

    def __init__(self, writer, epoch, order):
        self.writer = writer
        self.epoch = epoch
        self.path = os.path.join(writer.folder, shard_name(epoch, writer.rank))
        self.header = writer.shard_header(epoch)
        self.skipped = 0
        self.finished = False
        self.start = self.position = 0
        self.records = self.kept = 0
        self._shard = None
        self._seen = set()
        if order is None:                  # the plain writer: records in the order they are added
            self._order = None
            self._shard = self._open(resume=False, expected=None)
            return
        self._order = _as_ids(order)
        # The shard's order: the share without a sample's repeats (first occurrence kept); record i
        # is the sample at share position self._positions[i].
        _, first = np.unique(self._order, return_index=True)
        self._repeat = np.ones(len(self._order), bool)
        self._repeat[first] = False
        self._positions = np.flatnonzero(~self._repeat)
        self.expected = self._order[self._positions]
        if writer.resume and os.path.exists(self.path):
            check_finished_shard(self.path, self.header, records=len(self.expected))
            # Nothing can continue a finished shard: a tail or `.partial` beside it is stale.
            remove_tail(self.path)
            if os.path.exists(self.path + PARTIAL_SUFFIX):
                os.unlink(self.path + PARTIAL_SUFFIX)
            self.records = len(self.expected)
            self.finished = True
        else:
            self._shard = self._open(resume=writer.resume, expected=self.expected)
            self.records = self._shard.records
            try:
                if writer.resume:
                    tail = read_tail(self.path, self.header, self.records, self.expected)
                    for record in tail or ():
                        self._append(record.sample_id, record.indices, record.values, record.aug)
                    remove_tail(self.path)
            except BaseException:
                self._shard.detach()
                raise
        self.kept = self.records
        self.start = self._local_start()
        self.position = self.start

    def _open(self, resume, expected):
        h = self.header
        return ShardWriter(self.path, h.classes, h.k, value_kind=h.value_kind, temperature=h.temperature,
                           sorted=h.sorted, augmentation_kind=h.augmentation_kind, output_size=h.output_size,
                           epoch=h.epoch, rank=h.rank, records_per_block=h.records_per_block,
                           provenance=h.provenance, resume=resume, expected_ids=expected)

    def _local_start(self):
        """Where this rank continues: the start of the batch holding its first missing record (the
        teacher then sees the batches of an uninterrupted pass, PASS.md 3.1); the share's end when
        nothing is missing."""
        if self.records >= len(self.expected):
            return len(self._order)
        position = int(self._positions[self.records])
        return position - position % self.writer.batch_size

    def _append(self, sample_id, indices, values, aug):
        self._shard.append(int(sample_id), indices, values, aug)
        self.records += 1

    def needs(self, count):
        """Whether the next batch (`count` samples from `position`) holds a record the shard lacks; when it
        does not (kept from an interrupted run, or a rank ahead of the agreed start), add() takes it
        without logits and the teacher can skip it."""
        if self._order is None:
            return True
        end = min(self.position + int(count), len(self._order))
        return int(np.searchsorted(self._positions, end)) > self.records

    def add(self, sample_ids, logits=None, probabilities=None, codes=None):
        """Append a batch: sample ids (n,), the teacher's logits (n, C) (softmax and top-K taken
        here) or its top-K already as (indices, values), and the augmentation codes (n, A) uint8
        (A = 80 for params, 4 for seed, none for kind none). With an order, the batch must be the
        order's next n samples; its records the shard holds already are dropped."""
        ids = _as_ids(sample_ids)
        n = len(ids)
        if self._order is not None:
            wanted = self._order[self.position:self.position + n]
            if len(wanted) != n or not np.array_equal(wanted, ids):
                row = next(i for i in range(n) if i >= len(wanted) or wanted[i] != ids[i])
                there = f"sample {wanted[row]}" if row < len(wanted) else "the end of the share"
                raise PassError("internal", self.path, f"the batch at position {self.position} holds sample "
                                f"{ids[row]} at row {row}, where the epoch's order has {there}: feed the "
                                "share from shard.start in order")
            self.skipped += int(np.count_nonzero(self._repeat[self.position:self.position + n]))
            if not self.needs(n):
                self.position += n
                return
        if logits is not None:
            if logits.shape != (n, self.writer.classes):
                raise ValueError(f"logits of shape {tuple(logits.shape)} for {n} samples of "
                                 f"{self.writer.classes} classes")
            indices, values = top_k(logits, self.writer.k, self.writer.temperature)
        elif probabilities is not None:
            indices, values = (np.asarray(p) for p in probabilities)
        else:
            raise ValueError(f"{self.path}: the batch at position {self.position} holds records the shard "
                             "lacks: give logits or probabilities")
        if codes is None:
            codes = np.zeros((n, 0), dtype=np.uint8)
        codes = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.uint8)
        for row, sample in enumerate(ids.tolist()):
            if self._order is None:
                if sample in self._seen:
                    self.skipped += 1
                    continue
                self._seen.add(sample)
                self._append(sample, indices[row], values[row], codes[row].tobytes())
                continue
            position = self.position + row
            # A repeat within this rank's share is skipped; a record held already (kept from an
            # interrupted run) is dropped.
            if not self._repeat[position] and np.searchsorted(self._positions, position) >= self.records:
                self._append(sample, indices[row], values[row], codes[row].tobytes())
        if self._order is not None:
            self.position += n

    @property
    def records_written(self):
        """Records this run appended (the rest were kept from an interrupted run)."""
        return self.records - self.kept

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._shard is None:                  # finished by an earlier run
            if exc_type is None:
                self.writer._finished.add(self.epoch)
            return False
        if exc_type is not None:
            # Keep the complete blocks for a resume; the plain writer has none and abandons the file.
            if self._order is None:
                self._shard.abort()
            else:
                self._shard.detach()
            self._shard = None
            return False
        if self._order is not None and self.records < len(self.expected):
            if not self.writer.stopped:
                self._shard.detach()
                self._shard = None
                raise PassError("internal", self.path, f"the epoch ended with {self.records} of its "
                                f"{len(self.expected)} records (the loader did not feed the share from "
                                "shard.start to its end, and no stop was agreed)")
            self._stop()
            return False
        records = self._shard.records
        self._shard.close()
        self.writer._entries[os.path.basename(self.path)] = ShardEntry(
            os.path.basename(self.path), self._shard.size, f"{self._shard.crc32:08x}", epoch=self.epoch,
            rank=self.writer.rank, records=records)
        self._shard = None
        self.finished = True
        self.writer._finished.add(self.epoch)
        return False

    def _stop(self):
        """Stop after the batch in hand (PASS.md 4): the complete blocks durable in `.partial`, the
        records of the block not completed written as the tail."""
        shard, self._shard = self._shard, None
        pending = shard.unfinished_block()
        shard.detach()
        if pending:
            write_tail(self.path, self.header, pending, self.records - len(pending))


class TeacherPassWriter:
    """Writes one rank's part of a teacher pass folder; see the module docstring.

    keys: every sample key of the dataset (any order; the key table sorts them and a sample's id is
    its position). augmentation: "params" with output_size (height, width), or "seed", or "none".
    rank and world_size default to torch.distributed's (0 and 1 without a process group; given
    explicitly without a process group, ranks are simulated in one process and nothing is agreed).

    epochs (the pass's length), batch_size (the teacher's batch: resumed ranks restart at its
    boundaries) and fingerprint (the caller's part: teacher, teacher_sha256, recipe, recipe_sha256,
    images, seed, image_size, held_out_fraction, ...) make the folder a resumable pass with pass.json;
    the writer adds writer, classes, k, temperature, world_size, batch, records_per_block and
    key_table_version. resume=True continues the pass in `folder` (PASS.md 5) and refuses any other."""

    def __init__(self, folder, keys, classes, k, output_size=None, augmentation_kind=None,
                 temperature=1.0, records_per_block=None, provenance=None, rank=None,
                 world_size=None, epochs=None, batch_size=None, fingerprint=None, resume=False):
        self.folder = os.fspath(folder)
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.classes, self.k = int(classes), int(k)
        self.augmentation_kind = augmentation_kind or ("params" if output_size is not None else "none")
        self.output_size = tuple(output_size) if output_size is not None else None
        self.temperature = float(temperature)
        self.records_per_block = int(records_per_block or F.default_records_per_block(k))
        self.epochs = None if epochs is None else int(epochs)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.resume = bool(resume)
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if resume and (self.epochs is None or self.batch_size is None):
            raise ValueError("resume needs the pass's epochs and batch_size (they are in its fingerprint)")
        self.keys = sorted(keys, key=lambda key: key.encode("utf-8"))
        self._ids = {key: i for i, key in enumerate(self.keys)}
        self.table = encode_keys(self.keys)             # every rank computes the same bytes
        self.provenance = {"dataset_checksum": f"{F.crc32(self.table):08x}", "augmentation_code_version": "1",
                           "writer": "tinyshard-python TeacherPassWriter"}
        self.provenance.update(provenance or {})
        self.fingerprint = dict(fingerprint or {})
        self.fingerprint.update({
            "writer": WRITER, "classes": str(self.classes), "k": str(self.k),
            "temperature": repr(self.temperature), "world_size": str(self.world_size),
            "records_per_block": str(self.records_per_block),
            "key_table_version": str(int.from_bytes(self.table[4:8], "little")),
        })
        if self.batch_size is not None:
            self.fingerprint["batch"] = str(self.batch_size)
        # Collectives only when this writer is this process's rank of the process group: ranks given
        # explicitly without one are simulated in one process (tests), and nothing is agreed.
        self._distributed = (dist.is_available() and dist.is_initialized() and self.world_size > 1
                             and dist.get_world_size() == self.world_size and dist.get_rank() == self.rank)
        self._finished = set()
        self._entries = {}                 # shard file name -> ShardEntry, for the manifest (rank 0)
        self._stop_signal = None
        self._stop_asked = False
        self._handlers = {}
        self.stopped = False
        self._agree("preparing the pass folder", self._set_up)

    # ---- agreement between ranks ---------------------------------------------------------------

    def _all_reduce(self, value, op):
        tensor = torch.tensor([int(value)], dtype=torch.int64)
        dist.all_reduce(tensor, op=op)
        return int(tensor[0])

    def _agree(self, what, action, undo=None):
        """Run `action` on this rank; with a process group, every rank learns whether any failed (so a
        failure on one rank stops all of them here instead of leaving them in the next collective). A rank
        whose own action succeeded calls `undo(result)` before it stops too."""
        failure = None
        try:
            result = action()
        except Exception as exc:          # noqa: BLE001 - re-raised below on this rank
            failure, result = exc, None
        if self._distributed and self._all_reduce(failure is not None, dist.ReduceOp.MAX) and failure is None:
            if undo is not None:
                undo(result)
            raise PassError("stopped", self.folder, f"another rank failed while {what}; its error says why")
        if failure is not None:
            raise failure
        return result

    def _set_up(self):
        if self.rank != 0:
            return                  # rank 0 alone checks and changes the folder
        if self.epochs is not None:
            prepare_folder(self.folder, PassRecord(self.epochs, self.fingerprint), self.resume)
        else:
            prepare_plain_folder(self.folder)
        keys_path = os.path.join(self.folder, KEYS_NAME)
        # A resumed pass writes the key table only when an earlier run died before it was in place.
        if self.resume and os.path.exists(keys_path):
            check_key_table(self.folder, self.table)
        else:
            write_atomically(keys_path, self.table)

    # ---- shards -----------------------------------------------------------------------------

    def sample_ids(self, keys):
        return np.array([self._ids[key] for key in keys], dtype=np.int64)

    def shard_header(self, epoch):
        """The header of this rank's shard of `epoch`."""
        return F.Header(classes=self.classes, k=self.k, value_kind="probability", temperature=self.temperature,
                        sorted=True, augmentation_kind=self.augmentation_kind, output_size=self.output_size,
                        epoch=int(epoch), rank=self.rank, records_per_block=self.records_per_block,
                        provenance=dict(self.provenance)).validate()

    def shard(self, epoch, order=None):
        """This rank's shard of `epoch`, as a context manager (committed on a clean exit).

        order: the sample ids of this rank's share of the epoch, in the order the loader will feed them
        (needed for a resumable pass). With it, `shard.start` is the share position to feed from (0 for
        a new shard; for a resumed one the start of the batch holding the first missing record, the
        smallest of every rank's, so all ranks run the same batches), and add() checks that batches
        follow the order. Leaving with an exception keeps the complete blocks in `.partial`."""
        epoch = int(epoch)
        if order is not None and self.batch_size is None:
            raise ValueError("an order needs the writer's batch_size (resumed ranks restart at batch starts)")
        if self.epochs is not None and epoch >= self.epochs:
            raise ValueError(f"epoch {epoch} is outside the pass's {self.epochs} epochs")
        shard = self._agree(f"opening epoch {epoch}", lambda: ShardOfEpoch(self, epoch, order),
                            undo=lambda opened: opened.__exit__(RuntimeError, None, None))
        if order is not None and self._distributed:
            shard.start = self._all_reduce(shard.start, dist.ReduceOp.MIN)
            shard.position = shard.start
        return shard

    # ---- stopping ----------------------------------------------------------------------------

    def request_stop(self, signal_number=None):
        """Ask the pass to stop after the batch in hand (what a signal does; tests call it directly)."""
        if signal_number is not None and self._stop_signal is None:
            self._stop_signal = signal_number
        self._stop_asked = True

    def stop_on_signals(self, signals=STOP_SIGNALS):
        """SIGTERM, SIGINT and SIGUSR1 (what schedulers send before preemption) ask for a stop after the
        batch; a second signal exits at once (no tail: the records after the last complete block are
        computed again)."""
        def handler(number, frame):
            if self._stop_asked:
                raise SystemExit(128 + number)
            self.request_stop(number)

        for number in signals:
            self._handlers[number] = signal.signal(number, handler)
        return self

    def restore_signals(self):
        for number, previous in self._handlers.items():
            signal.signal(number, previous)
        self._handlers = {}

    def stop_agreed(self):
        """Whether the pass stops now: any rank asked (every rank calls this after each batch, so all
        stop after the same one). Sets `stopped`."""
        asked = self._stop_asked
        if self._distributed:
            asked = bool(self._all_reduce(asked, dist.ReduceOp.MAX))
        self.stopped = self.stopped or asked
        return self.stopped

    @property
    def stop_signal(self):
        """The signal that asked for the stop on this rank (None: asked by a call or another rank)."""
        return self._stop_signal

    # ---- commits -----------------------------------------------------------------------------

    def commit(self, epoch):
        """After every rank finished `epoch`: barrier; rank 0 writes manifest.json listing every epoch
        finished (PASS.md 3.3); barrier. Returns the manifest on rank 0, None elsewhere."""
        epoch = int(epoch)
        if self._distributed:
            dist.barrier()
        manifest = self._agree(f"committing epoch {epoch}", lambda: self._write_manifest(epoch))
        if self._distributed:
            dist.barrier()
        return manifest

    def finish(self):
        """Barrier; rank 0 lists every rank's shards of the epochs it wrote in manifest.json (each must
        exist: a rank that did not finish an epoch is an error here); barrier. Returns the manifest on
        rank 0, None elsewhere."""
        return self.commit(max(self._finished)) if self._finished else self.commit(-1)

    def _write_manifest(self, epoch):
        if self.rank != 0:
            return None
        if epoch >= 0 and epoch not in self._finished:
            raise PassError("internal", self.folder, f"epoch {epoch} is committed before this rank finished it")
        names = [shard_name(e, r) for e in sorted(self._finished) for r in range(self.world_size)]
        missing = [name for name in names if not os.path.exists(os.path.join(self.folder, name))]
        if missing:
            raise FileNotFoundError(f"{self.folder}: shards not written by their ranks: {', '.join(missing)}")
        if not names:
            raise ValueError(f"{self.folder}: a manifest needs at least one finished shard")
        keys = FileEntry(KEYS_NAME, *file_size_and_crc(os.path.join(self.folder, KEYS_NAME)))
        if keys.crc32 != self.provenance["dataset_checksum"]:
            raise RuntimeError(f"{self.folder}: keys.tsk changed while the pass ran")
        shards = [self._entry(name) for name in names]
        manifest = Manifest(classes=self.classes, k=self.k, keys=keys, key_count=len(self.keys),
                            shards=tuple(sorted(shards, key=lambda s: (s.epoch, s.rank))))
        write_atomically(os.path.join(self.folder, MANIFEST_NAME),
                         (json.dumps(manifest.to_json_object(), indent=1) + "\n").encode("utf-8"))
        return manifest

    def _entry(self, name):
        """A finished shard's manifest entry, measured once (finished shards never change): the
        manifest is rewritten after every epoch, and re-reading every shard each time would make a
        pass's commits quadratic in its epochs."""
        entry = self._entries.get(name)
        if entry is None:
            path = os.path.join(self.folder, name)
            layout = parse_layout(map_file(path))
            h = layout.header
            if (h.classes, h.k) != (self.classes, self.k):
                raise PassError("mismatch", path, f"classes/k {h.classes}/{h.k} differ from the pass's "
                                f"{self.classes}/{self.k}")
            entry = ShardEntry(name, *file_size_and_crc(path), epoch=h.epoch, rank=h.rank, records=layout.records)
            self._entries[name] = entry
        return entry

