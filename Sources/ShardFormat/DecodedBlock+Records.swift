/// The record rules of a decoded block (Spec §1.4): which records break one, and where they are.
extension DecodedBlock {
    /// The first rule record `i` of this block breaks, or nil. Within a record the rules are checked in
    /// section order (Spec §1.4): augmentation code, values (`bad-value` before `not-sorted`), class
    /// indices, order number.
    func recordProblem(_ i: Int) -> ShardError? {
        let k = schema.k
        if case let .params(h, w) = schema.augmentation {
            let size = AugmentationParameters.encodedSize
            do {
                _ = try augmentation.withUnsafeBytes {
                    try AugmentationParameters(code: UnsafeRawBufferPointer(rebasing: $0[(i * size)..<((i + 1) * size)]),
                                               outputHeight: h, outputWidth: w)
                }
            } catch let error as ShardError {
                return error
            } catch {
                return ShardError(.badAugmentation, "\(error)")
            }
        }
        let problem: ShardError? = values.withUnsafeBufferPointer {
            RecordRules.checkValues(UnsafeBufferPointer(rebasing: $0[(i * k)..<((i + 1) * k)]), schema: schema)
        }
        if let problem { return problem }
        if recordFlags[i] & Self.indexOutOfRange != 0 {
            return ShardError(.indexOutOfRange, "class index \(lastIndex[i]) is not below \(schema.classes)")
        }
        if recordFlags[i] & Self.badOrder != 0 {
            return ShardError(.badOrder, "order number is not below \(k)!")
        }
        return nil
    }

    /// Calls `body` with each record that breaks a rule and its first problem (``recordProblem(_:)``), in
    /// record order, until `body` returns false.
    func forEachRecordProblem(_ body: (Int, ShardError) -> Bool) {
        if case .params = schema.augmentation {  // every record's code must be decoded
            for i in 0..<count {
                if let problem = recordProblem(i), !body(i, problem) { return }
            }
            return
        }
        for i in recordsFailingFastChecks() {
            if let problem = recordProblem(i), !body(i, problem) { return }
        }
    }

    /// The first record that breaks a rule and its problem, or nil: the reader's check of a block.
    func firstRecordProblem() -> (record: Int, problem: ShardError)? {
        var first: (record: Int, problem: ShardError)?
        forEachRecordProblem { first = ($0, $1); return false }
        return first
    }

    /// Records with a flag or values that fail, found without reading the class's properties per record
    /// (a valid shard of 40 M records per MiB spends its verification here); usually none.
    private func recordsFailingFastChecks() -> [Int] {
        let schema = self.schema
        let k = schema.k
        var failing: [Int] = []
        values.withUnsafeBufferPointer { values in
            recordFlags.withUnsafeBufferPointer { flags in
                for i in 0..<count where flags[i] != 0
                    || RecordRules.checkValues(UnsafeBufferPointer(rebasing: values[(i * k)..<((i + 1) * k)]), schema: schema) != nil {
                    failing.append(i)
                }
            }
        }
        return failing
    }

    func location(ofRecord i: Int) -> ShardLocation {
        ShardLocation(block: index, record: firstOrdinal + i, sampleID: sampleIDs[i])
    }
}
