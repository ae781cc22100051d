/// This project's version, written into every shard's provenance as `writer`.
public enum TinyShardVersion {
    /// The version string, `0.1.0`.
    public static let current = "0.1.0"
    /// `tinyshard 0.1.0`: the provenance `writer` value.
    public static var writer: String { "tinyshard \(current)" }
}
