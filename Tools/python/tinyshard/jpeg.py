"""JPEG store images (Spec/IMAGESTORE.md section 3.2, version 2.0): the structural rules checked before
any entropy-coded data is decoded, and the decoder.

Rules 1-3 (`frame_problem`): the stream is SOI ... EOI, its first frame header comes before any scan and
is SOF0 or SOF1 (sequential Huffman), 8-bit, of exactly the index's size, with 1 or 3 components. The
walk over the marker segments costs at most the stream's length.

Rule 4 (no decoder error or warning) needs a decoder that reports libjpeg's warnings. `decode` uses
libturbojpeg through ctypes with TJFLAG_STOPONWARNING, the decoder and flags of the Swift reader
(Sources/ImageStore/JPEGCodec.swift), so both give the same pixels and refuse the same streams. Where
libturbojpeg cannot be loaded it falls back to PIL (same libjpeg-turbo, same pixels for valid streams),
which does not report warnings: a stream with corrupt entropy-coded data then decodes to other pixels
instead of failing (`decoder()` says which one is in use).
"""

import ctypes
import ctypes.util

import numpy as np

MAX_PIXELS = 1 << 26                 # W*H of one image
MAX_PIXELS_PER_STORED_BYTE = 256     # W*H <= 256 * S: the bytes present bound the decoding cost
_TJPF_RGB = 0
_TJFLAG_ACCURATEDCT = 4096
_TJFLAG_STOPONWARNING = 8192


def frame_problem(data, width, height):
    """Rules 1-3 for a stream the index says is width x height: a sentence, or None."""
    data = bytes(data)
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return "the JPEG does not start with SOI (FF D8)"
    if data[n - 2] != 0xFF or data[n - 1] != 0xD9:
        return "the JPEG does not end with EOI (FF D9): truncated or padded"
    p = 2
    while True:
        if p >= n or data[p] != 0xFF:
            return f"expected a marker at byte {p}"
        while p < n and data[p] == 0xFF:          # fill bytes
            p += 1
        if p >= n:
            return "the JPEG ends inside a marker"
        marker = data[p]
        p += 1
        if marker == 0xDA:
            return "a scan (SOS) comes before any frame header"
        if marker == 0xD9:
            return "the JPEG ends (EOI) before any frame header"
        if marker == 0x00:
            return f"byte {p - 1}: FF 00 is not a marker"
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # TEM, RSTn, SOI: no length
            continue
        if p + 2 > n:
            return f"marker FF {marker:02X} at byte {p - 2} has no length"
        length = data[p] << 8 | data[p + 1]
        if length < 2 or p + length > n:
            return f"marker FF {marker:02X} at byte {p - 2}: segment length {length} leaves the {n}-byte stream"
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if marker not in (0xC0, 0xC1):
                return (f"frame SOF{marker - 0xC0} (FF {marker:02X}) is not sequential Huffman: only baseline "
                        "(SOF0) and extended sequential (SOF1) are allowed")
            if length < 8:
                return f"frame header length {length} is below 8"
            components = data[p + 7]
            if length != 8 + 3 * components:
                return f"frame header length {length} does not match its {components} components"
            precision = data[p + 2]
            frame_height = data[p + 3] << 8 | data[p + 4]
            frame_width = data[p + 5] << 8 | data[p + 6]
            if precision != 8:
                return f"sample precision {precision} must be 8"
            if frame_height == 0:
                return "frame height 0 (defined by a DNL marker) is not allowed"
            if (frame_width, frame_height) != (width, height):
                return f"the JPEG is {frame_width}x{frame_height}, the index says {width}x{height}"
            if components not in (1, 3):
                return (f"{components} components: only grey (1) and colour (3) are allowed"
                        + (" (CMYK/YCCK)" if components == 4 else ""))
            return None
        p += length


class _TurboJPEG:
    """The few libturbojpeg calls a reader needs."""

    def __init__(self, library):
        self.lib = ctypes.CDLL(library)
        self.lib.tjInitDecompress.restype = ctypes.c_void_p
        self.lib.tjDestroy.argtypes = [ctypes.c_void_p]
        self.lib.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                                           ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
        self.lib.tjGetErrorStr2.restype = ctypes.c_char_p

    def decode(self, data, width, height):
        handle = self.lib.tjInitDecompress()
        if not handle:
            raise OSError("cannot initialise libturbojpeg")
        try:
            out = np.empty((height, width, 3), dtype=np.uint8)
            status = self.lib.tjDecompress2(handle, bytes(data), len(data), out.ctypes.data, width, 0, height,
                                            _TJPF_RGB, _TJFLAG_STOPONWARNING)
            if status != 0:
                return None, self.lib.tjGetErrorStr2(handle).decode("utf-8", "replace")
            return out, None
        finally:
            self.lib.tjDestroy(handle)


def _load_turbojpeg():
    for name in (ctypes.util.find_library("turbojpeg"), "libturbojpeg.so.0", "libturbojpeg.dylib"):
        if name:
            try:
                return _TurboJPEG(name)
            except OSError:
                continue
    return None


_TURBO = None
_TURBO_LOADED = False


def decoder():
    """'libturbojpeg' (rules 1-4) or 'PIL' (rules 1-3; decoder warnings not seen)."""
    return "libturbojpeg" if _turbo() else "PIL"


def _turbo():
    global _TURBO, _TURBO_LOADED
    if not _TURBO_LOADED:
        _TURBO, _TURBO_LOADED = _load_turbojpeg(), True
    return _TURBO


def decode(data, width, height):
    """(uint8 (height, width, 3) pixels, None) or (None, a sentence: which rule the stream breaks)."""
    problem = frame_problem(data, width, height)
    if problem:
        return None, problem
    turbo = _turbo()
    if turbo is not None:
        pixels, error = turbo.decode(data, width, height)
        return (pixels, None) if error is None else (None, f"JPEG decoding failed: {error}")
    import io
    from PIL import Image
    try:
        with Image.open(io.BytesIO(bytes(data))) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        return None, f"JPEG decoding failed: {exc}"
    if pixels.shape != (height, width, 3):
        return None, f"the JPEG decodes to {pixels.shape[1]}x{pixels.shape[0]}, the index says {width}x{height}"
    return pixels, None


def encode(pixels, quality=90, subsampling="420"):
    """A baseline JPEG of uint8 (H, W, 3) pixels, standard Huffman tables, accurate DCT, 4:2:0 or 4:4:4
    (PIL's writer: libjpeg-turbo, the JFIF APP0 segment only), checked against rules 1-3."""
    import io
    from PIL import Image
    if not 1 <= quality <= 100 or subsampling not in ("420", "444"):
        raise ValueError("quality must be 1..100 and subsampling '420' or '444'")
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB").save(
        out, format="JPEG", quality=quality, subsampling=2 if subsampling == "420" else 0, optimize=False,
        progressive=False)
    data = out.getvalue()
    problem = frame_problem(data, pixels.shape[1], pixels.shape[0])
    if problem:
        raise ValueError(f"the JPEG writer produced a stream a reader refuses: {problem}")
    return data
