import Foundation
@testable import ShardFormat

/// The vectors of FORMAT.md 1.1's JSON grammar and key rules, §1.4's check order, §5's key table rules
/// and §6's manifest rules (spec revision 1.1): one file per rule, each derived from a valid vector with
/// every length and checksum recomputed so that the rule under test is the first one a reader meets.
extension VectorGenerator {
    func strictVectors(minimal: Vector, zlib: Vector, keysVector: Vector) throws -> [Vector] {
        var out: [Vector] = []
        let text = String(decoding: try ShardFileModel(minimal.bytes).header, as: UTF8.self)
        func header(_ name: String, _ code: ShardErrorCode?, _ description: String, _ bytes: [UInt8]) throws -> Vector {
            let file = try rebuilt(minimal) { $0.header = bytes }
            if let code { return invalid(name, code, description, from: minimal, file) }
            var valid = variant(minimal, name, description, file)
            valid.json.header = try JSONDecoder().decode(VectorJSON.Header.self, from: Data(bytes))
            return valid
        }
        func replacing(_ old: String, _ new: String) -> [UInt8] {
            precondition(text.contains(old), old)
            return Array(text.replacingOccurrences(of: old, with: new).utf8)
        }

        // MARK: JSON grammar (bad-header), one rule each
        out.append(try header("invalid-header-json-trailing-comma.tshard", .badHeader,
                              "valid-minimal with a comma before the header object's closing brace (RFC 8259 has no trailing commas).",
                              Array((String(text.dropLast()) + ",}").utf8)))
        out.append(try header("invalid-header-json-bom.tshard", .badHeader,
                              "valid-minimal with a UTF-8 byte-order mark (EF BB BF) before the header JSON.",
                              [0xEF, 0xBB, 0xBF] + Array(text.utf8)))
        out.append(try header("invalid-header-json-utf16.tshard", .badHeader,
                              "valid-minimal with the header JSON encoded as UTF-16LE (H doubled): only UTF-8 is JSON here.",
                              Array(text.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
        out.append(try header("invalid-header-json-utf16-bom.tshard", .badHeader,
                              "valid-minimal with the header JSON as UTF-16LE behind its byte-order mark FF FE.",
                              [0xFF, 0xFE] + Array(text.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
        out.append(try header("invalid-header-json-utf32.tshard", .badHeader,
                              "valid-minimal with the header JSON encoded as UTF-32LE.",
                              Array(text.unicodeScalars).flatMap { [UInt8($0.value & 0xFF), UInt8($0.value >> 8), 0, 0] }))
        out.append(try header("invalid-header-json-bad-utf8.tshard", .badHeader,
                              "valid-minimal with provenance teacher \"spec-vectors\" holding an overlong UTF-8 NUL (C0 80): not UTF-8.",
                              Array(text.utf8).replacing(Array("spec-vectors".utf8), with: Array("spec".utf8) + [0xC0, 0x80] + Array("vectors".utf8))))
        out.append(try header("invalid-header-json-duplicate-key.tshard", .badHeader,
                              "valid-minimal with \"k\":3 given twice (the same value): no duplicate member names.",
                              replacing("\"k\":3", "\"k\":3,\"k\":3")))
        out.append(try header("invalid-header-json-duplicate-escaped-key.tshard", .badHeader,
                              "valid-minimal with a second member \"\\u006b\":3, which unescapes to \"k\": names are compared after unescaping.",
                              replacing("\"k\":3", "\"k\":3,\"\\u006b\":3")))
        out.append(try header("invalid-header-json-lone-surrogate.tshard", .badHeader,
                              "valid-minimal with provenance teacher \"\\ud800\": a lone surrogate escape.",
                              replacing("\"spec-vectors\"", "\"\\ud800\"")))
        out.append(try header("invalid-header-json-nan.tshard", .badHeader,
                              "valid-minimal with \"temperature\":NaN (not JSON).",
                              replacing("\"temperature\":1", "\"temperature\":NaN")))
        out.append(try header("invalid-header-json-deep.tshard", .badHeader,
                              "valid-minimal with an unknown key holding 64 nested arrays (depth 65 with the root object; at most 64).",
                              replacing("\"classes\"", "\"deep\":" + String(repeating: "[", count: 64) + String(repeating: "]", count: 64) + ",\"classes\"")))
        out.append(try header("invalid-header-int-fraction.tshard", .badHeader,
                              "valid-minimal with \"classes\":10.0: an integer key takes an integer token only.",
                              replacing("\"classes\":10", "\"classes\":10.0")))
        out.append(try header("invalid-header-int-exponent.tshard", .badHeader,
                              "valid-minimal with \"classes\":1e1 (= 10, but not an integer token).",
                              replacing("\"classes\":10", "\"classes\":1e1")))
        out.append(try header("invalid-header-bool-type.tshard", .badHeader,
                              "valid-minimal with \"sorted\":1: a boolean key takes true or false only.",
                              replacing("\"sorted\":true", "\"sorted\":1")))
        out.append(try header("invalid-header-provenance-number.tshard", .badHeader,
                              "valid-minimal with provenance \"teacher\":1: provenance values are strings.",
                              replacing("\"teacher\":\"spec-vectors\"", "\"teacher\":1")))
        out.append(try header("invalid-header-output-size-null.tshard", .badHeader,
                              "valid-minimal (kind none) with \"output_size\":null: when present, output_size is [height, width] for every kind.",
                              replacing("\"kind\":\"none\"", "\"kind\":\"none\",\"output_size\":null")))
        out.append(try header("invalid-header-output-size-zero.tshard", .badHeader,
                              "valid-minimal (kind none) with \"output_size\":[0,0]: sizes are 1-65535 for every kind.",
                              replacing("\"kind\":\"none\"", "\"kind\":\"none\",\"output_size\":[0,0]")))
        out.append(try header("valid-header-json-forms.tshard", nil, """
            valid-minimal with the header written differently but meaning the same: whitespace, an escaped member name \
            ("\\u0063lasses" is "classes"), "temperature":1e0 (a number key takes any number token), a provenance value \
            with a surrogate pair escape, and an unknown key holding a 30-digit integer, a float and nested arrays (ignored).
            """, replacing("\"classes\":10", " \"\\u0063lasses\" : 10 , \"unknown\":[123456789012345678901234567890,-0.5e-7,[[{}]]]")
                .replacing(Array("\"temperature\":1".utf8), with: Array("\"temperature\":1e0".utf8))
                .replacing(Array("\"teacher\":\"spec-vectors\"".utf8), with: Array("\"teacher\":\"spec-vectors\",\"note\":\"\\ud83d\\ude00\"".utf8))))
        out.append(try header("valid-header-output-size-none.tshard", nil,
                              "valid-minimal (kind none) with \"output_size\":[224,224]: allowed for every kind, used by params only.",
                              replacing("\"kind\":\"none\"", "\"kind\":\"none\",\"output_size\":[224,224]")))

        // MARK: Check order (§1.4): two rules broken, the expected code is the first in the spec's order
        out.append(invalid("invalid-order-section-before-record.tshard", .badSection, """
            valid-minimal with block 0's order section reserved byte 1 set and record 0's last index gap 4 (index 10 ≥ C): \
            all five sections are framed before any record is decoded, so bad-section, not index-out-of-range.
            """, from: minimal, try rebuilt(minimal) { model in
                var gaps = try model.decoded(block: 0, section: 3)
                gaps[2] = 4
                model.store(block: 0, section: 3, gaps)
                model.blocks[0].sections[4].reserved[0] = 1
            }))
        out.append(invalid("invalid-order-trailing-before-record.tshard", .badSection, """
            valid-minimal with one byte after block 0's five sections and record 0's order number 6 = 3!: the payload \
            must be filled exactly before records are decoded, so bad-section, not bad-order.
            """, from: minimal, try rebuilt(minimal) { model in
                var order = try model.decoded(block: 0, section: 4)
                order[0] = 6
                model.store(block: 0, section: 4, order)
                model.blocks[0].trailing = [0]
            }))
        out.append(invalid("invalid-order-value-before-index.tshard", .badValue, """
            valid-minimal with record 0's values [0.25, 0.5, NaN] (increasing, then NaN) and its last index gap 4 (index 10 ≥ C): \
            within a record, values come before indices, and every bad-value rule before not-sorted.
            """, from: minimal, try rebuilt(minimal) { model in
                var bits = ValueSection.decode(try model.decoded(block: 0, section: 2), k: 3)
                bits[0] = [Float16(0.25).bitPattern, Float16(0.5).bitPattern, 0x7E00]
                model.store(block: 0, section: 2, ValueSection.encode(bits))
                var gaps = try model.decoded(block: 0, section: 3)
                gaps[2] = 4
                model.store(block: 0, section: 3, gaps)
            }))
        out.append(invalid("invalid-order-lowest-record-first.tshard", .indexOutOfRange, """
            valid-minimal with record 0's last index gap 4 (index 10 ≥ C) and record 1's order number 6 = 3!: records are \
            judged in ordinal order.
            """, from: minimal, try rebuilt(minimal) { model in
                var gaps = try model.decoded(block: 0, section: 3)
                gaps[2] = 4
                model.store(block: 0, section: 3, gaps)
                var order = try model.decoded(block: 0, section: 4)
                order[1] = 6
                model.store(block: 0, section: 4, order)
            }))
        out.append(invalid("invalid-incomplete-preamble-version.tshard", .incomplete, """
            The first 14 bytes of valid-minimal with major version 2: a file shorter than the 16-byte preamble is \
            incomplete whatever its version bytes say.
            """, from: minimal, { var b = Array(minimal.bytes[0..<14]); b[8] = 2; return b }()))

        // MARK: Key tables
        out.append(invalid("invalid-keys-empty.tsk", .badMagic, "An empty file: not a key table.", from: keysVector, derived: false, []))
        out.append(invalid("invalid-keys-short.tsk", .badKeys, "The first 2 bytes of valid-keys (\"TS\"): the start of a key table, shorter than its 24-byte head.",
                           from: keysVector, Array(keysVector.bytes[0..<2])))
        let redundant = (0..<150).map { String(repeating: "x", count: 990) + String(format: "%010d", $0) }
        let ratioText = KeyTableTests.text(redundant)
        let ratioFile = KeyTableTests.keyTableFile(text: ratioText, count: redundant.count)
        precondition(ratioText.count > 32 * (ratioFile.count - 24) + 65_536 && ratioFile.count < 4096)
        out.append(invalid("invalid-keys-ratio.tsk", .badKeys, """
            \(redundant.count) valid, ascending keys of 1000 bytes that share 990: \(ratioText.count) decoded bytes from \
            \(ratioFile.count - 24) stored, more than 32·S + 65,536 (§5's ratio rule bounds a reader's work by the bytes present).
            """, from: keysVector, derived: false, ratioFile))

        // MARK: Manifests
        let manifestText = """
            {"format": "tinyshard-dataset", "version": 1, "classes": 1000, "k": 10,
             "keys": {"file": "keys.tsk", "count": 601, "bytes": 1234, "crc32": "1a2b3c4d"},
             "shards": [{"file": "epoch0000-rank000.tshard", "epoch": 0, "rank": 0, "records": 301, "bytes": 10321, "crc32": "0a1b2c3d"},
                        {"file": "epoch0000-rank001.tshard", "epoch": 0, "rank": 1, "records": 300, "bytes": 10300, "crc32": "ffffffff"}]}

            """
        let manifestVector = Vector(bytes: Array(manifestText.utf8), json: VectorJSON(
            file: "valid-manifest.manifest", kind: "manifest", valid: true,
            description: "The manifest of §6 with two shards: 1000 classes, K = 10, 601 keys.", count: 2))
        out.append(manifestVector)
        func manifest(_ name: String, _ code: ShardErrorCode, _ description: String, _ old: String, _ new: String) -> Vector {
            precondition(manifestText.contains(old), old)
            return invalid(name, code, description, from: manifestVector, Array(manifestText.replacingOccurrences(of: old, with: new).utf8))
        }
        out.append(invalid("invalid-manifest-bom.manifest", .manifestMismatch, "valid-manifest behind a UTF-8 byte-order mark.",
                           from: manifestVector, [0xEF, 0xBB, 0xBF] + manifestVector.bytes))
        out.append(manifest("invalid-manifest-duplicate-key.manifest", .manifestMismatch, "valid-manifest with \"classes\" given twice.",
                            "\"classes\": 1000", "\"classes\": 1000, \"classes\": 1000"))
        out.append(manifest("invalid-manifest-int-fraction.manifest", .manifestMismatch, "valid-manifest with \"k\": 10.0 (not an integer token).",
                            "\"k\": 10", "\"k\": 10.0"))
        out.append(manifest("invalid-manifest-lone-surrogate.manifest", .manifestMismatch,
                            "valid-manifest with the key table's file name \"\\udc00.tsk\" (a lone surrogate escape).", "\"keys.tsk\"", "\"\\udc00.tsk\""))
        out.append(manifest("invalid-manifest-format.manifest", .manifestMismatch, "valid-manifest with format \"tinyshard\".",
                            "\"tinyshard-dataset\"", "\"tinyshard\""))
        out.append(manifest("invalid-manifest-version.manifest", .unsupportedVersion, "valid-manifest with version 2.",
                            "\"version\": 1", "\"version\": 2"))
        out.append(manifest("invalid-manifest-format-before-version.manifest", .manifestMismatch,
                            "valid-manifest with version 2 and format \"x\": format is checked first.",
                            "\"format\": \"tinyshard-dataset\", \"version\": 1", "\"format\": \"x\", \"version\": 2"))
        out.append(manifest("invalid-manifest-crc-uppercase.manifest", .manifestMismatch, "valid-manifest with a shard crc32 \"0A1B2C3D\" (lowercase only).",
                            "\"0a1b2c3d\"", "\"0A1B2C3D\""))
        out.append(manifest("invalid-manifest-file-path.manifest", .manifestMismatch, "valid-manifest with a shard file \"../epoch0000-rank000.tshard\".",
                            "\"epoch0000-rank000.tshard\"", "\"../epoch0000-rank000.tshard\""))
        out.append(manifest("invalid-manifest-duplicate-shard.manifest", .manifestMismatch,
                            "valid-manifest with the second shard also at epoch 0, rank 0.", "\"rank\": 1", "\"rank\": 0"))
        out.append(manifest("invalid-manifest-negative.manifest", .manifestMismatch, "valid-manifest with a shard of -1 records.",
                            "\"records\": 300", "\"records\": -1"))
        return out
    }
}

extension Array where Element == UInt8 {
    func replacing(_ old: [UInt8], with new: [UInt8]) -> [UInt8] {
        guard let start = (0...(count - old.count)).first(where: { Array(self[$0..<($0 + old.count)]) == old }) else {
            preconditionFailure("pattern not found")
        }
        return Array(self[..<start]) + new + Array(self[(start + old.count)...])
    }
}
