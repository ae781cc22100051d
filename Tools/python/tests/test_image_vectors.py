"""Spec/vectors/images (IMAGESTORE.md section 8): every valid store gives the keys, labels, sizes and
pixel CRCs of its JSON, every invalid one exactly its error code, first when opening, else when reading
images 0, 1, ... in order. The one vector that needs the decoder's warnings (rule 4 of section 3.2) is
checked only with libturbojpeg, which reports them (tinyshard.jpeg.decoder())."""

import glob
import json
import os
import zlib

import pytest

from conftest import ROOT
from tinyshard import jpeg
from tinyshard.imagestore import ImageStore, ImageStoreError

VECTORS = os.environ.get("TINYSHARD_IMAGE_VECTORS") or os.path.join(ROOT, "Spec", "vectors", "images")
CASES = sorted(glob.glob(os.path.join(VECTORS, "*.json")))
if not CASES:
    pytest.skip(f"no image store vectors in {VECTORS} (they come with the JPEG store, IMAGESTORE.md 2.0)",
                allow_module_level=True)


def first_error(path):
    """(the store, None) or (the first error, None when opening failed else the image being read)."""
    try:
        store = ImageStore(path)
    except ImageStoreError as error:
        return error, None
    for i in range(len(store)):
        try:
            store.image(i)
        except ImageStoreError as error:
            return error, i
    return store, None


@pytest.mark.parametrize("case", CASES, ids=[os.path.basename(c) for c in CASES])
def test_image_vector(case):
    with open(case) as f:
        spec = json.load(f)
    path = os.path.join(VECTORS, spec["file"])
    result, reading = first_error(path)
    if spec["valid"]:
        store = result
        assert isinstance(store, ImageStore), str(store)
        assert store.class_names == spec.get("class_names", store.class_names)
        assert store.classes == spec.get("class_count", store.classes)
        assert len(store) == len(spec["images"])
        for i, image in enumerate(spec["images"]):
            assert store.key(i) == image["key"] and store.label(i) == image["label"]
            assert store.size(i) == (image["width"], image["height"])
            assert f"{zlib.crc32(store.image(i)):08x}" == image["pixels_crc32"]
        return
    if spec["error"] == "bad-jpeg" and "corrupt-data" in spec["file"] and jpeg.decoder() != "libturbojpeg":
        pytest.skip("decoder warnings need libturbojpeg (PIL decodes this stream silently)")
    assert isinstance(result, ImageStoreError), f"{spec['file']} opened and read without error"
    assert result.code == spec["error"], str(result)
    assert reading == spec.get("image"), str(result)
    if reading is not None:
        assert result.image == reading and f"image {reading}" in str(result)
