"""Reading a version-2 key table (FORMAT.md 5.2): the head (rule 3) when it opens, the directory and
fences (rule 4) once before the first lookup, each page (rule 5) before any key of it is used.

Two checkers of rule 5 give the same verdict and the same first problem for a page: `page_problem`
(plain bytes, for the one page a lookup needs) and `PageBatch` (numpy over many pages at once, for bulk
lookups, whole-table reads and the verifier). Within a page, after its checksum and its zlib stream, the
content rules are checked one rule at a time, each naming the first key that breaks it: the newline
after the last key; keys non-empty, without CR or NUL; UTF-8; strictly ascending; then the key count,
the first key against fence g and the last key against fence g + 1. (The spec fixes the code and the
page; the order inside a page only decides which key a message names, and both checkers share it.)
"""

import bisect
import operator
import struct
from collections import OrderedDict
from itertools import islice

import numpy as np

from . import _zlib as zlib
from . import format as F
from ._keyvec import PAD, KeyBuffer, ascending, compare, equal, newlines, padded, positions
from .errors import ShardError

HEAD = struct.Struct("<4sIIIIII")    # magic, version, M, P, G, F, reserved; the head's CRC follows
HEAD_SIZE = HEAD.size + 4            # 32
DIRECTORY = np.dtype([("offset", "<u8"), ("stored", "<u4"), ("decoded", "<u4"), ("crc", "<u4"),
                      ("fence_end", "<u4")])
MAX_KEYS_PER_PAGE = 65536
MAX_PAGE_BYTES = 1 << 25
PAGE_RATIO = 1032                    # no zlib stream inflates more than 1032:1
CACHE_BYTES = 4 << 20                # decoded pages a table keeps for lookups (at least the last one)
BATCH_BYTES = 8 << 20                # decoded bytes the verifier checks per numpy batch


def _unusual(chunk):
    """Bytes a key holds only under conditions: CR and NUL (never), >= 0x80 (in UTF-8 sequences)."""
    return (chunk == 13) | (chunk == 0) | (chunk >= 0x80)


def bad(message, key=None):
    return ShardError("bad-keys", message, record=key)


