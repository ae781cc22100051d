"""tinyshard.torch: the teacher-pass writer, DistillDataset over an image store and over a torchvision
ImageFolder, DistillCollate's one-scatter targets, DataLoader workers (fork and spawn, persistent ones
following set_epoch), DistributedSampler, and bad input as one-line errors."""

import os

import numpy as np
import pytest

from conftest import DIGITS_CSV, require_torch

require_torch()
import torch  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from tinyshard import Dataset, ImageStore, ShardError, verify_dataset  # noqa: E402
from tinyshard.augment import encode_params  # noqa: E402
from tinyshard.importers import import_digits, import_image_folder  # noqa: E402
from tinyshard.labels import LabelError, SoftLabels  # noqa: E402
from tinyshard.replay import replay_normalized  # noqa: E402
from tinyshard.sampler import AugmentationSampler, Recipe  # noqa: E402
from tinyshard.torch import DistillCollate, DistillDataset, TeacherPassWriter, shard_name  # noqa: E402

SIZE = 24


def fake_teacher_pass(store, folder, epochs=2, world=1, k=4, mix=True, skip_images=()):
    """A teacher pass whose 'teacher' is a fixed random linear map of the view's pixels, written by
    `world` simulated ranks (each rank's share as DistributedSampler deals it)."""
    keys = store.keys()
    sampler = AugmentationSampler(3, (SIZE, SIZE), Recipe.tinyvit_mix() if mix else Recipe.tinyvit())
    weights = torch.randn(3 * SIZE * SIZE, store.classes, generator=torch.Generator().manual_seed(0))
    order = [i for i in range(len(store)) if i not in skip_images]
    writers = [TeacherPassWriter(folder, keys, store.classes, k, output_size=(SIZE, SIZE), rank=r,
                                 world_size=world) for r in range(world)]
    for epoch in range(epochs):
        for rank, writer in enumerate(writers):
            mine = list(DistributedSampler(order, num_replicas=world, rank=rank, shuffle=True, seed=epoch))
            with writer.shard(epoch) as shard:
                for start in range(0, len(mine), 16):
                    part = [order[i] for i in mine[start:start + 16]]
                    codes, views = [], []
                    for index in part:
                        params = sampler.parameters(epoch, index, store.size(index), len(store), store.size)
                        code = encode_params(params, (SIZE, SIZE))
                        partner = store.image(params.mix.partner_id) if params.mix else None
                        views.append(replay_normalized(code, store.image(index), (SIZE, SIZE), partner))
                        codes.append(np.frombuffer(code, np.uint8))
                    logits = torch.from_numpy(np.stack(views)).reshape(len(part), -1) @ weights
                    shard.add(torch.tensor(part), logits=logits, codes=np.stack(codes))
    for writer in reversed(writers):                 # rank 0 last: it writes the manifest
        manifest = writer.finish()
    return manifest


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    store_path = folder / "digits.tsimg"
    import_digits(DIGITS_CSV, store_path, upscale=3, limit=120)
    store = ImageStore(store_path)
    manifest = fake_teacher_pass(store, folder / "shards", world=2)
    return store, str(folder / "shards"), manifest


def test_teacher_pass_writer(digits):
    store, shards, manifest = digits
    assert verify_dataset(shards) == []
    assert sorted(e.file for e in manifest.shards) == sorted(shard_name(e, r) for e in (0, 1) for r in (0, 1))
    # 120 samples over 2 ranks: 60 each, no padding; every sample once per epoch.
    ds = Dataset(shards)
    for epoch in (0, 1):
        assert len(ds.keys_in_epoch(epoch)) == 120
    header = ds.reader(manifest.shards[0]).header
    assert header.augmentation_kind == "params" and header.output_size == (SIZE, SIZE)
    assert header.provenance["dataset_checksum"] == manifest.keys.crc32


def test_padding_and_missing_rank(tmp_path, digits):
    store = digits[0]
    manifest = fake_teacher_pass(store, tmp_path / "padded", epochs=1, world=3, mix=False,
                                 skip_images=(0, 1, 2, 3))          # 116 samples: padded to 117
    assert sum(e.records for e in manifest.shards) == 117
    assert verify_dataset(tmp_path / "padded") == []
    assert len(Dataset(tmp_path / "padded").keys_in_epoch(0)) == 116
    lonely = TeacherPassWriter(tmp_path / "lonely", store.keys(), store.classes, 3, rank=0, world_size=2)
    with lonely.shard(0) as shard:
        shard.add([0], probabilities=(np.array([[1, 2, 3]]), np.array([[0.5, 0.2, 0.1]])))
    with pytest.raises(FileNotFoundError, match="epoch0000-rank001.tshard"):
        lonely.finish()


def test_items_are_replayed_records(digits):
    store, shards, _ = digits
    data = DistillDataset(store, shards, classes=10)
    labels = SoftLabels(shards)
    assert len(data) == 120 and data.output_size == (SIZE, SIZE)
    for i in (0, 7, 119):
        x, target = data[i]
        sample = int(data.sample_ids[i])
        code = labels.codes([sample])[0].tobytes()
        partner = store.image(int(np.frombuffer(code[36:40], "<u4")[0])) if code[32] else None
        expected = replay_normalized(code, store.image(int(data.image_indices[i])), (SIZE, SIZE), partner)
        assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(expected))
        assert torch.equal(target, torch.from_numpy(labels.dense([sample])[0]))


