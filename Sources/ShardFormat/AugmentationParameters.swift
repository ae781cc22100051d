/// A box in whole pixels: the grid torchvision draws RandomResizedCrop boxes on, and the grid of erasing
/// and cutmix boxes.
public struct PixelBox: Sendable, Equatable, Hashable {
    /// Left edge, in pixels from the image's left side.
    public var x: UInt16
    /// Top edge, in pixels from the image's top.
    public var y: UInt16
    /// Width in pixels; the box lies inside its image (the validation rules check it).
    public var width: UInt16
    /// Height in pixels; the box lies inside its image (the validation rules check it).
    public var height: UInt16

    /// A box with its top-left corner at (`x`, `y`); nothing is checked until the parameters are validated.
    public init(x: UInt16, y: UInt16, width: UInt16, height: UInt16) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    func fits(width limitWidth: Int, height limitHeight: Int) -> Bool {
        width >= 1 && height >= 1 && Int(x) + Int(width) <= limitWidth && Int(y) + Int(height) <= limitHeight
    }
}

/// timm's increasing RandAugment operations; raw values are the spec's op ids (section 4).
public enum RandAugmentOp: UInt8, Sendable, CaseIterable {
    /// The 15 ops, ids 0...14 in this order (the spec's table in section 4).
    case autoContrast = 0, equalize, invert, rotate, posterizeIncreasing, solarizeIncreasing, solarizeAdd,
         colorIncreasing, contrastIncreasing, brightnessIncreasing, sharpnessIncreasing, shearX, shearY,
         translateXRel, translateYRel
}

/// One applied RandAugment op. The magnitude lives on a 0.01 grid so that it survives encoding exactly.
public struct RandAugmentOperation: Sendable, Equatable, Hashable {
    /// The largest `magnitudeHundredths` the encoding accepts: magnitude 10.
    public static let maxMagnitudeHundredths: UInt16 = 1000

    /// Which of timm's increasing RandAugment operations was applied.
    public var op: RandAugmentOp
    /// Magnitude × 100, 0...1000 (timm's magnitude after Gaussian noise, clipped to [0, 10]).
    public var magnitudeHundredths: UInt16
    /// timm's random sign flip for signed ops.
    public var negate: Bool

    /// One op at magnitude `magnitudeHundredths / 100`; `negate` flips the sign of the signed ops.
    public init(op: RandAugmentOp, magnitudeHundredths: UInt16, negate: Bool = false) {
        self.op = op
        self.magnitudeHundredths = magnitudeHundredths
        self.negate = negate
    }

    /// The magnitude as timm uses it, 0...10 (`magnitudeHundredths / 100`).
    public var magnitude: Double { Double(magnitudeHundredths) / 100 }
}

/// Random erasing of one box, filled with per-pixel normal noise drawn from `noiseSeed`.
public struct RandomErase: Sendable, Equatable, Hashable {
    /// The erased box, in output pixels.
    public var box: PixelBox
    /// Seed of the per-pixel normal noise that fills the box, so the erase can be replayed exactly.
    public var noiseSeed: UInt32

    /// An erase of `box` filled with the noise of `noiseSeed`.
    public init(box: PixelBox, noiseSeed: UInt32) {
        self.box = box
        self.noiseSeed = noiseSeed
    }
}

/// How one image was turned into a training view: crop, flip, RandAugment ops, erasing.
public struct AugmentationView: Sendable, Equatable, Hashable {
    /// The most RandAugment operations one view stores (the encoding's fixed slots).
    public static let maxOperations = 3

    /// Width of the source image in pixels, before the crop.
    public var sourceWidth: UInt16
    /// Height of the source image in pixels, before the crop.
    public var sourceHeight: UInt16
    /// RandomResizedCrop box in source pixels, resized to the shard's output size.
    public var crop: PixelBox
    /// True when the cropped image was mirrored left to right (before the RandAugment ops).
    public var horizontalFlip: Bool
    /// Applied in order, after crop and flip; at most three.
    public var operations: [RandAugmentOperation]
    /// The random erase applied last, if any.
    public var erase: RandomErase?

    /// A view of a `sourceWidth` × `sourceHeight` image; call
    /// ``AugmentationParameters/validate(outputHeight:outputWidth:)`` on the parameters that hold it before encoding.
    public init(sourceWidth: UInt16, sourceHeight: UInt16, crop: PixelBox, horizontalFlip: Bool = false,
                operations: [RandAugmentOperation] = [], erase: RandomErase? = nil) {
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.crop = crop
        self.horizontalFlip = horizontalFlip
        self.operations = operations
        self.erase = erase
    }
}

/// How a record's image is mixed with its partner's (the mode byte of the spec's section 4; 0 means no mix).
public enum MixMode: UInt8, Sendable {
    /// λ · this image + (1 − λ) · the partner's.
    case mixup = 1
    /// The partner's pixels pasted inside ``Mix/box``; λ is the share of this image that remains.
    case cutmix = 2
}