def read_head(buf):
    """(M, P, G, F) of a version-2 table after rule 3, in the spec's order (rules 1-2 already hold)."""
    size = len(buf)
    if size < HEAD_SIZE + 4:
        raise bad(f"a version-2 key table has at least 36 bytes, this one {size}")
    _, _, count, per_page, pages, fence_len, reserved = HEAD.unpack_from(buf)
    if F.crc32(buf[:HEAD.size]) != struct.unpack_from("<I", buf, HEAD.size)[0]:
        raise bad("head checksum mismatch")
    if reserved:
        raise bad(f"reserved head field is {reserved}, not 0")
    if not 1 <= per_page <= MAX_KEYS_PER_PAGE:
        raise bad(f"{per_page} keys per page is outside 1-{MAX_KEYS_PER_PAGE}")
    if pages != -(-count // per_page):
        raise bad(f"{pages} pages for {count} keys of {per_page} per page (need {-(-count // per_page)})")
    needed = HEAD_SIZE + 24 * pages + fence_len + 4
    if size < needed:
        raise bad(f"file is {size} bytes, shorter than its head, directory and fences ({needed})")
    return count, per_page, pages, fence_len


def _first(mask):
    where = np.flatnonzero(mask)
    return int(where[0]) if len(where) else None


def _check_chain(offsets, stored, pages_start, size):
    """Page 0 starts after the directory's CRC, each page where the one before ends, the last at the end
    of the file. Comparisons wrap in uint64 only past the first wrong offset, which is reported first."""
    if not len(offsets):
        if pages_start != size:
            raise bad(f"directory: no pages, but the file runs {size - pages_start} bytes past the fences' checksum")
        return
    expected = np.empty(len(offsets), np.uint64)
    expected[0] = pages_start
    expected[1:] = offsets[:-1] + stored[:-1].astype(np.uint64)
    g = _first(offsets != expected)
    if g is not None:
        raise bad(f"directory: page {g} starts at {int(offsets[g])}, not at {int(expected[g])} where "
                  f"{'the directory' if g == 0 else f'page {g - 1}'} ends")
    end = int(offsets[-1]) + int(stored[-1])
    if end != size:
        raise bad(f"directory: the last page ends at {end}, the file at {size}")


def _check_fences(fences, fence_ends, fence_len):
    """e_g strictly increasing from 0 to F; each fence follows the key rules; fences strictly ascending."""
    previous = fences.starts
    g = _first(fence_ends <= previous)
    if g is not None:
        raise bad(f"directory: fence {g} ends at {int(fence_ends[g])}, not after {int(previous[g])}")
    end = int(fence_ends[-1]) if len(fence_ends) else 0
    if end != fence_len:
        raise bad(f"directory: the fences end at byte {end} of the {fence_len} fence bytes")
    data = fences.data[:fence_len]
    bytes_to_fence = lambda at: int(np.searchsorted(fence_ends, at, side="right"))   # noqa: E731
    forbidden = _first((data == 10) | (data == 13) | (data == 0))
    if forbidden is not None:
        raise bad(f"directory: fence {bytes_to_fence(forbidden)} holds a newline, CR or NUL byte")
    g = _first_non_utf8(data, fences.starts)
    if g is not None:
        raise bad(f"directory: fence {g} is not valid UTF-8")
    order = compare(fences, np.arange(len(fences) - 1), fences, np.arange(1, len(fences)))
    g = _first(order >= 0)
    if g is not None:
        raise bad(f"directory: fence {g + 1} does not sort after fence {g}")


def _first_non_utf8(data, starts):
    """The first of the byte ranges starting at `starts` (which tile `data`) that is not UTF-8 on its
    own. The whole is UTF-8 with no range starting on a continuation byte exactly when every range is."""
    if not len(data) or int(data.max()) < 0x80:
        return None
    candidates = []
    try:
        data.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        candidates.append(int(np.searchsorted(starts, exc.start, side="right")) - 1)
    heads = data[starts]
    cut = _first((heads >= 0x80) & (heads < 0xC0))
    if cut is not None:
        candidates.append(max(cut - 1, 0))          # the range before ends inside a character
    return min(candidates) if candidates else None


class Directory:
    """Rule 4 checked: each page's offset, stored and decoded length and CRC, and the fences (as a list of
    bytes for bisect and as a KeyBuffer for numpy)."""

    def __init__(self, buf, pages, fence_len):
        body_end = HEAD_SIZE + 24 * pages + fence_len
        if F.crc32(buf[HEAD_SIZE:body_end]) != struct.unpack_from("<I", buf, body_end)[0]:
            raise bad("directory: checksum mismatch (directory and fences)")
        entries = np.frombuffer(buf[HEAD_SIZE:HEAD_SIZE + 24 * pages].tobytes(), DIRECTORY)
        offsets, stored = entries["offset"], entries["stored"].astype(np.int64)
        decoded = entries["decoded"].astype(np.int64)
        _check_chain(offsets, stored, body_end + 4, len(buf))
        g = _first((decoded > PAGE_RATIO * stored) | (decoded > MAX_PAGE_BYTES))
        if g is not None:
            raise bad(f"directory: page {g} claims {int(decoded[g])} decoded bytes from {int(stored[g])} stored "
                      f"(at most {PAGE_RATIO}:1 and {MAX_PAGE_BYTES})")
        fence_ends = entries["fence_end"].astype(np.int64)
        starts = np.zeros(pages, np.int64)
        starts[1:] = fence_ends[:-1]
        fence_bytes = buf[body_end - fence_len:body_end].tobytes()
        self.fences = KeyBuffer(padded(fence_bytes), starts, fence_ends - starts)
        _check_fences(self.fences, fence_ends, fence_len)
        self.fence_list = [fence_bytes[s:e] for s, e in zip(starts.tolist(), fence_ends.tolist())]
        self.offsets = offsets.astype(np.int64).tolist()
        self.stored = stored.tolist()
        self.decoded = decoded
        self.decoded_list = decoded.tolist()
        self.crcs = entries["crc"].tolist()


def inflate_page(view, directory, g):
    """Page g's decoded bytes after its CRC and its zlib stream (the first two checks of rule 5); `view`
    is a memoryview of the file (slicing a numpy memmap costs more than inflating a small page)."""
    offset, stored, decoded = directory.offsets[g], directory.stored[g], directory.decoded_list[g]
    raw = view[offset:offset + stored]
    if F.crc32(raw) != directory.crcs[g]:
        raise bad(f"page {g}: checksum mismatch")
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, decoded + 1)     # one byte more than D reveals a longer stream
    except zlib.error:
        out = None
    if out is None or len(out) != decoded or not inflater.eof or inflater.unused_data:
        raise bad(f"page {g}: its {stored} bytes are not exactly one zlib stream of {decoded} bytes")
    return out


