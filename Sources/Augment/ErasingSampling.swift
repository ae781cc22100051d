#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// timm's `RandomErasing._erase` with `max_count=1`: erase with `probability`; up to `attempts` tries of
/// (area uniform in `area` × output area, aspect log-uniform in `aspect`, h = round(√(area·aspect)),
/// w = round(√(area/aspect))), accepted when w < output width and h < output height, at a uniform
/// position. The noise seed is the stream's next 32 bits.
///
/// One difference, forced by the grid: timm accepts a box that rounds to zero width or height (and erases
/// nothing); the grid has no empty box, so that case is recorded as "no erase" — the same image.
/// Spec/SAMPLER.md 7.
enum ErasingSampling {
    static func draw(_ recipe: ErasingRecipe, outputWidth: Int, outputHeight: Int,
                     random: inout SampleRandom) -> RandomErase? {
        guard random.uniform() < recipe.probability else { return nil }
        let area = Double(outputWidth * outputHeight)
        let logAspect = (log(recipe.aspect.lowerBound), log(recipe.aspect.upperBound))
        for _ in 0..<recipe.attempts {
            let targetArea = random.uniform(recipe.area.lowerBound, recipe.area.upperBound) * area
            let aspect = exp(random.uniform(logAspect.0, logAspect.1))
            let h = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let w = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            guard w < outputWidth, h < outputHeight else { continue }
            let top = random.integer(0, outputHeight - h)
            let left = random.integer(0, outputWidth - w)
            guard w >= 1, h >= 1 else { return nil }
            let seed = UInt32(truncatingIfNeeded: random.next() >> 32)
            return RandomErase(box: PixelBox(x: UInt16(left), y: UInt16(top), width: UInt16(w), height: UInt16(h)),
                               noiseSeed: seed)
        }
        return nil
    }
}