/// Mixup or cutmix with a partner sample, whose own view is part of the record.
public struct Mix: Sendable, Equatable, Hashable {
    /// Mixup or cutmix.
    public var mode: MixMode
    /// λ × 65535 as an integer (λ on a 1/65535 grid).
    public var lambdaCode: UInt16
    /// The partner's sample id (in the dataset's key table).
    public var partner: UInt32
    /// The pasted box (cutmix only), in output pixels.
    public var box: PixelBox?
    /// How the partner image was augmented before mixing (the same view rules apply).
    public var partnerView: AugmentationView

    /// A mix with sample `partner` at λ = `lambdaCode / 65535`; `box` is the cutmix box (nil for mixup).
    public init(mode: MixMode, lambdaCode: UInt16, partner: UInt32, box: PixelBox? = nil,
                partnerView: AugmentationView) {
        self.mode = mode
        self.lambdaCode = lambdaCode
        self.partner = partner
        self.box = box
        self.partnerView = partnerView
    }

    /// λ in [0, 1], decoded from `lambdaCode / 65535`.
    public var lambda: Double { Double(lambdaCode) / 65535 }
}

/// Explicit augmentation parameters of one record (augmentation kind `params`, version 1).
///
/// The 80-byte code of Spec/FORMAT.md section 4 is an invertible encoding of this type: every value of
/// the type that passes ``validate(outputHeight:outputWidth:)`` encodes, and decoding gives it back.
public struct AugmentationParameters: Sendable, Equatable, Hashable {
    /// Bytes of one encoded `params` code (A in the spec): view 32, mix 16, partner view 32.
    public static let encodedSize = 80

    /// The record's own view of its image.
    public var view: AugmentationView
    /// The mix with a partner sample, if any (encoded as mode 0 when nil).
    public var mix: Mix?

    /// Parameters of one record; nothing is checked until ``validate(outputHeight:outputWidth:)``.
    public init(view: AugmentationView, mix: Mix? = nil) {
        self.view = view
        self.mix = mix
    }

    /// Checks every rule of the spec; throws `bad-augmentation` naming the first one broken.
    public func validate(outputHeight: Int, outputWidth: Int) throws {
        try Self.validate(view, "view", outputHeight: outputHeight, outputWidth: outputWidth)
        guard let mix else { return }
        try Self.validate(mix.partnerView, "partner view", outputHeight: outputHeight, outputWidth: outputWidth)
        switch mix.mode {
        case .mixup:
            guard mix.box == nil else { throw ShardError(.badAugmentation, "mixup has no box") }
        case .cutmix:
            guard let box = mix.box, box.fits(width: outputWidth, height: outputHeight) else {
                throw ShardError(.badAugmentation, "cutmix box must lie inside the \(outputHeight)x\(outputWidth) output")
            }
        }
    }

    private static func validate(_ view: AugmentationView, _ name: String, outputHeight: Int, outputWidth: Int) throws {
        func fail(_ message: String) -> ShardError { ShardError(.badAugmentation, "\(name): \(message)") }
        guard view.sourceWidth >= 1, view.sourceHeight >= 1 else { throw fail("source size must be at least 1x1") }
        guard view.crop.fits(width: Int(view.sourceWidth), height: Int(view.sourceHeight)) else {
            throw fail("crop box must lie inside the \(view.sourceWidth)x\(view.sourceHeight) source")
        }
        guard view.operations.count <= AugmentationView.maxOperations else { throw fail("at most 3 RandAugment ops") }
        for operation in view.operations where operation.magnitudeHundredths > RandAugmentOperation.maxMagnitudeHundredths {
            throw fail("op magnitude must be at most 10.00")
        }
        if let erase = view.erase, !erase.box.fits(width: outputWidth, height: outputHeight) {
            throw fail("erase box must lie inside the \(outputHeight)x\(outputWidth) output")
        }
    }

    // MARK: Codec

    /// The 80-byte code. Throws `bad-augmentation` when the parameters break a rule.
    public func encoded(outputHeight: Int, outputWidth: Int) throws -> [UInt8] {
        try validate(outputHeight: outputHeight, outputWidth: outputWidth)
        var writer = ByteWriter(capacity: Self.encodedSize)
        Self.write(view, to: &writer)
        if let mix {
            writer.u8(mix.mode.rawValue)
            writer.u8(0)
            writer.u16(mix.lambdaCode)
            writer.u32(mix.partner)
            Self.write(mix.box, to: &writer)
            Self.write(mix.partnerView, to: &writer)
        } else {
            writer.append([UInt8](repeating: 0, count: Self.encodedSize - writer.bytes.count))
        }
        assert(writer.bytes.count == Self.encodedSize)
        return writer.bytes
    }

