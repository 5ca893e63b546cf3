#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CCoil

/// A joinable pthread running a closure, with a name and an optional stack size.
struct OSThread: @unchecked Sendable {
    // SAFETY: a pthread_t is an opaque handle; joining it from another thread is what it is for.
    let handle: pthread_t

    private final class Start {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) { self.name = name; self.body = body }
    }

    /// Starts a thread running `body`. Throws `RuntimeError.threadStart` with the errno on failure.
    static func start(name: String, stackSize: Int?, _ body: @escaping () -> Void) throws(RuntimeError) -> OSThread {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if let stackSize {
            let rc = pthread_attr_setstacksize(&attributes, max(stackSize, Int(PTHREAD_STACK_MIN)))
            if rc != 0 { throw .threadStart(errno: rc) }
        }
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var handle = pthread_t()
        let rc = pthread_create(&handle, &attributes, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            // Linux limits thread names to 15 bytes.
            _ = coil_thread_set_name(String(start.name.utf8.prefix(15))!)
            start.body()
            return nil
        }, start)
        if rc != 0 {
            Unmanaged<Start>.fromOpaque(start).release()
            throw .threadStart(errno: rc)
        }
        return OSThread(handle: handle)
    }

    func join() { pthread_join(handle, nil) }
    func detach() { pthread_detach(handle) }

}
