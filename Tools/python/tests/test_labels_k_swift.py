"""FORMAT.md 7, "The top k of a record", against Swift's passes: `tinyshard teacher` run twice on one store,
teacher and seed, with --k 5 and --k 2. SoftLabels(k=2) of the first gives every dense row of the second bit
for bit (and the same sparse entries), by sample and in record order. The teacher is a weak one whose
near-uniform float16 values tie often: the tie rule (lower class first) is part of what is compared."""

import numpy as np
import pytest

from conftest import swift_binary
from swift_digits import digits_teacher, teacher_pass
from tinyshard.labels import SoftLabels


@pytest.fixture(scope="module")
def passes(tmp_path_factory):
    binary = swift_binary()
    folder = tmp_path_factory.mktemp("labels-k-swift")
    store, arch, weights = digits_teacher(binary, folder)
    five = teacher_pass(binary, store, arch, weights, folder / "k5", k=5, epochs=2)
    two = teacher_pass(binary, store, arch, weights, folder / "k2", k=2, epochs=2)
    return five, two


def test_top_two_of_a_k5_pass_is_the_k2_pass(passes):
    five, two = passes
    ours, theirs = SoftLabels(five, k=2), SoftLabels(two)
    assert (ours.stored_k, ours.k, theirs.k, ours.epochs) == (5, 2, 2, theirs.epochs)
    ties = 0
    for epoch in ours.epochs:
        ids = ours.ids_in_epoch(epoch)
        assert len(ids) > 1000 and np.array_equal(ids, theirs.ids_in_epoch(epoch))
        dense_ours, dense_theirs = ours.dense(ids, epoch=epoch), theirs.dense(ids, epoch=epoch)
        assert np.array_equal(dense_ours.view(np.uint32), dense_theirs.view(np.uint32))
        for a, b in zip(ours.sparse(ids, epoch=epoch), theirs.sparse(ids, epoch=epoch)):
            assert np.array_equal(a, b)
        # The full K = 5 records tie at the cut often enough that the tie rule is exercised.
        _, values, _ = SoftLabels(five).sparse(ids, epoch=epoch)
        ties += int((values[:, 1] == values[:, 2]).sum())
        # Record order: the shards' blocks differ (R follows K), so compare by sample.
        rows = {}
        for batch in theirs.in_record_order(epoch).batches(256):
            rows.update(zip(batch.ids.tolist(), batch.dense()))
        for batch in ours.in_record_order(epoch).batches(256):
            for sample, row in zip(batch.ids.tolist(), batch.dense()):
                assert np.array_equal(row.view(np.uint32), rows.pop(sample).view(np.uint32))
        assert not rows
    assert ties > 0
