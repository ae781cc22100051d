import Tensor
import TinyViT

/// A teacher: logits (N, classes) for normalised images (N, 3, imageSize, imageSize).
public protocol TeacherModel: AnyObject {
    /// The number of classes of the logits.
    var numClasses: Int { get }
    /// The side in pixels of the square images the teacher takes.
    var imageSize: Int { get }
    /// The logits (N, ``numClasses``) of a batch of normalised images (N, 3, ``imageSize``, ``imageSize``).
    func logits(_ images: Tensor) throws -> Tensor
}

/// Our TinyViT in eval mode (running BatchNorm statistics, no drop path).
public final class TinyViTTeacher: TeacherModel {
    /// The model, used in eval mode.
    public let model: TinyViT
    /// A teacher that runs `model` in eval mode.
    public init(_ model: TinyViT) { self.model = model }
    /// The configuration's class count.
    public var numClasses: Int { model.configuration.numClasses }
    /// The configuration's image size.
    public var imageSize: Int { model.configuration.imageSize }
    /// A forward pass in eval mode without recording gradients.
    public func logits(_ images: Tensor) throws -> Tensor {
        try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
    }
}
