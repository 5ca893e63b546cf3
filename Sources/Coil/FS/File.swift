import CCoil
import CoilCore

#if canImport(Glibc)
import Glibc
#endif

/// How ``File/open(_:options:timeout:)`` opens a file (after Rust's `OpenOptions`).
///
/// ```swift
/// let log = try await File.open("app.log", options: .append)
/// let scratch = try await File.open("/tmp/x", options: OpenOptions(read: true, write: true, create: true))
/// ```
public struct OpenOptions: Sendable, Hashable {
    public var read: Bool
    public var write: Bool
    /// Every write goes to the end of the file (offsets given to writes are ignored).
    public var append: Bool
    /// Create the file if it does not exist.
    public var create: Bool
    /// Fail with `EEXIST` if the file exists (implies `create`).
    public var createNew: Bool
    /// Cut the file to zero length on open.
    public var truncate: Bool
    /// Permission bits for a created file (before the umask).
    public var permissions: UInt32

    public init(read: Bool = false, write: Bool = false, append: Bool = false, create: Bool = false,
                createNew: Bool = false, truncate: Bool = false, permissions: UInt32 = 0o644) {
        self.read = read
        self.write = write
        self.append = append
        self.create = create
        self.createNew = createNew
        self.truncate = truncate
        self.permissions = permissions
    }

    /// Read only; the file must exist.
    public static let readOnly = OpenOptions(read: true)
    /// Write from the start, creating the file or cutting it to zero length.
    public static let writeTruncate = OpenOptions(write: true, create: true, truncate: true)
    /// Append, creating the file if needed.
    public static let append = OpenOptions(write: true, append: true, create: true)

    var flags: Int32 {
        var flags: Int32 = O_CLOEXEC
        let writes = write || append
        flags |= read && writes ? O_RDWR : writes ? O_WRONLY : O_RDONLY
        if append { flags |= O_APPEND }
        if create || createNew { flags |= O_CREAT }
        if createNew { flags |= O_EXCL }
        if truncate { flags |= O_TRUNC }
        return flags
    }
}

/// A point in time as the file system records it: seconds and nanoseconds since the epoch.
public struct FileTime: Sendable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public static func < (a: FileTime, b: FileTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// What `statx(2)` says about a file.
public struct FileMetadata: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case regular, directory, symbolicLink, characterDevice, blockDevice, fifo, socket, unknown
    }

    public var size: UInt64
    public var kind: Kind
    /// Permission bits (`0o7777` of the mode).
    public var permissions: UInt32
    public var linkCount: UInt32
    public var userID: UInt32
    public var groupID: UInt32
    public var inode: UInt64
    /// The file system's preferred I/O size.
    public var blockSize: UInt32
    /// 512-byte blocks allocated.
    public var blocks: UInt64
    public var accessed: FileTime
    public var modified: FileTime
    public var changed: FileTime
    /// Creation time, when the file system records one.
    public var created: FileTime?

    init(_ stat: coil_file_stat_t) {
        size = stat.size
        switch stat.mode & UInt32(S_IFMT) {
        case UInt32(S_IFREG): kind = .regular
        case UInt32(S_IFDIR): kind = .directory
        case UInt32(S_IFLNK): kind = .symbolicLink
        case UInt32(S_IFCHR): kind = .characterDevice
        case UInt32(S_IFBLK): kind = .blockDevice
        case UInt32(S_IFIFO): kind = .fifo
        case UInt32(S_IFSOCK): kind = .socket
        default: kind = .unknown
        }
        permissions = stat.mode & 0o7777
        linkCount = stat.link_count
        userID = stat.uid
        groupID = stat.gid
        inode = stat.inode
        blockSize = stat.block_size
        blocks = stat.blocks
        accessed = FileTime(seconds: stat.access_sec, nanoseconds: stat.access_nsec)
        modified = FileTime(seconds: stat.modification_sec, nanoseconds: stat.modification_nsec)
        changed = FileTime(seconds: stat.change_sec, nanoseconds: stat.change_nsec)
        created = stat.has_birth_time ? FileTime(seconds: stat.birth_sec, nanoseconds: stat.birth_nsec) : nil
    }
}

/// An open file, read and written through the worker's ring at explicit offsets.
///
/// ```swift
/// let file = try await File.open("/tmp/data", options: .writeTruncate)
/// try await file.writeAll(IOBuffer(string: "hello"), at: 0)
/// try await file.sync()
/// try await file.close()
///
/// let contents = try await File.contents(atPath: "/tmp/data")   // an IOBuffer
/// ```
///
/// Reads and writes take an ``IOBuffer`` and keep it until the kernel is done with it. `at: nil`
/// uses (and moves) the file's own position. Each operation takes an optional `timeout` (a linked
/// timeout; `ETIMEDOUT`). Errors name the operation and the errno (`ENOENT`, `EACCES`, `EISDIR`...).
/// The file closes when dropped, or with ``close()``.
public final class File: @unchecked Sendable {
    // SAFETY: immutable; the descriptor box decides the one closer.
    let descriptor: DescriptorBox

    init(fd: Int32) { descriptor = DescriptorBox(fd) }

    /// The file's descriptor (don't close it yourself).
    public var fileDescriptor: Int32 { descriptor.fd }

