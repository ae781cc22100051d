import Tensor
import TinyViT

/// A teacher: logits (N, classes) for normalised images (N, 3, imageSize, imageSize).
public protocol TeacherModel: AnyObject {
    var numClasses: Int { get }
    var imageSize: Int { get }
    func logits(_ images: Tensor) throws -> Tensor
}

/// Our TinyViT in eval mode (running BatchNorm statistics, no drop path).
public final class TinyViTTeacher: TeacherModel {
    public let model: TinyViT
    public init(_ model: TinyViT) { self.model = model }
    public var numClasses: Int { model.configuration.numClasses }
    public var imageSize: Int { model.configuration.imageSize }
    public func logits(_ images: Tensor) throws -> Tensor {
        try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
    }
}
