/// The future returned by `map(_:)`: `base`'s output passed through `transform`.
public struct Map<Base: Future & ~Copyable, Output>: ~Copyable, Future {
    @usableFromInline var base: Base?
    @usableFromInline let transform: (Base.Output) -> Output

    @inlinable
    init(base: consuming Base, transform: @escaping (Base.Output) -> Output) {
        self.base = consume base
        self.transform = transform
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        guard base != nil else { preconditionFailure("Map polled after completion") }
        switch base!.poll(&context) {
        case .pending: return .pending
        case .ready(let value):
            base = nil  // drop the finished future now, not when the Map goes away
            return .ready(transform(value))
        }
    }
}

extension Map: Copyable where Base: Copyable {}

/// The future returned by `join(_:_:)`: both outputs, once both are ready. Both are polled on every
/// poll of the join until each is ready, so they make progress concurrently.
public struct Join<A: Future & ~Copyable, B: Future & ~Copyable>: ~Copyable, Future {
    public typealias Output = (A.Output, B.Output)

    @usableFromInline var a: A?
    @usableFromInline var b: B?
    @usableFromInline var outputA: A.Output?
    @usableFromInline var outputB: B.Output?

    @inlinable
    init(_ a: consuming A, _ b: consuming B) {
        self.a = consume a
        self.b = consume b
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        if a != nil, case .ready(let value) = a!.poll(&context) {
            outputA = value
            a = nil
        }
        if b != nil, case .ready(let value) = b!.poll(&context) {
            outputB = value
            b = nil
        }
        guard let left = outputA, let right = outputB else { return .pending }
        outputA = nil
        outputB = nil
        return .ready((left, right))
    }
}

extension Join: Copyable where A: Copyable, B: Copyable {}

/// The future returned by `select(_:_:)`: the output of whichever future finishes first. The other
/// one is dropped as soon as there is a winner (dropping a future cancels it). When both are ready
/// in the same poll, `a` wins.
public struct Select<A: Future & ~Copyable, B: Future & ~Copyable>: ~Copyable, Future {
    public typealias Output = Either<A.Output, B.Output>

    @usableFromInline var a: A?
    @usableFromInline var b: B?

    @inlinable
    init(_ a: consuming A, _ b: consuming B) {
        self.a = consume a
        self.b = consume b
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        guard a != nil, b != nil else { preconditionFailure("Select polled after completion") }
        if case .ready(let value) = a!.poll(&context) {
            a = nil
            b = nil
            return .ready(.left(value))
        }
        if case .ready(let value) = b!.poll(&context) {
            a = nil
            b = nil
            return .ready(.right(value))
        }
        return .pending
    }
}

extension Select: Copyable where A: Copyable, B: Copyable {}

/// The future returned by `joinAll`: every output, in the order the futures were given.
///
/// Each poll polls every future that is not finished yet; finished ones are dropped at once.
public struct JoinAll<Element: Future & ~Copyable>: ~Copyable, Future {
    public typealias Output = [Element.Output]

    // Futures live in one buffer; a finished one is deinitialised in place and marked in `outputs`.
    // (A buffer of `Element?` would be simpler, but polling through `buffer[i]!` miscompiles under
    // -sanitize=thread with Swift 6.3.)
    @usableFromInline let futures: UnsafeMutablePointer<Element>
    @usableFromInline let count: Int
    @usableFromInline var outputs: [Element.Output?]
    @usableFromInline var remaining: Int

    /// Builds `count` futures with `make(index)`; works for noncopyable futures such as join handles.
    @inlinable
    public init(count: Int, _ make: (Int) throws -> Element) rethrows {
        precondition(count >= 0, "JoinAll needs a non-negative count")
        // Build into a local buffer first, so that a throwing `make` never meets a deinit.
        let buffer = UnsafeMutablePointer<Element>.allocate(capacity: count)
        var built = 0
        defer {
            if built < count {  // `make` threw: drop the ones already built
                buffer.deinitialize(count: built)
                buffer.deallocate()
            }
        }
        while built < count {
            (buffer + built).initialize(to: try make(built))
            built += 1
        }
        futures = buffer
        self.count = count
        outputs = Array(repeating: nil, count: count)
        remaining = count
    }

    @inlinable
    public mutating func poll(_ context: inout Context) -> Poll<Output> {
        for index in 0..<count where outputs[index] == nil {
            if case .ready(let value) = (futures + index).pointee.poll(&context) {
                (futures + index).deinitialize(count: 1)
                outputs[index] = value
                remaining -= 1
            }
        }
        guard remaining == 0 else { return .pending }
        remaining = -1  // polled after completion from now on
        return .ready(outputs.map { $0! })
    }

    @inlinable
    deinit {
        for index in 0..<count where outputs[index] == nil {
            (futures + index).deinitialize(count: 1)
        }
        futures.deallocate()
    }
}

extension JoinAll where Element: Copyable {
    /// All of `futures`, joined.
    @inlinable
    public init<S: Sequence>(_ futures: S) where S.Element == Element {
        let array = Array(futures)
        self.init(count: array.count) { array[$0] }
    }
}

/// Both futures' outputs once both are ready.
@inlinable
public func join<A: Future & ~Copyable, B: Future & ~Copyable>(
    _ a: consuming A, _ b: consuming B
) -> Join<A, B> {
    Join(a, b)
}

/// The first of two futures to finish; the other is dropped.
@inlinable
public func select<A: Future & ~Copyable, B: Future & ~Copyable>(
    _ a: consuming A, _ b: consuming B
) -> Select<A, B> {
    Select(a, b)
}

/// Every future's output, in order.
@inlinable
public func joinAll<S: Sequence>(_ futures: S) -> JoinAll<S.Element> where S.Element: Future {
    JoinAll(futures)
}

extension Future where Self: ~Copyable {
    /// This future's output passed through `transform`.
    @inlinable
    public consuming func map<T>(_ transform: @escaping (Output) -> T) -> Map<Self, T> {
        Map(base: self, transform: transform)
    }

    /// This future and `other`, both outputs once both are ready.
    @inlinable
    public consuming func join<Other: Future & ~Copyable>(_ other: consuming Other) -> Join<Self, Other> {
        Join(self, other)
    }

    /// Whichever of this future and `other` finishes first; the loser is dropped.
    @inlinable
    public consuming func select<Other: Future & ~Copyable>(_ other: consuming Other) -> Select<Self, Other> {
        Select(self, other)
    }
}