def test_sparse_collate_equals_dense_targets(digits):
    store, shards, _ = digits
    dense = DistillDataset(store, shards, target="dense")
    sparse = DistillDataset(store, shards, target="sparse")
    collate = DistillCollate(sparse.classes)
    batch = [sparse[i] for i in range(16)]
    images, targets = collate(batch)
    stacked = torch.stack([dense[i][1] for i in range(16)])
    assert targets.shape == (16, 10) and torch.equal(targets.view(torch.int32), stacked.view(torch.int32))
    assert torch.equal(images, torch.stack([dense[i][0] for i in range(16)]))
    images2, targets2 = collate([dense[i] for i in range(16)])
    assert torch.equal(targets2, stacked)


def epoch_targets(loader, dataset, epoch):
    dataset.set_epoch(epoch)
    return torch.cat([targets for _, targets in loader])


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_persistent_workers_follow_set_epoch(digits, context):
    store, shards, _ = digits
    data = DistillDataset(store, shards, target="sparse")
    loader = DataLoader(data, batch_size=20, num_workers=2, persistent_workers=True,
                        collate_fn=DistillCollate(data.classes), multiprocessing_context=context)
    labels = SoftLabels(shards)
    for epoch in (0, 1, 2):                          # run epoch 2 reads stored epoch 0 again
        got = epoch_targets(loader, data, epoch)
        assert torch.equal(got, torch.from_numpy(labels.dense(data.sample_ids, epoch=epoch % 2)))
    assert not torch.equal(epoch_targets(loader, data, 0), epoch_targets(loader, data, 1))


def test_distributed_sampler_partitions(digits):
    store, shards, _ = digits
    data = DistillDataset(store, shards)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=5)
        sampler.set_epoch(1)
        seen += list(sampler)
        for i in list(sampler)[:3]:
            assert torch.equal(data[i][0], data[i][0])           # items are a function of (epoch, index)
    assert sorted(seen) == list(range(len(data)))


def test_image_folder_source(tmp_path, digits):
    torchvision = pytest.importorskip("torchvision")
    from PIL import Image
    store = digits[0]
    root = tmp_path / "folder"
    for i in range(30):
        label = store.label(i)
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(store.image(i))).save(root / str(label) / f"{i:03d}.png")
    import_image_folder(root, tmp_path / "folder.tsimg")
    folder_store = ImageStore(tmp_path / "folder.tsimg")
    fake_teacher_pass(folder_store, tmp_path / "shards", epochs=1)
    from_store = DistillDataset(folder_store, tmp_path / "shards")
    from_folder = DistillDataset(torchvision.datasets.ImageFolder(str(root)), tmp_path / "shards")
    assert len(from_store) == len(from_folder) == 30
    for i in range(0, 30, 7):
        assert torch.equal(from_store[i][0], from_folder[i][0])
        assert torch.equal(from_store[i][1], from_folder[i][1])


def test_bad_input(tmp_path, digits):
    store, shards, _ = digits
    with pytest.raises(LabelError, match=r"\[class-mismatch\] the shards have 10 classes, the model 1000"):
        DistillDataset(store, shards, classes=1000)
    # A source without the mix partners' images.
    partial = DistillDataset(store, shards, keys=store.keys()[:60] + ["x"] * 60)
    with pytest.raises(LabelError, match=r"\[missing-partner\]"):
        for i in range(len(partial)):
            partial[i]
    # A record-less source image is no item; the dataset lists what the shards hold.
    assert len(partial) == 60
    # A corrupt block met by a DataLoader worker mid-epoch: the error names file, block and record.
    copy = tmp_path / "corrupt"
    copy.mkdir()
    for name in os.listdir(shards):
        (copy / name).write_bytes(open(os.path.join(shards, name), "rb").read())
    data = DistillDataset(store, copy, target="sparse")
    reader = Dataset(copy).reader(Dataset(copy).manifest.shards[0])
    raw = bytearray((copy / os.path.basename(reader.path)).read_bytes())
    raw[reader.layout.block_offsets[0] + 60] ^= 0xFF
    (copy / os.path.basename(reader.path)).write_bytes(bytes(raw))
    loader = DataLoader(data, batch_size=8, num_workers=2, collate_fn=DistillCollate(10))
    with pytest.raises(Exception) as caught:
        for _ in loader:
            pass
    last = str(caught.value).strip().splitlines()[-1]
    assert "[block-crc]" in last and f"file {reader.path}, block 0, record " in last


def test_prefetcher_keeps_order_and_forwards_errors():
    from tinyshard.torch import Prefetcher
    assert list(Prefetcher(range(50), depth=3)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ShardError("block-crc", "payload checksum mismatch", file="x.tshard", block=3, record=7)
    got = []
    with pytest.raises(ShardError, match=r"block 3, record 7"):
        for item in Prefetcher(failing()):
            got.append(item)
    assert got == [1, 2]
    endless = Prefetcher(iter(int, 1), depth=2)           # an endless iterator: close() stops the thread
    assert next(endless) == 0
    endless.close()
    endless._thread.join(timeout=2)
    assert not endless._thread.is_alive()
    with pytest.raises(StopIteration):
        next(endless)
