"""The official TinyViT logits store (microsoft/Cream, TinyViT/data/augmentation/manager.py: `_Writer`,
`_Reader`) retold for tests, so that lookups by reading rank can be checked against the reader whose
answers FORMAT.md section 2 follows.

Files of one epoch folder: per writer rank r, `rank{r}-keys.txt` (a key per line) and `rank{r}-values.bin`
(fixed-size values, in the order of the keys).
"""

import os


class OfficialWriter:
    """One rank's writer. A key is written the first time the rank is given it: its line to the keys
    file and its value to the values file, both appended in arrival order; a key the rank was given
    before is dropped (the earlier value stays)."""

    def __init__(self, folder, rank):
        os.makedirs(folder, exist_ok=True)
        self.keys = open(os.path.join(folder, f"rank{rank}-keys.txt"), "w")
        self.values = open(os.path.join(folder, f"rank{rank}-values.bin"), "wb")
        self.seen = set()

    def write(self, key, value):
        if key in self.seen:
            return
        self.seen.add(key)
        self.keys.write(key + "\n")
        self.values.write(value)

    def close(self):
        self.keys.close()
        self.values.close()


class OfficialReader:
    """The reader of one epoch folder as a training process of rank `rank` holds it.

    Its packages (one per writer rank) are ordered by (package rank - reader rank) mod n, n the number of
    packages, so its own rank's comes first and the next ranks follow cyclically. A key it has not seen
    makes it visit the packages it has not visited yet, in that order: each visit loads all of that
    package's keys into one dictionary key -> (package, line), a later package's entry replacing an
    earlier one's, and the search stops after the first visit that leaves the key in the dictionary.
    A key already in the dictionary is answered from it."""

    def __init__(self, folder, item_size, rank):
        self.item_size = item_size
        names = [name[:-len("-values.bin")] for name in os.listdir(folder) if name.endswith("-values.bin")]
        count = len(names)                # (a list being sorted looks empty to the key function)
        names.sort(key=lambda name: (int(name[len("rank"):]) - rank) % count)
        self.packages = [os.path.join(folder, name) for name in names]
        self.visited = [False] * len(names)
        self.where = {}

    def read(self, key):
        if key not in self.where:
            self._visit_until(key)
        package, line = self.where[key]
        with open(self.packages[package] + "-values.bin", "rb") as values:
            values.seek(self.item_size * line)
            return values.read(self.item_size)

    def _visit_until(self, key):
        for package, name in enumerate(self.packages):
            if self.visited[package]:
                continue
            self.visited[package] = True
            with open(name + "-keys.txt") as keys:
                for line, text in enumerate(keys.readlines()):
                    self.where[text.strip()] = (package, line)
            if key in self.where:
                return
        raise KeyError(key)
