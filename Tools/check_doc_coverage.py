#!/usr/bin/env python3
"""How many public declarations of the library targets carry a documentation comment.

    python3 Tools/check_doc_coverage.py               # coverage per module and overall
    python3 Tools/check_doc_coverage.py --list        # also every undocumented declaration, file:line
    python3 Tools/check_doc_coverage.py --min 90      # exit 1 when overall coverage is below 90 %
    python3 Tools/check_doc_coverage.py --self-test   # the scanner on known cases

Library targets are the `.target(name: ...)` entries of Package.swift whose folder is Sources/<name>
(executables, tests and system libraries are not). A declaration counts when it is public: `public` or
`open` on it (`public private(set)` included), or no access modifier where the scope makes it public (a
member of a `public extension` or of a public protocol, a `case` of a public enum), and every type it is
nested in is public too. Counted: func, init, subscript, var, let, struct, class, enum, actor, protocol,
typealias, associatedtype and enum cases (one per `case` line). Extensions themselves are not counted,
their members are. It is documented when a `///` line or the end of a `/** */` comment is the line right
above it; only attribute lines (`@inlinable`, `@discardableResult`, `@available(...)`) may stand between.

The scan is lexical (comments, nested block comments, string literals with interpolation, raw and
multi-line strings are understood; braces give the scopes), not a compiler: it is meant for this
package's style, one declaration starting a line.
"""

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TYPE_KEYWORDS = {"struct", "class", "enum", "protocol", "actor", "extension"}
KINDS = {
    "func": "functions", "init": "functions", "subscript": "functions",
    "var": "properties", "let": "properties",
    "struct": "types", "class": "types", "enum": "types", "protocol": "types", "actor": "types",
    "typealias": "types", "associatedtype": "types",
    "case": "cases",
}
DECL_KEYWORDS = set(KINDS) | {"extension", "deinit", "operator", "precedencegroup", "import", "macro"}
ACCESS = {"public", "open", "package", "internal", "fileprivate", "private"}
MODIFIERS = ACCESS | {"static", "class", "final", "override", "mutating", "nonmutating", "convenience",
                      "required", "indirect", "lazy", "weak", "unowned", "dynamic", "nonisolated",
                      "optional", "prefix", "postfix", "infix", "consuming", "borrowing", "isolated",
                      "distributed"}
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def library_targets(root):
    manifest = open(os.path.join(root, "Package.swift"), encoding="utf-8").read()
    names = re.findall(r'\.target\(\s*name:\s*"([^"]+)"', manifest)
    return [n for n in names if os.path.isdir(os.path.join(root, "Sources", n))
            and any(f.endswith(".swift") for _, _, fs in os.walk(os.path.join(root, "Sources", n)) for f in fs)
            and not re.search(r'\.target\(\s*name:\s*"%s"[^)]*\bpath:' % re.escape(n), manifest)]


class Line:
    __slots__ = ("code", "events", "doc", "doc_block_end", "comment_only")

    def __init__(self):
        self.code = []            # characters of code; strings become "" and comments vanish
        self.events = []          # "{" and "}" of code, in order
        self.doc = False          # a `///` comment starts this line (after blanks)
        self.doc_block_end = False  # a `/** */` comment ends on this line with nothing after it
        self.comment_only = False


