/// Errors of the augmentation code. Every case carries a sentence that says what was wrong with which
/// value, so a caller can prefix the file and record it came from.
public enum AugmentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An image value that cannot exist (wrong byte count, zero size).
    case badImage(String)
    /// Parameters that do not fit the image they are applied to (crop outside the source, size mismatch,
    /// a mix without its partner image).
    case mismatch(String)
    /// A source or output size the parameter grid cannot express (sizes are u16 in Spec/FORMAT.md §4).
    case outOfRange(String)

    /// The case's sentence after `bad image:`, `parameters do not fit the image:` or `out of range:`.
    public var description: String {
        switch self {
        case .badImage(let message): return "bad image: \(message)"
        case .mismatch(let message): return "parameters do not fit the image: \(message)"
        case .outOfRange(let message): return "out of range: \(message)"
        }
    }
}
