import Foundation
import Tensor

extension TinyViT {
    /// The model's `state_dict` as safetensors content: every parameter and running statistic
    /// (F32) and each BatchNorm's `num_batches_tracked` (I64 scalar), with timm's keys.
    public func stateDict() -> SafeTensors {
        var st = SafeTensors()
        for p in parameters { st.tensors[p.name] = p.value }
        for b in buffers { st.tensors[b.name] = b.value }
        for c in convNorms { st.integers[c.prefix + ".bn.num_batches_tracked"] = ([], [c.batchesTracked]) }
        return st
    }

    /// Loads a `state_dict` (e.g. timm's `save_file(model.state_dict())`). Every parameter and
    /// running statistic must be present with the right shape; `num_batches_tracked` is optional;
    /// `attention_bias_idxs` entries are ignored (they are rebuilt). `prefix` is prepended to
    /// every key looked up (for files that store weights as `weight.<key>`).
    /// - Throws: ``TinyViTError`` naming the key and `source`.
    public func loadStateDict(_ st: SafeTensors, prefix: String = "", source: String = "state dict",
                              allowUnexpectedKeys: Bool = false) throws {
        var expected = Set<String>()
        var updates: [(Tensor, Tensor)] = []
        for (name, target) in parameters.map({ ($0.name, $0.value) }) + buffers.map({ ($0.name, $0.value) }) {
            expected.insert(prefix + name)
            guard let t = st.tensors[prefix + name] else { throw TinyViTError.missingKey(key: prefix + name, file: source) }
            guard t.shape == target.shape || (t.count == target.count && t.shape.filter({ $0 != 1 }) == target.shape.filter({ $0 != 1 })) else {
                throw TinyViTError.shapeMismatch(key: prefix + name, expected: target.shape, found: t.shape, file: source)
            }
            updates.append((target, t))
        }
        var counters: [(ConvNorm, Int64)] = []
        for c in convNorms {
            let key = prefix + c.prefix + ".bn.num_batches_tracked"
            expected.insert(key)
            if let v = st.integers[key]?.values.first { counters.append((c, v)) }
        }
        if !allowUnexpectedKeys {
            for key in st.tensors.keys where key.hasPrefix(prefix) && !expected.contains(key) && !key.hasSuffix("attention_bias_idxs") {
                throw TinyViTError.unexpectedKey(key: key, file: source)
            }
        }
        for (target, t) in updates { target.assign(from: t) }
        for (c, v) in counters { c.batchesTracked = v }
    }

    /// Loads a safetensors checkpoint file.
    public func load(contentsOf url: URL) throws {
        try loadStateDict(try SafeTensors(contentsOf: url), source: url.path)
    }

    /// Saves the `state_dict` as a safetensors file that timm loads with `load_state_dict`.
    public func save(to url: URL) throws { try stateDict().write(to: url) }
}