def page_error(g, rule, key=None, held=None, expected=None):
    """The ShardError of page g breaking one content rule (shared by both checkers)."""
    text = {"newline": lambda: "its last key lacks its newline",
            "key": lambda: f"key {key} is empty or holds a CR or NUL byte",
            "utf8": lambda: f"key {key} is not valid UTF-8",
            "order": lambda: f"key {key} does not sort after key {key - 1}",
            "count": lambda: f"it holds {held} keys, not {expected}",
            "fence": lambda: f"its first key differs from fence {g}",
            "next": lambda: f"its last key does not sort before fence {g + 1}"}[rule]()
    return bad(f"page {g}: {text}", key=key)


def page_problem(data, g, first_id, expected, fence, next_fence):
    """(ShardError or None, keys as a list of bytes) for the decoded bytes of page g (plain bytes: the
    one page a lookup needs)."""
    if data and data[-1] != 10:
        return page_error(g, "newline"), None
    keys = data[:-1].split(b"\n") if data else []
    if data[:1] == b"\n" or b"\n\n" in data or b"\r" in data or b"\0" in data:
        at = next(i for i, key in enumerate(keys) if not key or b"\r" in key or b"\0" in key)
        return page_error(g, "key", first_id + at), None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return page_error(g, "utf8", first_id + data.count(b"\n", 0, exc.start)), None
    if not all(map(operator.lt, keys, islice(keys, 1, None))):
        at = next(i for i in range(1, len(keys)) if not keys[i - 1] < keys[i])
        return page_error(g, "order", first_id + at), None
    if len(keys) != expected:
        return page_error(g, "count", held=len(keys), expected=expected), None
    if keys[0] != fence:
        return page_error(g, "fence"), None
    if next_fence is not None and not keys[-1] < next_fence:
        return page_error(g, "next"), None
    return None, keys


