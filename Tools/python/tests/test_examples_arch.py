"""One architecture file for both sides: the Swift CLI's CONFIG.json (here the config.json a `tinyshard train`
run writes, every key of TinyViTConfiguration) builds, through examples/common.py's --arch, the timm TinyVit
that loads the Swift weights strictly and gives Swift's logits; keys the installed timm does not take, a
class count other than the store's, and bad JSON are one-line errors. And train_student.py's --arch, --k and
--cycle-epochs on a Swift teacher pass."""

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DIGITS_CSV, EXAMPLES, require_torch, run_swift, swift_binary
from swift_digits import TINY_ARCH, teacher_pass

require_torch()
import torch  # noqa: E402

sys.path.insert(0, EXAMPLES)
from common import ArchError, add_model_arguments, arch_settings, create_model, view_size  # noqa: E402
from tinyshard.importers import import_digits  # noqa: E402


@pytest.fixture(scope="module")
def swift_run(tmp_path_factory):
    """200 digits at 16 px, a tiny Swift model trained one epoch (its run folder's config.json and
    weights) and a Swift teacher pass from it: K = 4, 2 epochs."""
    binary = swift_binary()
    folder = tmp_path_factory.mktemp("arch")
    store = folder / "digits.tsimg"
    import_digits(DIGITS_CSV, store, upscale=2, limit=200)
    arch = folder / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    run = folder / "teacher"
    run_swift(binary, "train", "--images", store, "--arch", arch, "--hard-labels", "--epochs", 1, "--batch", 16,
              "--out", run)
    shards = teacher_pass(binary, store, run / "config.json", run / "model.safetensors", folder / "pass", k=4, epochs=2)
    return binary, folder, store, run, shards


