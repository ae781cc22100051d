"""Taking batches out of a DataLoader on a background thread, so the training loop does not pay for it.

With worker processes, each batch reaches the main process through a queue: unpickling, receiving the
shared-memory handles of its tensors and mapping them costs about a millisecond a batch on an idle CPU
and several on a busy one, all on the training loop's time (torch's pin-memory thread does the same
hand-off for CUDA, and is off on a CPU). `Prefetcher` runs the DataLoader's iterator on a thread that
keeps `depth` batches ready; the loop then waits only when the workers really are behind. PyTorch
releases the GIL inside its operators, so the thread works while the model computes.
"""

import queue
import threading

_END = object()


class Prefetcher:
    """Iterate `iterable` (a DataLoader, or any iterator) `depth` items ahead on a daemon thread.

    Exceptions of the iterator (a DataLoader worker's error re-raised) are raised by the consumer's next
    call, after the items that came before. close() (or leaving the loop and dropping the Prefetcher)
    stops the thread at its next item."""

    def __init__(self, iterable, depth=2):
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(iterable),), daemon=True,
                                        name="tinyshard-prefetch")
        self._done = False
        self._thread.start()

    def _run(self, iterator):
        try:
            for item in iterator:
                if not self._put((True, item)):
                    return
        except BaseException as exc:      # forwarded to the consumer, raised there
            self._put((False, exc))
            return
        self._put((True, _END))

    def _put(self, entry):
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        ok, item = self._queue.get()
        if not ok:
            self._done = True
            raise item
        if item is _END:
            self._done = True
            raise StopIteration
        return item

    def close(self):
        self._stop.set()
        self._done = True

    def __del__(self):
        self._stop.set()
