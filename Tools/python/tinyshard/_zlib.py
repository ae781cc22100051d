"""The inflater and CRC-32 every reading path uses: zlib-ng's when the `zlib-ng` package is installed (a
dependency of this package, so a plain `pip install` brings it), else the standard library's.

Why: a reader's time at scale is mostly inflation and checksums of small sections (a block at K = 100 is
~4.7 KB). On a 14.2 M-key shard's own blocks zlib-ng's CRC-32 ran at 5x the standard zlib 1.2.13's and its
inflation at 1.4x (Tools/scale/zlib_backends.py; docs/scale.md). Both inflate the same deflate format with
the same checks, so a stream one rejects the other rejects too (tests/test_scale_paths.py compares them on
mutated streams; CI runs the reading tests under both).

Writing keeps the standard library's deflate (`zlib.compress`): the bytes a writer produces must not depend
on an optional package.

`TINYSHARD_ZLIB=stdlib` in the environment forces the standard library (read once, at import)."""

import os
import zlib as _stdlib

_FORCED = os.environ.get("TINYSHARD_ZLIB", "").strip().lower()
if _FORCED not in ("", "stdlib", "zlib-ng"):
    raise ImportError(f"TINYSHARD_ZLIB={_FORCED!r}: expected 'stdlib' or 'zlib-ng'")

if _FORCED == "stdlib":
    _backend = _stdlib
else:
    try:
        from zlib_ng import zlib_ng as _backend
    except ImportError:
        if _FORCED == "zlib-ng":
            raise ImportError("TINYSHARD_ZLIB=zlib-ng, but the zlib-ng package is not installed "
                              "(pip install zlib-ng)") from None
        _backend = _stdlib

#: "zlib-ng" or "stdlib": which library reads (benchmarks print it next to their numbers).
BACKEND = "stdlib" if _backend is _stdlib else "zlib-ng"

#: CRC-32 (unsigned), `crc32(data, start=0)`, the same function as `zlib.crc32`.
crc32 = _backend.crc32

#: A fresh inflater, the same interface as `zlib.decompressobj()`.
decompressobj = _backend.decompressobj

#: What an inflater raises on a stream it cannot inflate (either library's).
error = (_stdlib.error,) if _backend is _stdlib else (_stdlib.error, _backend.error)