    /// Opens `path` (relative paths from the working directory). A path containing a NUL byte
    /// throws `EINVAL` (the kernel would read only the part before it).
    public static func open(_ path: String, options: OpenOptions = .readOnly, timeout: Duration? = nil) async throws(IOError) -> File {
        if path.utf8.contains(0) { throw IOError(operation: "open", errno: EINVAL) }
        let fd = try await IOOperation.start { op in
            let bytes = path.utf8
            let storage = op.extraStorage(bytes.count + 1)
            var index = 0
            for byte in bytes {
                storage.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
                index += 1
            }
            storage.storeBytes(of: 0, toByteOffset: index, as: UInt8.self)
            op.request = .open(flags: options.flags, mode: options.permissions)
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(IOOperation.descriptor)
        return File(fd: fd)
    }

    // MARK: Reading

    /// Reads into `buffer`'s free space from file offset `offset` (nil: the file position);
    /// returns the byte count (0 at the end of the file; fewer than asked near it) and grows
    /// `buffer.count` by it.
    nonisolated(nonsending) public func read(into buffer: IOBuffer, at offset: UInt64? = nil, timeout: Duration? = nil) async throws(IOError) -> Int {
        precondition(buffer.freeCapacity > 0, "File.read into a full buffer")
        return try await IOOperation.start { op in
            op.request = .read(fd: descriptor.fd, offset: offset ?? UInt64.max)
            op.buffer = buffer
            op.region = buffer.freeRegion
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(TCPStream.finishRead)
    }

    /// Everything from `offset` to the end of the file, in a buffer sized to fit.
    public func readToEnd(from offset: UInt64 = 0) async throws(IOError) -> IOBuffer {
        let size = try await metadata().size
        // One byte more than the size, so that the read that finds the end has room.
        var buffer = IOBuffer(capacity: Int(clamping: size > offset ? size - offset : 0) + 1)
        var position = offset
        while true {
            if buffer.freeCapacity == 0 {
                // The file grew since the metadata was read.
                let larger = IOBuffer(capacity: buffer.capacity * 2)
                buffer.withUnsafeBytes { larger.append($0) }
                buffer = larger
            }
            let n = try await read(into: buffer, at: position)
            if n == 0 { return buffer }
            position += UInt64(n)
        }
    }

    // MARK: Writing

    /// Writes `buffer`'s bytes from `from` once at file offset `offset` (nil: the file position);
    /// returns how many the kernel took.
    nonisolated(nonsending) public func write(_ buffer: IOBuffer, from start: Int = 0, at offset: UInt64? = nil, timeout: Duration? = nil) async throws(IOError) -> Int {
        precondition(start >= 0 && start <= buffer.count, "write from \(start) of \(buffer.count) bytes")
        return try await IOOperation.start { op in
            op.request = .write(fd: descriptor.fd, offset: offset ?? UInt64.max)
            op.buffer = buffer
            op.region = buffer.dataRegion(from: start)
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(IOOperation.count)
    }

    /// Writes all of `buffer`'s bytes at `offset` (nil: the file position), continuing after
    /// short writes. `timeout` applies to each write.
    nonisolated(nonsending) public func writeAll(_ buffer: IOBuffer, at offset: UInt64? = nil, timeout: Duration? = nil) async throws(IOError) {
        var written = 0
        while written < buffer.count {
            let n = try await write(buffer, from: written, at: offset.map { $0 + UInt64(written) }, timeout: timeout)
            if n == 0 { throw IOError(operation: "write", errno: EIO) }
            written += n
        }
    }

    // MARK: Durability, metadata, closing

    /// Flushes the file's data and metadata to the device (`fsync`).
    public func sync(timeout: Duration? = nil) async throws(IOError) {
        try await flush(dataOnly: false, timeout: timeout)
    }

    /// Flushes the file's data (and only the metadata needed to read it back: `fdatasync`).
    public func syncData(timeout: Duration? = nil) async throws(IOError) {
        try await flush(dataOnly: true, timeout: timeout)
    }

    private func flush(dataOnly: Bool, timeout: Duration?) async throws(IOError) {
        try await IOOperation.start { op in
            op.request = .fsync(fd: descriptor.fd, dataOnly: dataOnly)
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait(IOOperation.done)
    }

    /// The file's metadata (`statx`).
    public func metadata(timeout: Duration? = nil) async throws(IOError) -> FileMetadata {
        try await IOOperation.start { op in
            _ = op.extraStorage(Int(COIL_STATX_SIZE))
            op.request = .statx(fd: descriptor.fd)
            op.owner = descriptor
            op.timeout = timeout?.clampedNanoseconds ?? 0
        }.wait { op -> Result<FileMetadata, IOError> in
            guard op.result >= 0 else { return .failure(op.error(for: op.result)) }
            var stat = coil_file_stat_t()
            coil_statx_decode(op.extra, &stat)
            return .success(FileMetadata(stat))
        }
    }

    /// Closes the file through the ring. Later operations fail with `EBADF`.
    public func close() async throws(IOError) {
        try await descriptor.close()
    }

    // MARK: Whole files

    /// The whole contents of the file at `path`.
    public static func contents(atPath path: String) async throws(IOError) -> IOBuffer {
        let file = try await open(path)
        let contents = try await file.readToEnd()
        try await file.close()
        return contents
    }

    /// Replaces the file at `path` (created with `permissions` if missing) with `buffer`'s bytes.
    public static func write(_ buffer: IOBuffer, toPath path: String, permissions: UInt32 = 0o644) async throws(IOError) {
        var options = OpenOptions.writeTruncate
        options.permissions = permissions
        let file = try await open(path, options: options)
        try await file.writeAll(buffer, at: 0)
        try await file.close()
    }
}
