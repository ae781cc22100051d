"""A small Swift teacher on the digits, for tests that compare Python with passes the Swift CLI writes: the
store (`tinyshard images import`, 16 px), a tiny TinyViT config (DistillCLITests' tinyArch) and its weights
after one epoch on hard labels (seconds on a debug build). A weak teacher on purpose: its near-uniform
float16 values tie often, and half the images are hard."""

import json

from conftest import DIGITS_CSV, run_swift

TINY_ARCH = {"embed_dims": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
             "window_sizes": [2, 2, 2, 2], "num_classes": 10, "img_size": 16}


def digits_teacher(binary, folder):
    """(store path, arch JSON path, teacher weights path) in `folder`."""
    store = folder / "digits.tsimg"
    run_swift(binary, "images", "import", DIGITS_CSV, "--upscale", 2, "--out", store)
    arch = folder / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    run = folder / "teacher"
    run_swift(binary, "train", "--images", store, "--arch", arch, "--hard-labels", "--epochs", 1, "--batch", 32,
              "--seed", 1, "--out", run)
    return store, arch, run / "model.safetensors"


def teacher_pass(binary, store, arch, weights, out, k, epochs, seed=3):
    """`tinyshard teacher` over the store: K = k, `epochs` epochs of the default recipe's views."""
    run_swift(binary, "teacher", "--images", store, "--weights", weights, "--arch", arch, "--k", k,
              "--epochs", epochs, "--seed", seed, "--out", out)
    return out