def test_the_cli_config_builds_the_swift_model(swift_run, tmp_path):
    binary, _, _, run, _ = swift_run
    config = json.loads((run / "config.json").read_text())
    assert {"img_size", "drop_path_rate", "mbconv_expand_ratio", "local_conv_size", "in_chans"} <= set(config)
    settings, img_size = arch_settings(run / "config.json", 10)
    assert img_size == 16 and "img_size" not in settings           # timm 1.0's TinyVit takes no img_size
    assert settings["drop_path_rate"] == 0 and settings["num_classes"] == 10
    assert settings["embed_dims"] == TINY_ARCH["embed_dims"]
    model = create_model("ignored-with-arch", 10, arch=str(run / "config.json"), checkpoint=str(run / "model.safetensors"))
    model.eval()
    x = np.random.default_rng(0).normal(size=(5, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run_swift(binary, "model", "forward", "--arch", run / "config.json", "--weights", run / "model.safetensors",
              "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, np.load(tmp_path / "y.npy"), rtol=1e-4, atol=1e-4)
    # The hand-written config (four required keys, num_classes, img_size) builds the same shapes.
    hand = create_model("x", 10, arch=str(swift_run[1] / "tiny.json"))
    assert {k: v.shape for k, v in hand.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def write(folder, name, config):
    path = folder / name
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return str(path)


def one_line_error(call, *fragments):
    with pytest.raises(ArchError) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_arch_refusals_are_one_line_naming_the_file_and_key(tmp_path):
    seven = write(tmp_path, "seven.json", dict(TINY_ARCH, num_classes=7))
    one_line_error(lambda: arch_settings(seven, 10), f"{seven}: [mismatch] num_classes is 7, the store has 10")
    unknown = write(tmp_path, "unknown.json", dict(TINY_ARCH, use_fancy_attention=True))
    one_line_error(lambda: arch_settings(unknown, 10), unknown, "key use_fancy_attention",
                   "TinyVit does not take it")
    layer = write(tmp_path, "layer.json", dict(TINY_ARCH, act_layer="gelu"))
    one_line_error(lambda: arch_settings(layer, 10), "key act_layer")
    missing = write(tmp_path, "missing.json", {k: v for k, v in TINY_ARCH.items() if k != "depths"})
    one_line_error(lambda: arch_settings(missing, 10), "key depths: missing")
    heads = write(tmp_path, "heads.json", dict(TINY_ARCH, num_heads=[1, 3, 1, 1]))
    one_line_error(lambda: arch_settings(heads, 10), "embed_dims[1] = 16 is not divisible by num_heads[1] = 3")
    stages = write(tmp_path, "stages.json", dict(TINY_ARCH, depths=[1, 1, 1]))
    one_line_error(lambda: arch_settings(stages, 10), "one entry per stage")
    duplicate = write(tmp_path, "dup.json", '{"depths": [1], "depths": [2]}')
    one_line_error(lambda: arch_settings(duplicate, 10), f"{duplicate}: [bad-config] not a JSON object",
                   "duplicate")
    one_line_error(lambda: arch_settings(tmp_path / "none.json", 10), "none.json: [io]")
    strings = write(tmp_path, "strings.json", dict(TINY_ARCH, img_size="16"))
    one_line_error(lambda: arch_settings(strings, 10), "key img_size: must be a positive integer")
    # Keys the installed timm takes beyond Swift's pass through; a constructor with img_size gets it.
    extra = write(tmp_path, "extra.json", dict(TINY_ARCH, drop_rate=0.1, drop_path_rate=0.05))
    settings, _ = arch_settings(extra, 10)
    assert settings["drop_rate"] == 0.1 and settings["drop_path_rate"] == 0.05

    def sized(img_size=224, num_classes=1000, embed_dims=(), depths=(), num_heads=(), window_sizes=()):
        pass
    settings, size = arch_settings(write(tmp_path, "sized.json", TINY_ARCH), 10, constructor=sized)
    assert settings["img_size"] == size == 16 and "drop_path_rate" not in settings
    assert "img_size" in inspect.signature(sized).parameters


def test_model_args_with_the_cli_keys(tmp_path):
    """The issue: the CLI's keys in --model-args gave raw TypeErrors (num_classes twice; img_size)."""
    args = {k: v for k, v in TINY_ARCH.items() if k != "img_size"}
    model = create_model("tiny_vit_5m_224", 10, json.dumps(args))           # num_classes equal: accepted
    assert model.num_classes == 10
    one_line_error(lambda: create_model("tiny_vit_5m_224", 12, json.dumps(args)),
                   "--model-args: [mismatch] num_classes is 10, the store has 12")
    one_line_error(lambda: create_model("tiny_vit_5m_224", 10, json.dumps(TINY_ARCH)), "img_size", "--arch")


def example(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, "train_student.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=900, env=env)


def student(swift_run, out, *extra):
    _, folder, store, run, shards = swift_run
    return example("--images", store, "--shards", shards, "--out", folder / out, "--batch", 16, "--workers", 0,
                   "--threads", 1, *extra)


def assert_one_line(result, *fragments):
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_student_arch_k_and_cycled_epochs(swift_run):
    _, folder, _, run, shards = swift_run
    result = student(swift_run, "run-k2", "--arch", run / "config.json", "--k", 2, "--epochs", 3, "--cycle-epochs")
    assert result.returncode == 0, result.stderr
    assert "targets: the top 2 of the 4 stored entries of each record" in result.stdout
    metrics = json.load(open(folder / "run-k2" / "metrics.json"))
    assert metrics["k"] == 2 and metrics["stored_epochs"] == 2 and metrics["cycle_epochs"]
    assert len(metrics["epochs"]) == 3 and all(np.isfinite(e["loss"]) for e in metrics["epochs"])
    state = torch.load(folder / "run-k2" / "model.pth", weights_only=True)
    assert state["stages.1.downsample.conv1.conv.weight"].shape[0] == TINY_ARCH["embed_dims"][1]


def test_train_student_refusals(swift_run, tmp_path):
    _, _, _, run, shards = swift_run
    assert_one_line(student(swift_run, "r1", "--arch", run / "config.json", "--epochs", 3),
                    f"{shards}: [mismatch] the dataset holds 2 epochs; training for 3 needs --cycle-epochs")
    assert_one_line(student(swift_run, "r2", "--arch", run / "config.json", "--k", 5, "--epochs", 1),
                    f"{shards}: [bad-k] k = 5 is outside 1..4")
    big = write(tmp_path, "big.json", dict(TINY_ARCH, img_size=32))
    assert_one_line(student(swift_run, "r3", "--arch", big, "--epochs", 1),
                    f"{big}: [mismatch] img_size is 32, the stored views are 16x16")
    seven = write(tmp_path, "seven.json", dict(TINY_ARCH, num_classes=7))
    assert_one_line(student(swift_run, "r4", "--arch", seven, "--epochs", 1), "num_classes is 7, the store has 10")


def test_add_model_arguments_serves_both_examples():
    import argparse
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    args = parser.parse_args(["--arch", "a.json"])
    assert (args.arch, args.model_args, args.model) == ("a.json", None, "tiny_vit_5m_224")
    with pytest.raises(SystemExit):
        parser.parse_args(["--arch", "a.json", "--model-args", "{}"])


def test_view_size_prefers_the_flag_then_the_config():
    assert view_size(32, 16) == 32 and view_size(None, 16) == 16 and view_size(None, None) == 224