class PageBatch:
    """Pages g0..g1-1 inflated into one padded buffer and checked with numpy (rule 5 for each).

    `problems` maps a page to its first problem; `keys` (a KeyBuffer) holds every newline-ended key of the
    pages and `key_page` its page (0-based within the batch)."""

    def __init__(self, table, g0, g1):
        directory = table.directory()
        self.per_page = table.per_page
        self.pages = np.arange(g0, g1)
        sizes = directory.decoded[g0:g1]
        self.bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(self.bounds[-1])
        # Filled in place from the directory's sizes: one copy of the decoded bytes, never two.
        self.data = np.empty(total + PAD, np.uint8)
        self.data[total:] = 0
        self.problems = {}
        into = memoryview(self.data)
        bounds = self.bounds.tolist()
        for i, g in enumerate(range(g0, g1)):
            try:
                into[bounds[i]:bounds[i + 1]] = inflate_page(table.view, directory, g)
            except ShardError as error:
                self.problems[g] = error
                self.data[bounds[i]:bounds[i + 1]] = 0        # no newline: the failed page holds no key
        self._split(total)
        self._check(table, directory)

    def _split(self, total):
        """Keys end at newlines; a key starts after the newline before it or at its page's start (so the
        tail of a page without its last newline never joins the next page's first key)."""
        ends = positions(self.data, total, newlines)
        first_key = np.searchsorted(ends, self.bounds)            # first newline at or after each page start
        self.counts = np.diff(first_key)
        self.first_key = first_key[:-1]
        starts = np.empty(len(ends), np.int64)
        starts[:1] = 0
        starts[1:] = ends[:-1] + 1
        heads = self.first_key[self.counts > 0]
        starts[heads] = self.bounds[:-1][self.counts > 0]
        self.keys = KeyBuffer(self.data, starts, ends - starts, terminated=True)
        self._key_page = None

    @property
    def key_page(self):
        """Each key's page (0-based within the batch); built when first needed (a problem to locate)."""
        if self._key_page is None:
            self._key_page = np.repeat(np.arange(len(self.pages)), self.counts)
        return self._key_page

    def _ids(self, rows):
        """Sample ids of the keys `rows` (meaningful in pages without problems)."""
        page = self.key_page[rows]
        return self.pages[page] * self.per_page + (rows - self.first_key[page])

    def _check(self, table, directory):
        """Flag each rule over all pages, then give each flagged page the first rule it breaks."""
        pages, per_page = self.pages, table.per_page
        keys, first_key, counts = self.keys, self.first_key, self.counts
        sizes = np.diff(self.bounds)
        no_newline = (sizes > 0) & (self.data[np.maximum(self.bounds[1:] - 1, 0)] != 10)
        data = self.data[:int(self.bounds[-1])]
        special = positions(self.data, len(data), _unusual)     # CR, NUL, bytes >= 0x80: rare in real keys
        kinds = data[special]
        broken = keys.lengths == 0
        broken[self._owners(special[(kinds == 0) | (kinds == 13)])] = True
        descending = ~ascending(keys)
        descending[first_key[counts > 0]] = False               # a page's first key has no key before it
        expected = np.where(pages == table.pages - 1, table.count - (table.pages - 1) * per_page, per_page)
        has_keys = np.flatnonzero(counts > 0)
        not_fence = np.zeros(len(pages), bool)
        not_fence[has_keys] = ~equal(keys, first_key[has_keys], directory.fences, pages[has_keys])
        with_next = has_keys[pages[has_keys] + 1 < table.pages]
        past_next = np.zeros(len(pages), bool)
        last_key = first_key[with_next] + counts[with_next] - 1
        past_next[with_next] = compare(keys, last_key, directory.fences, pages[with_next] + 1) >= 0

        by_key = (("key", self._first_keys(broken)), ("utf8", self._non_utf8(data, special[kinds >= 0x80])),
                  ("order", self._first_keys(descending)))
        flagged = no_newline | (counts != expected) | not_fence | past_next
        for _, pages_flagged in by_key:
            flagged[list(pages_flagged)] = True
        for i in np.flatnonzero(flagged).tolist():
            g = int(pages[i])
            if g in self.problems:
                continue
            if no_newline[i]:
                self.problems[g] = page_error(g, "newline")
                continue
            found = next(((rule, at[i]) for rule, at in by_key if i in at), None)
            if found is not None:
                self.problems[g] = page_error(g, found[0], found[1])
            elif counts[i] != expected[i]:
                self.problems[g] = page_error(g, "count", held=int(counts[i]), expected=int(expected[i]))
            elif not_fence[i]:
                self.problems[g] = page_error(g, "fence")
            else:
                self.problems[g] = page_error(g, "next")

    def _owners(self, at):
        """Keys holding the bytes at positions `at`; a byte in the tail of a page without its last newline
        belongs to no key (the page breaks the newline rule first)."""
        if not len(at):
            return at
        ends = self.keys.starts + self.keys.lengths
        owner = np.searchsorted(ends, at)
        inside = owner < len(ends)
        owner, at = owner[inside], at[inside]
        return owner[np.searchsorted(self.bounds, at, side="right") - 1 == self.key_page[owner]]

    def _first_keys(self, mask):
        """{batch page: sample id of its first flagged key} of a mask over keys."""
        flagged = np.flatnonzero(mask)
        if not len(flagged):
            return {}
        held, at = np.unique(self.key_page[flagged], return_index=True)
        return dict(zip(held.tolist(), self._ids(flagged[at]).tolist()))

    def _non_utf8(self, data, high):
        """{batch page: sample id of its first key that is not UTF-8}; only pages holding a byte >= 0x80
        (at `high`) are decoded (keys end in an ASCII newline, so a page is UTF-8 exactly when each of its
        keys is)."""
        found = {}
        for i in np.unique(np.searchsorted(self.bounds, high, side="right") - 1).tolist():
            begin, end = int(self.bounds[i]), int(self.bounds[i + 1])
            try:
                data[begin:end].tobytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                owner = self._owners(np.array([begin + exc.start]))
                if len(owner):
                    found[i] = int(self._ids(owner)[0])
        return found

    def first_problem(self):
        """The problem of the lowest page, or None."""
        return self.problems[min(self.problems)] if self.problems else None

    def good_keys(self):
        """(KeyBuffer, sample ids) of the keys of pages without problems; the ids are None when every page
        of the table is good (the row is then the id)."""
        if not self.problems and (not len(self.pages) or self.pages[0] == 0):
            return self.keys, None
        bad_pages = np.isin(self.pages, list(self.problems))
        keep = np.flatnonzero(~bad_pages[self.key_page])
        keys = KeyBuffer(self.data, self.keys.starts[keep], self.keys.lengths[keep], terminated=True)
        return keys, self._ids(keep)


