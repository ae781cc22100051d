import ImageStore

/// Which store images a run trains on and which it evaluates on, by key hash (`HeldOutSplit/unitHash`),
/// so that the teacher, its pass and every student agree without sharing any file.
///
/// With u = unitHash(key): u < heldOut is the held-out split, the only one results are reported on.
/// With `validation` > 0, heldOut ≤ u < heldOut + validation is the validation split: runs train
/// without it *and* without the held-out split, and evaluate on it — hyper-parameters are chosen there,
/// never on the held-out split.
public struct DataSplit: Sendable, Equatable {
    /// Store indices, ascending.
    public var train: [Int]
    /// Store indices evaluated on, ascending: the validation split when there is one, else the held-out split.
    public var evaluation: [Int]
    /// True when ``evaluation`` is the validation split (`validationFraction` > 0).
    public var isValidation: Bool

    /// Splits every image of `store` by the hash of its key: held out below `heldOutFraction`, validation in the next
    /// `validationFraction`, training above (both fractions in [0, 1]).
    public init(store: ImageStore, heldOutFraction: Double, validationFraction: Double = 0) {
        train = []; evaluation = []
        isValidation = validationFraction > 0
        for (index, key) in store.keys().enumerated() {
            let u = HeldOutSplit.unitHash(key)
            if u < heldOutFraction {
                if !isValidation { evaluation.append(index) }
            } else if u < heldOutFraction + validationFraction {
                evaluation.append(index)
            } else {
                train.append(index)
            }
        }
    }
}
