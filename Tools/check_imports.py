#!/usr/bin/env python3
"""Every module a target imports must be one Package.swift declares for it.

    python3 Tools/check_imports.py            # from the package root; exit 1 and one line per gap

A target that imports a module it does not declare builds only while some other dependency happens to
pull that module into the graph; the day that changes, the build breaks somewhere unrelated. This reads
the manifest with `swift package dump-package`, scans each target's Swift files for `import X`
(`@testable import X` and `import struct X.Y` included) and compares. Modules of the toolchain
(Foundation, Glibc, XCTest, ...) need no declaration.
"""

import json
import os
import re
import subprocess
import sys

MULTILINE_STRING = re.compile(r'#*"""[\s\S]*?"""#*')
TOOLCHAIN = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Darwin", "Dispatch", "XCTest",
             "Testing", "Swift", "_Concurrency", "Synchronization", "os", "Musl", "WinSDK", "ucrt"}
IMPORT = re.compile(r"^\s*(?:@testable\s+|@_exported\s+|@preconcurrency\s+)*import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)",
                    re.MULTILINE)


def declared(target, products):
    names = set()
    for dependency in target["dependencies"]:
        kind, value = next(iter(dependency.items()))
        if kind == "product":
            names.add(value[0])                  # a product's module carries its name
        else:
            names.add(value[0])
    return names


def target_folder(target):
    if target.get("path"):
        return target["path"]
    return os.path.join("Tests" if target["type"] == "test" else "Sources", target["name"])


def main():
    manifest = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, text=True,
                                         check=True).stdout)
    targets = {t["name"]: t for t in manifest["targets"]}
    gaps = []
    for name, target in sorted(targets.items()):
        if target["type"] in ("system", "binary", "plugin"):
            continue
        allowed = declared(target, manifest.get("products", [])) | TOOLCHAIN | {name}
        folder = target_folder(target)
        for root, _, files in os.walk(folder):
            for file in sorted(files):
                if not file.endswith(".swift"):
                    continue
                path = os.path.join(root, file)
                with open(path, encoding="utf-8") as f:
                    text = MULTILINE_STRING.sub("", f.read())   # code of other languages quoted in Swift
                for module in sorted(set(IMPORT.findall(text))):
                    if module not in allowed:
                        gaps.append(f"{path}: target {name} imports {module}, which Package.swift does not declare for it")
    for gap in gaps:
        print(gap)
    print(f"checked {len([t for t in targets.values() if t['type'] not in ('system', 'binary', 'plugin')])} targets: "
          f"{'no undeclared imports' if not gaps else f'{len(gaps)} undeclared imports'}")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