def lex(text):
    """Per line: its code (comments and string contents removed), its braces, and doc-comment flags."""
    lines = [Line()]
    stack = [("code", 0)]         # ("code", paren depth of an interpolation) | ("str", hashes, multi)
    block_depth, block_is_doc = 0, False
    i, n = 0, len(text)
    at_line_start = True

    def newline():
        lines.append(Line())

    while i < n:
        c = text[i]
        if c == "\n":
            if stack[-1][0] == "str" and not stack[-1][2]:
                stack.pop()       # an unterminated single-line string: recover at the line's end
            newline()
            at_line_start = True
            i += 1
            continue
        line = lines[-1]
        if block_depth:
            if text.startswith("/*", i):
                block_depth += 1
                i += 2
            elif text.startswith("*/", i):
                block_depth -= 1
                i += 2
                if block_depth == 0 and block_is_doc:
                    rest = text[i:text.find("\n", i) if text.find("\n", i) >= 0 else n]
                    line.doc_block_end = rest.strip() == ""
            else:
                i += 1
            continue
        top = stack[-1]
        if top[0] == "str":
            hashes, multi = top[1], top[2]
            close = ('"""' if multi else '"') + "#" * hashes
            if c == "\\" and text.startswith("#" * hashes, i + 1):
                j = i + 1 + hashes
                if j < n and text[j] == "(":
                    stack.append(("code", 0))
                    line.code.append("(")
                    i = j + 1
                else:
                    i = j + 1     # an escape: skip the escaped character
                continue
            if text.startswith(close, i):
                stack.pop()
                line.code.append('"')
                i += len(close)
                continue
            i += 1
            continue
        # code
        if at_line_start and c in " \t":
            i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            if at_line_start and text.startswith("///", i) and not text.startswith("////", i):
                line.doc = True
            if at_line_start:
                line.comment_only = True
            i = end
            continue
        if text.startswith("/*", i):
            block_depth = 1
            block_is_doc = text.startswith("/**", i) and not text.startswith("/**/", i)
            i += 2
            continue
        at_line_start = False
        m = re.match(r'(#*)("""|")', text[i:i + 12]) if c in '#"' else None
        if m:
            hashes, quote = len(m.group(1)), m.group(2)
            stack.append(("str", hashes, quote == '"""'))
            line.code.append('"')
            i += m.end()
            continue
        if c == "(" and len(stack) > 1:
            stack[-1] = ("code", top[1] + 1)
        elif c == ")" and len(stack) > 1:
            if top[1] == 0:
                stack.pop()       # end of an interpolation: back in the string
                line.code.append(")")
                i += 1
                continue
            stack[-1] = ("code", top[1] - 1)
        if c in "{}":
            line.events.append(c)
        line.code.append(c)
        i += 1
    for line in lines:
        line.code = "".join(line.code)
    return lines


def parse_declaration(code):
    """(keyword, access or None, name) when `code` starts a declaration, else None."""
    s = code.strip()
    while s.startswith("@"):      # attributes on the declaration's own line
        m = re.match(r"@[A-Za-z_][A-Za-z0-9_.]*", s)
        if not m:
            return None
        s = s[m.end():].lstrip()
        if s.startswith("("):
            depth = 0
            for k, ch in enumerate(s):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    s = s[k + 1:].lstrip()
                    break
            else:
                return None
    access = None
    while True:
        m = WORD.match(s)
        if not m:
            return None
        word = m.group(0)
        rest = s[m.end():]
        if word in MODIFIERS:
            if word == "class" and not re.match(r"\s+(func|var|let|subscript|static|final|override)\b", rest):
                return ("class", access, _name(rest))   # `class Foo`, not the `class func` modifier
            if rest.startswith("(set)"):
                s = rest[5:].lstrip()
                continue
            if word in ACCESS:
                access = word
            s = rest.lstrip()
            continue
        if word in DECL_KEYWORDS:
            return (word, access, _name(rest))
        return None


