"""The record-order sampler against the spec's own vector (Spec/vectors/sampling/record-order.json, written
by the Swift implementation): one answer for one epoch layout, whichever implementation computes it."""

import json
import os

import numpy as np
import pytest

from tinyshard.record_order import record_order

VECTOR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "Spec", "vectors", "sampling", "record-order.json")


@pytest.mark.skipif(not os.path.exists(VECTOR), reason="Spec/vectors is not beside this package")
def test_python_reads_the_spec_vector_as_swift_wrote_it():
    with open(VECTOR) as f:
        vector = json.load(f)
    shards = [(s["rank"], s["records"], s["records_per_block"]) for s in vector["shards"]]
    assert vector["cases"], "the vector holds cases"
    for case in vector["cases"]:
        ranks, ordinals = record_order(shards, world=case["world"], rank=case["rank"], window=case["window"],
                                       seed=case["seed"], epoch=case["epoch"])
        got = np.stack([ranks, ordinals], axis=1).tolist()
        assert got == case["order"], f"world {case['world']} rank {case['rank']} window {case['window']} seed {case['seed']}"
