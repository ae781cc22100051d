"""Lookup speed as a training loader sees it: one record at a time, by (epoch, key), in a
shuffled key order. Mirrors `bench` of Tools/python/official_numpy_reader.py for comparison."""

import time

import numpy as np

from .dataset import Dataset


def _rate(keys, fetch, seconds):
    """Records per second of `fetch(key)` cycling through `keys` for about `seconds`."""
    done, start = 0, time.perf_counter()
    while True:
        for key in keys:
            fetch(key)
        done += len(keys)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def bench_dataset(folder, seconds=2.0, cache_blocks=8, seed=0):
    """Print and return {epoch: (sparse records/s, dense records/s)}."""
    rng = np.random.default_rng(seed)
    results = {}
    for epoch in Dataset(folder).epochs():
        dataset = Dataset(folder, cache_blocks=cache_blocks)   # cold caches for every epoch
        keys = dataset.keys_in_epoch(epoch)
        keys = [keys[i] for i in rng.permutation(len(keys))]
        sparse = _rate(keys, lambda key: dataset.get(epoch, key), seconds / 2)
        dense = _rate(keys, lambda key: dataset.dense_row(epoch, key), seconds / 2)
        results[epoch] = (sparse, dense)
        print(f"epoch {epoch}: {len(keys)} keys, sparse {sparse:,.0f} records/s, "
              f"dense {dense:,.0f} records/s")
    return results
