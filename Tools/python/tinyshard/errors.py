"""The one exception type of TinyShard and the error codes of FORMAT.md section 8."""

ERROR_CODES = (
    "io", "bad-magic", "unsupported-version", "bad-header", "header-crc", "incomplete",
    "footer-crc", "bad-index", "block-structure", "block-crc", "bad-section",
    "index-out-of-range", "duplicate-index", "bad-order", "bad-value", "not-sorted",
    "bad-augmentation", "duplicate-sample", "bad-keys", "manifest-mismatch", "not-probability",
)


class ShardError(Exception):
    """A file (or a record given to a writer) breaks a rule of the format.

    `code` is always one of ERROR_CODES so that callers, tests and the Swift implementation can
    compare failures by code rather than by message text. `file`, `block` and `record` (a shard
    ordinal) locate the fault when it is known.
    """

    def __init__(self, code, message, file=None, block=None, record=None):
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.file = file
        self.block = block
        self.record = record
        super().__init__(code, message)

    def __reduce__(self):
        # Whole across processes (DataLoader workers, multiprocessing): every field, not just the text.
        return (type(self), (self.code, self.message, self.file, self.block, self.record))

    def __str__(self):
        # Built when shown, not when raised: a verifier can raise one per block of a hostile file.
        return self._describe()

    def _describe(self):
        where = [f"{name} {value}" for name, value in
                 (("file", self.file), ("block", self.block), ("record", self.record))
                 if value is not None]
        suffix = f" ({', '.join(where)})" if where else ""
        return f"[{self.code}] {self.message}{suffix}"

    def located(self, file=None, block=None, record=None):
        """Return a copy with missing location fields filled in (callers deeper in the stack
        know less about where they are than the caller that catches)."""
        return ShardError(self.code, self.message,
                          file=self.file if self.file is not None else file,
                          block=self.block if self.block is not None else block,
                          record=self.record if self.record is not None else record)
