import Distill

/// What the main job (``DistillDemo``) reports: one result per run, with its students and studies.
extension DistillDemo {
    /// One k of the K sweep: the student on the stored top-k, and what storing only the top k costs.
    public struct KPoint: Sendable {
        public var k: Int
        public var student: StudentResult
        /// Bytes per record of this format storing the top k (Spec/ANALYZE.md 3); nil when not measured.
        public var bytesPerRecord: Double?
    }

    /// Students without the hard samples, next to the same students with them (``Result/hard``, ``Result/shards``).
    public struct HardSampleStudy: Sendable {
        public var threshold: Double
        /// Training images left out, and their share of the images with records.
        public var excluded: Int
        public var share: Double
        public var hardWithout: StudentResult
        public var shardsWithout: StudentResult
    }

    /// What the stored teacher knows (``PassAnalysis``), in brief.
    public struct AnalysisSummary: Sendable {
        /// Share of records whose top-1 is the label, and whose top-n (n = min(5, K)) holds it.
        public var agreementTop1: Double
        public var agreementTopN: Double
        public var n: Int
        public var hardThreshold: Double
        public var hardImageShare: Double
        public var hardImages: Int
        public var massByK: [AnalysisResult.MassRow]
        /// Pearson correlation between the teacher's class correlations and each student's ("hard", "shards").
        public var similarity: [String: Double]
    }

    /// One student's outcome and cost.
    public struct StudentResult: Sendable {
        public var evaluation: Evaluation
        /// Training wall seconds (evaluation excluded) and process CPU seconds over the run.
        public var trainSeconds: Double
        public var cpuSeconds: Double
        public var imagesPerSecond: Double
        /// The online teacher's share of step time (0 for the others).
        public var teacherShare: Double
        /// (training seconds, evaluation top-1) after each evaluated epoch.
        public var curve: [(seconds: Double, top1: Double)]
    }

    public struct Result: Sendable {
        /// The digits CSV or the image store.
        public var images: String
        public var seed: UInt64
        public var validation: Bool
        /// What the models are evaluated on: "held-out", "validation" or "test" (``Options/evaluationImages``).
        public var split: String
        /// The test store (``Options/evaluationImages``).
        public var evaluationImages: String?
        /// The teacher was loaded from ``Options/teacherCache`` (its fingerprint's folder), not trained now.
        public var teacherCached: String?
        /// The K sweep, ascending k (empty without one).
        public var kSweep: [KPoint] = []
        public var hardSamples: HardSampleStudy?
        public var analysis: AnalysisSummary?
        public var teacher: Evaluation
        /// The given teacher's weights (``Options/teacherWeights``); nil when the job trained its teacher.
        public var teacherWeights: String?
        public var teacherParameters: Int
        public var teacherMACs: Int
        public var teacherTrainSeconds: Double
        public var studentParameters: Int
        public var studentMACs: Int
        public var hard: StudentResult
        public var online: StudentResult
        public var shards: StudentResult
        public var bytesPerRecord: Double
        public var records: Int
        /// The stored top-k the shards student trains on; ``passK`` the pass stored.
        public var k: Int
        public var passK: Int
        public var verifiedClean: Bool
        /// Wall seconds by stage.
        public var seconds: [String: Double]
    }
}