def _name(rest):
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_.]*|`[^`]+`|[^\sA-Za-z0-9_(]+)", rest)
    return m.group(1) if m else ""


def scan_file(path):
    """Every public declaration of one file: (line number, kind, name, documented)."""
    text = open(path, encoding="utf-8").read()
    lines = lex(text)
    scopes = [("file", True)]     # ("type" | "extension" | "protocol" | "enum" | "code" | "file", public)
    found = []
    for number, line in enumerate(lines):
        pending = None
        decl = parse_declaration(line.code)
        kind_scope, scope_public = scopes[-1]
        if decl and kind_scope != "code":
            keyword, access, name = decl
            all_public = all(p for _, p in scopes)
            if access in ("public", "open"):
                public = all_public
            elif access is None:
                public = all_public and kind_scope in ("extension", "protocol") and scope_public \
                    if keyword != "case" else (kind_scope == "enum" and all_public)
            else:
                public = False
            if keyword == "extension":
                pending = ("extension", access == "public")
            elif keyword in TYPE_KEYWORDS:
                pending = ("enum" if keyword == "enum" else "protocol" if keyword == "protocol" else "type",
                           public)
            if keyword == "case" and kind_scope != "enum":
                public = False    # `case` of a switch or an `if case` at type level cannot happen; be safe
            if public and keyword in KINDS:
                found.append((number + 1, KINDS[keyword], f"{keyword} {name}".strip(), documented(lines, number)))
        for event in line.events:
            if event == "{":
                scopes.append(pending or ("code", True))
                pending = None
            elif len(scopes) > 1:
                scopes.pop()
    return found


def documented(lines, number):
    k = number - 1
    while k >= 0 and lines[k].code.strip().startswith("@") and not lines[k].comment_only:
        k -= 1                    # attribute lines between the comment and the declaration
    if k < 0:
        return False
    return lines[k].doc or lines[k].doc_block_end


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min", type=float, help="fail (exit 1) when overall coverage is below this percentage")
    parser.add_argument("--list", action="store_true", help="print every undocumented declaration")
    parser.add_argument("--root", default=ROOT, help="the package root (default: this script's parent folder)")
    parser.add_argument("--module", action="append", help="only these modules (repeatable)")
    parser.add_argument("--self-test", action="store_true", help="check the scanner on known cases and exit")
    args = parser.parse_args()
    if args.self_test:
        return self_test()

    modules = args.module or library_targets(args.root)
    total = {"all": [0, 0]}
    missing = []
    print(f"{'module':<14} {'documented':>10} {'public':>7} {'coverage':>9}   by kind (documented/public)")
    for module in modules:
        counts = {}
        folder = os.path.join(args.root, "Sources", module)
        for directory, _, files in sorted(os.walk(folder)):
            for file in sorted(files):
                if not file.endswith(".swift"):
                    continue
                path = os.path.join(directory, file)
                for number, kind, name, doc in scan_file(path):
                    for key in (kind, "all"):
                        counts.setdefault(key, [0, 0])
                        counts[key][0] += doc
                        counts[key][1] += 1
                        total.setdefault(key, [0, 0])
                        total[key][0] += doc
                        total[key][1] += 1
                    if not doc:
                        missing.append(f"{os.path.relpath(path, args.root)}:{number}: {name}")
        print(line_for(module, counts))
    print(line_for("overall", total))
    if args.list and missing:
        print("\nundocumented:")
        print("\n".join(missing))
    documented_count, public_count = total["all"]
    coverage = 100.0 * documented_count / public_count if public_count else 100.0
    if args.min is not None and coverage < args.min:
        print(f"doc coverage {coverage:.1f}% is below the minimum {args.min:g}%", file=sys.stderr)
        return 1
    return 0


SAMPLE = r'''/// Doc.
public struct A {
    /// Doc.
    @inlinable
    @discardableResult
    public func f() -> Int { let s = "}\(g("{"))"; return 1 }
    public var x: Int { get { 1 } }

    /** block doc */
    public init() {}
    // plain
    public let y = #"raw "}" \(x)"#
    var internalOne = 1
    private(set) public var z = """
        { not a brace
        """
    /// Doc.
    public private(set) var w = 0
    /// Doc, but a blank line follows

    public static func h() {}
}
struct Internal { public var hidden = 1 }
public enum E: String {
    /// Doc.
    case a
    case b, c
    public var v: Int { switch self { case .a: return 1
        default: return 2 } }
}
public extension A {
    func implicit() {}
    private func notCounted() {}
}
public protocol P {
    /// Doc.
    func req()
    var prop: Int { get }
}
/* /* nested */ public func fake() */
public final class C {
    /// Doc.
    public class var cv: Int { 1 }
    class Inner {}
}
'''
SAMPLE_EXPECTED = [
    (2, "struct A", True), (6, "func f", True), (7, "var x", False), (10, "init", True),
    (12, "let y", False), (14, "var z", False), (18, "var w", True), (21, "func h", False),
    (24, "enum E", False), (26, "case a", True), (27, "case b", False), (28, "var v", False),
    (32, "func implicit", False), (35, "protocol P", False), (37, "func req", True), (38, "var prop", False),
    (41, "class C", False), (43, "var cv", True),
]


def self_test():
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".swift", delete=False) as handle:
        handle.write(SAMPLE)
    try:
        got = [(number, name, doc) for number, _, name, doc in scan_file(handle.name)]
    finally:
        os.unlink(handle.name)
    expected = SAMPLE_EXPECTED
    if got != expected:
        print("self-test failed:\n  expected %s\n  got      %s" % (expected, got))
        return 1
    print(f"self-test: {len(expected)} declarations as expected")
    return 0


def percent(pair):
    return 100.0 * pair[0] / pair[1] if pair[1] else 100.0


def line_for(name, counts):
    pair = counts.get("all", [0, 0])
    kinds = "  ".join(f"{kind} {counts[kind][0]}/{counts[kind][1]} ({percent(counts[kind]):.0f}%)"
                      for kind in ("functions", "properties", "types", "cases") if kind in counts)
    return f"{name:<14} {pair[0]:>10} {pair[1]:>7} {percent(pair):>8.1f}%   {kinds}"


if __name__ == "__main__":
    sys.exit(main())