class PagedTable:
    """A version-2 key table over a read-only map of its bytes: len and the head at once; the directory
    when first needed (once per object, hence once per process); a page each time it is first needed
    again after leaving a small cache of decoded pages."""

    def __init__(self, buf):
        self.buf = buf
        self.view = memoryview(buf)
        self.count, self.per_page, self.pages, self.fence_len = read_head(buf)
        self._directory = None
        self._cache = OrderedDict()               # page -> (list of its keys as bytes, decoded size)
        self._cached_bytes = 0

    def directory(self):
        if self._directory is None:
            self._directory = Directory(self.buf, self.pages, self.fence_len)
        return self._directory

    def _expected(self, g):
        return self.per_page if g < self.pages - 1 else self.count - (self.pages - 1) * self.per_page

    def page(self, g):
        """Page g's keys (bytes), checked by rule 5."""
        cached = self._cache.get(g)
        if cached is not None:
            self._cache.move_to_end(g)
            return cached[0]
        directory = self.directory()
        data = inflate_page(self.view, directory, g)
        fences = directory.fence_list
        problem, keys = page_problem(data, g, g * self.per_page, self._expected(g), fences[g],
                                     fences[g + 1] if g + 1 < self.pages else None)
        if problem is not None:
            raise problem
        self._cache[g] = (keys, len(data))
        self._cached_bytes += len(data)
        while self._cached_bytes > CACHE_BYTES and len(self._cache) > 1:
            self._cached_bytes -= self._cache.popitem(last=False)[1][1]
        return keys

    def key(self, i):
        """Key i (bytes): key i mod P of page i // P."""
        return self.page(i // self.per_page)[i % self.per_page]

    def find(self, key):
        """The id of `key` (bytes), or None: the last page whose fence sorts at or before it, checked,
        then searched (FORMAT.md 5.2's lookup)."""
        g = bisect.bisect_right(self.directory().fence_list, key) - 1
        if g < 0:
            return None
        keys = self.page(g)
        at = bisect.bisect_left(keys, key)
        return g * self.per_page + at if at < len(keys) and keys[at] == key else None

    def batch(self, g0=0, g1=None):
        return PageBatch(self, g0, self.pages if g1 is None else g1)

    def problems(self):
        """Every problem in the spec's order: the directory's (then nothing more), else each bad page's
        first, pages in order, checked in batches of about BATCH_BYTES decoded bytes."""
        try:
            directory = self.directory()
        except ShardError as error:
            yield error
            return
        ends = np.cumsum(directory.decoded)
        g = 0
        while g < self.pages:
            stop = max(g + 1, int(np.searchsorted(ends, ends[g] - directory.decoded[g] + BATCH_BYTES,
                                                  side="right")))
            batch = self.batch(g, min(stop, self.pages))
            for page in sorted(batch.problems):
                yield batch.problems[page]
            g = stop
