import TinyShardBase

/// The format's mixer (Spec/FORMAT.md 4), kept in the base module so that modules below the format
/// (TinyViT) share the one copy; ShardFormat's users keep writing `Mix64`.
public typealias Mix64 = TinyShardBase.Mix64

/// The project's one file-descriptor write loop (TinyShardBase), under the name ShardFormat's users know.
public typealias FileDescriptorIO = TinyShardBase.FileDescriptorIO
