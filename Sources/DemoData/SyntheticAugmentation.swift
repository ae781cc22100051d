#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// Draws `AugmentationParameters` the way the TinyViT training recipe does (timm's
/// `rand-m9-mstd0.5-inc1` RandAugment, RandomResizedCrop, horizontal flip, random erasing with
/// probability 0.25, mixup 0.8 / cutmix 1.0 switched half and half), on the spec's grid. For demo data
/// and tests; a real teacher pass draws them in the augmentation library.
public struct SyntheticAugmentation: Sendable {
    /// Height of the training view in pixels.
    public var outputHeight: Int
    /// Width of the training view in pixels.
    public var outputWidth: Int

    /// Draws for views of `outputHeight` × `outputWidth` pixels (224 × 224 by default, TinyViT's input).
    public init(outputHeight: Int = 224, outputWidth: Int = 224) {
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }

    /// Ops whose sign timm flips at random (`_randomly_negate`).
    private static let signed: Set<RandAugmentOp> = [.rotate, .shearX, .shearY, .translateXRel, .translateYRel,
                                                     .colorIncreasing, .contrastIncreasing, .brightnessIncreasing,
                                                     .sharpnessIncreasing]

    /// One view of an image of the given source size.
    public func view(sourceWidth: Int, sourceHeight: Int, using random: inout SeededGenerator) -> AugmentationView {
        let crop = randomResizedCrop(width: sourceWidth, height: sourceHeight, using: &random)
        var operations: [RandAugmentOperation] = []
        for _ in 0..<2 {  // two ops, each applied with probability 0.5
            guard random.chance(0.5) else { continue }
            let op = RandAugmentOp.allCases[random.integer(0...(RandAugmentOp.allCases.count - 1))]
            let magnitude = min(10, max(0, 9 + 0.5 * random.normal()))
            operations.append(RandAugmentOperation(op: op, magnitudeHundredths: UInt16((magnitude * 100).rounded()),
                                                   negate: Self.signed.contains(op) && random.chance(0.5)))
        }
        var erase: RandomErase?
        if random.chance(0.25) {
            erase = randomErase(using: &random)
        }
        return AugmentationView(sourceWidth: UInt16(sourceWidth), sourceHeight: UInt16(sourceHeight), crop: crop,
                                horizontalFlip: random.chance(0.5), operations: operations, erase: erase)
    }

    /// A whole record's parameters: a view, and a mix with a partner sample and its own view.
    public func parameters(sourceWidth: Int, sourceHeight: Int, partner: UInt32, partnerWidth: Int, partnerHeight: Int,
                           using random: inout SeededGenerator) -> AugmentationParameters {
        let view = view(sourceWidth: sourceWidth, sourceHeight: sourceHeight, using: &random)
        let partnerView = self.view(sourceWidth: partnerWidth, sourceHeight: partnerHeight, using: &random)
        if random.chance(0.5) {
            let lambda = random.beta(0.8, 0.8)
            return AugmentationParameters(view: view, mix: Mix(mode: .mixup, lambdaCode: UInt16((lambda * 65535).rounded()),
                                                               partner: partner, partnerView: partnerView))
        }
        // cutmix: λ ~ Beta(1, 1), a box of area (1 − λ), clipped to the image; λ corrected to the box.
        let lambda = random.uniform()
        let ratio = (1 - lambda).squareRoot()
        let cutWidth = Int(Double(outputWidth) * ratio)
        let cutHeight = Int(Double(outputHeight) * ratio)
        let centerX = random.integer(0...(outputWidth - 1))
        let centerY = random.integer(0...(outputHeight - 1))
        let x0 = max(0, min(centerX - cutWidth / 2, outputWidth - 1))
        let y0 = max(0, min(centerY - cutHeight / 2, outputHeight - 1))
        let x1 = max(x0 + 1, min(centerX + cutWidth / 2, outputWidth))
        let y1 = max(y0 + 1, min(centerY + cutHeight / 2, outputHeight))
        let box = PixelBox(x: UInt16(x0), y: UInt16(y0), width: UInt16(x1 - x0), height: UInt16(y1 - y0))
        let corrected = 1 - Double((x1 - x0) * (y1 - y0)) / Double(outputWidth * outputHeight)
        return AugmentationParameters(view: view, mix: Mix(mode: .cutmix, lambdaCode: UInt16((corrected * 65535).rounded()),
                                                           partner: partner, box: box, partnerView: partnerView))
    }

    /// torchvision's RandomResizedCrop box: scale (0.08, 1), ratio (3/4, 4/3), ten tries, then a centre crop.
    private func randomResizedCrop(width: Int, height: Int, using random: inout SeededGenerator) -> PixelBox {
        let area = Double(width * height)
        for _ in 0..<10 {
            let target = area * random.uniform(0.08, 1)
            let aspect = exp(random.uniform(log(3.0 / 4), log(4.0 / 3)))
            let w = Int((target * aspect).squareRoot().rounded())
            let h = Int((target / aspect).squareRoot().rounded())
            if w > 0, h > 0, w <= width, h <= height {
                return PixelBox(x: UInt16(random.integer(0...(width - w))), y: UInt16(random.integer(0...(height - h))),
                                width: UInt16(w), height: UInt16(h))
            }
        }
        let side = min(width, height)
        return PixelBox(x: UInt16((width - side) / 2), y: UInt16((height - side) / 2), width: UInt16(side), height: UInt16(side))
    }

    /// timm's RandomErasing box: area (0.02, 1/3) of the output, log-aspect in (log 0.3, log 1/0.3).
    private func randomErase(using random: inout SeededGenerator) -> RandomErase? {
        let area = Double(outputWidth * outputHeight)
        for _ in 0..<10 {
            let target = area * random.uniform(0.02, 1.0 / 3)
            let aspect = exp(random.uniform(log(0.3), log(1 / 0.3)))
            let h = Int((target * aspect).squareRoot().rounded())
            let w = Int((target / aspect).squareRoot().rounded())
            if w >= 1, h >= 1, w < outputWidth, h < outputHeight {
                let box = PixelBox(x: UInt16(random.integer(0...(outputWidth - w))), y: UInt16(random.integer(0...(outputHeight - h))),
                                   width: UInt16(w), height: UInt16(h))
                return RandomErase(box: box, noiseSeed: UInt32(truncatingIfNeeded: random.next()))
            }
        }
        return nil
    }
}
