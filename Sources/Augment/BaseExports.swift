import TinyShardBase

/// The project's one image type (TinyShardBase), under the name Augment's users know.
public typealias RGBImage = TinyShardBase.RGBImage

/// The resampling filter of the crop-and-resize step (TinyShardBase), under the name Augment's users know.
public typealias ResizeInterpolation = TinyShardBase.ResizeInterpolation
