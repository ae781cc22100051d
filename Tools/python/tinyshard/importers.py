"""Image stores from common sources, following the importer conventions of Spec/IMAGESTORE.md section 7
(the Swift importers in Sources/ImageStore make the same keys, labels and pixels):

- `import_digits(csv, out, upscale)`: the UCI digits CSV (Tools/data/digits.csv.gz), grey level
  (255 v + 8) // 16 in R, G and B, each pixel replicated upscale x upscale, keys digits_00000...,
  class names "0".."9";
- `import_image_folder(root, out)`: a torchvision ImageFolder tree (class = sub-folder, sorted; images
  .png/.jpg/.jpeg, hidden files skipped; key = path relative to root with '/'), decoded with PIL
  (`convert("RGB")`, EXIF orientation not applied, as torchvision's loader does). Needs Pillow.
"""

import gzip
import os

import numpy as np

from .imagestore_writer import ImageStoreWriter, write_image_store

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_digits(csv_path, upscale=1, limit=None):
    """[(key, uint8 (8u, 8u, 3) image, label)] of the digits CSV (plain or .gz). ValueError names
    the file and line of a malformed row."""
    if not 1 <= upscale <= 1024:
        raise ValueError(f"{csv_path}: upscale factor {upscale} must be 1..1024")
    opener = gzip.open if str(csv_path).endswith(".gz") else open
    digits = []
    with opener(csv_path, "rt", encoding="ascii") as f:
        for line_number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                values = [int(field) for field in line.split(",")]
            except ValueError:
                raise ValueError(f"{csv_path}: line {line_number}: values must be whole numbers") from None
            if len(values) != 65 or not all(0 <= v <= 16 for v in values[:64]) or not 0 <= values[64] <= 9:
                raise ValueError(f"{csv_path}: line {line_number}: expected 64 values 0..16 and a label 0..9")
            grey = ((np.array(values[:64], dtype=np.int64) * 255 + 8) // 16).astype(np.uint8).reshape(8, 8)
            grey = np.repeat(np.repeat(grey, upscale, axis=0), upscale, axis=1)
            digits.append((f"digits_{len(digits):05d}", np.repeat(grey[:, :, None], 3, axis=2), values[64]))
            if limit is not None and len(digits) >= limit:
                break
    return digits


def import_digits(csv_path, out_path, upscale=4, limit=None):
    """Write the digits as an image store; returns the number of images."""
    digits = read_digits(csv_path, upscale, limit)
    write_image_store(out_path, digits, class_names=[str(d) for d in range(10)])
    return len(digits)


def image_folder_files(root):
    """(class names, [(key, path, label)]) of an ImageFolder tree, in key order."""
    root = os.fspath(root)
    classes = sorted(name for name in os.listdir(root)
                     if not name.startswith(".") and os.path.isdir(os.path.join(root, name)))
    files = []
    for label, name in enumerate(classes):
        for folder, subfolders, names in os.walk(os.path.join(root, name)):
            subfolders[:] = [s for s in subfolders if not s.startswith(".")]
            for file in names:
                if file.startswith(".") or not file.lower().endswith(IMAGE_SUFFIXES):
                    continue
                path = os.path.join(folder, file)
                files.append((os.path.relpath(path, root).replace(os.sep, "/"), path, label))
    files.sort(key=lambda item: item[0].encode("utf-8"))
    return classes, files


def import_image_folder(root, out_path):
    """Write an ImageFolder tree as an image store, one image in memory at a time; returns the count."""
    from PIL import Image

    classes, files = image_folder_files(root)
    with ImageStoreWriter(out_path, class_names=classes) as writer:
        for key, path, label in files:
            try:
                with Image.open(path) as img:
                    pixels = np.asarray(img.convert("RGB"))
            except OSError as exc:
                raise ValueError(f"{path}: not a readable image: {exc}") from None
            writer.append(key, pixels, label)
    return len(files)
