import ShardFormat

/// A record's augmentation for `dump`: the seed, the parameters as an object, or hex bytes.
enum AugmentationJSON {
    static func encode(_ record: ShardRecord, kind: AugmentationKind, keys: MappedKeyTable?) -> JSON {
        switch kind {
        case .none:
            return .null
        case .seed:
            return record.seed.map { .object([("seed", .int(Int($0)))]) } ?? hex(record.augmentation)
        case let .params(h, w):
            guard let parameters = try? record.augmentation.withUnsafeBytes({
                try AugmentationParameters(code: $0, outputHeight: h, outputWidth: w)
            }) else { return hex(record.augmentation) }
            var fields: [(String, JSON)] = [("view", view(parameters.view))]
            if let mix = parameters.mix {
                let partnerKey = keys.flatMap { try? $0.key(Int(mix.partner)) }
                fields.append(("mix", .object([
                    ("mode", .string(mix.mode == .mixup ? "mixup" : "cutmix")),
                    ("lambda", .double(mix.lambda)),
                    ("lambda_code", .int(Int(mix.lambdaCode))),
                    ("partner", .int(Int(mix.partner))),
                    ("partner_key", partnerKey.map(JSON.string)),
                    ("box", mix.box.map(box)),
                    ("partner_view", view(mix.partnerView)),
                ] as [(String, JSON?)])))
            } else {
                fields.append(("mix", .null))
            }
            return .object(fields)
        }
    }

    static func hex(_ bytes: [UInt8]) -> JSON {
        let digits = Array("0123456789abcdef")
        var text = ""
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return .object([("hex", .string(text))])
    }

    static func box(_ box: PixelBox) -> JSON {
        .array([.int(Int(box.x)), .int(Int(box.y)), .int(Int(box.width)), .int(Int(box.height))])
    }

    static func view(_ view: AugmentationView) -> JSON {
        .object([
            ("source_size", .array([.int(Int(view.sourceWidth)), .int(Int(view.sourceHeight))])),
            ("crop", box(view.crop)),
            ("flip", .bool(view.horizontalFlip)),
            ("ops", .array(view.operations.map { operation in
                .object([("op", .string(String(describing: operation.op))), ("magnitude", .double(operation.magnitude)),
                         ("negate", .bool(operation.negate))])
            })),
            ("erase", view.erase.map { erase in .object([("box", box(erase.box)), ("noise_seed", .int(Int(erase.noiseSeed)))]) } ?? .null),
        ])
    }
}