    private static func write(_ view: AugmentationView, to writer: inout ByteWriter) {
        writer.u16(view.sourceWidth)
        writer.u16(view.sourceHeight)
        write(view.crop, to: &writer)
        var flags = UInt8(view.horizontalFlip ? 1 : 0)
        if view.erase != nil { flags |= 2 }
        flags |= UInt8(view.operations.count) << 2
        writer.u8(flags)
        writer.u8(0)
        for slot in 0..<AugmentationView.maxOperations {
            guard slot < view.operations.count else { writer.u16(0); continue }
            let operation = view.operations[slot]
            writer.u16(UInt16(operation.op.rawValue) | (operation.negate ? 1 << 5 : 0) | operation.magnitudeHundredths << 6)
        }
        write(view.erase?.box, to: &writer)
        writer.u32(view.erase?.noiseSeed ?? 0)
    }

    private static func write(_ box: PixelBox?, to writer: inout ByteWriter) {
        writer.u16(box?.x ?? 0)
        writer.u16(box?.y ?? 0)
        writer.u16(box?.width ?? 0)
        writer.u16(box?.height ?? 0)
    }

    /// Decodes an 80-byte code, checking every rule of the spec.
    public init(code: UnsafeRawBufferPointer, outputHeight: Int, outputWidth: Int) throws {
        guard code.count == Self.encodedSize else {
            throw ShardError(.badAugmentation, "a params code has \(Self.encodedSize) bytes, got \(code.count)")
        }
        var reader = ByteReader(code, failure: .badAugmentation)
        let view = try Self.readView(&reader, "view")
        let mode = try reader.u8()
        let reserved = try reader.u8()
        guard reserved == 0 else { throw ShardError(.badAugmentation, "byte 33 is reserved and must be 0") }
        let lambdaCode = try reader.u16()
        let partner = try reader.u32()
        let box = try Self.readBox(&reader)
        var mix: Mix?
        switch mode {
        case 0:
            let rest = UnsafeRawBufferPointer(rebasing: code[34...])
            guard rest.allSatisfy({ $0 == 0 }) else {
                throw ShardError(.badAugmentation, "mix mode 0 requires bytes 34-79 to be 0")
            }
        case 1, 2:
            let partnerView = try Self.readView(&reader, "partner view")
            mix = Mix(mode: MixMode(rawValue: mode)!, lambdaCode: lambdaCode, partner: partner,
                      box: mode == 2 ? box : nil, partnerView: partnerView)
            if mode == 1, box != nil { throw ShardError(.badAugmentation, "mixup requires a zero box") }
        default:
            throw ShardError(.badAugmentation, "mix mode \(mode) is not 0, 1 or 2")
        }
        self.init(view: view, mix: mix)
        try validate(outputHeight: outputHeight, outputWidth: outputWidth)
    }

    /// A zero box reads as nil (absent).
    private static func readBox(_ reader: inout ByteReader) throws -> PixelBox? {
        let box = PixelBox(x: try reader.u16(), y: try reader.u16(), width: try reader.u16(), height: try reader.u16())
        return box == PixelBox(x: 0, y: 0, width: 0, height: 0) ? nil : box
    }

    private static func readView(_ reader: inout ByteReader, _ name: String) throws -> AugmentationView {
        func fail(_ message: String) -> ShardError { ShardError(.badAugmentation, "\(name): \(message)") }
        let sourceWidth = try reader.u16()
        let sourceHeight = try reader.u16()
        let crop = PixelBox(x: try reader.u16(), y: try reader.u16(), width: try reader.u16(), height: try reader.u16())
        let flags = try reader.u8()
        guard flags & 0xF0 == 0 else { throw fail("flag bits 4-7 must be 0") }
        guard try reader.u8() == 0 else { throw fail("reserved byte 13 must be 0") }
        let count = Int(flags >> 2) & 3
        var operations: [RandAugmentOperation] = []
        for slot in 0..<AugmentationView.maxOperations {
            let word = try reader.u16()
            if slot >= count {
                guard word == 0 else { throw fail("op slot \(slot) is past the op count and must be 0") }
                continue
            }
            guard let op = RandAugmentOp(rawValue: UInt8(word & 31)) else { throw fail("op id \(word & 31) is not 0-14") }
            operations.append(RandAugmentOperation(op: op, magnitudeHundredths: word >> 6, negate: word & 32 != 0))
        }
        let eraseBox = try readBox(&reader)
        let noiseSeed = try reader.u32()
        var erase: RandomErase?
        if flags & 2 != 0 {
            guard let eraseBox else { throw fail("erase flag set but the erase box is empty") }
            erase = RandomErase(box: eraseBox, noiseSeed: noiseSeed)
        } else if eraseBox != nil || noiseSeed != 0 {
            throw fail("erase fields must be 0 when erase is absent")
        }
        return AugmentationView(sourceWidth: sourceWidth, sourceHeight: sourceHeight, crop: crop,
                                horizontalFlip: flags & 1 != 0, operations: operations, erase: erase)
    }
}
