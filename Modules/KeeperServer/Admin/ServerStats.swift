import Synchronization

/// Request counters and latency, shared by the event loops (atomics; no lock on the hot path).
/// `srst` resets them, as ZooKeeper's ServerStats.reset does.
public final class ServerStats: Sendable {
    let packetsReceived = Atomic<Int64>(0)
    let packetsSent = Atomic<Int64>(0)
    let latencyTotal = Atomic<Int64>(0)
    let latencyCount = Atomic<Int64>(0)
    let latencyMin = Atomic<Int64>(Int64.max)
    let latencyMax = Atomic<Int64>(0)
    let authFailed = Atomic<Int64>(0)
    let largeRequestsRejected = Atomic<Int64>(0)
    let connectionRejected = Atomic<Int64>(0)
    public let startedAt: ContinuousClock.Instant = .now

    public init() {}

    public func received() { packetsReceived.add(1, ordering: .relaxed) }
    public func sent() { packetsSent.add(1, ordering: .relaxed) }
    public func authFailure() { authFailed.add(1, ordering: .relaxed) }
    public func largeRequestRejected() { largeRequestsRejected.add(1, ordering: .relaxed) }
    public func connectionRefused() { connectionRejected.add(1, ordering: .relaxed) }

    /// Records one request's latency in milliseconds.
    public func latency(_ ms: Int64) {
        latencyTotal.add(ms, ordering: .relaxed)
        latencyCount.add(1, ordering: .relaxed)
        var current = latencyMin.load(ordering: .relaxed)
        while ms < current {
            let (exchanged, original) = latencyMin.compareExchange(expected: current, desired: ms, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
        current = latencyMax.load(ordering: .relaxed)
        while ms > current {
            let (exchanged, original) = latencyMax.compareExchange(expected: current, desired: ms, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }

    public func reset() {
        packetsReceived.store(0, ordering: .relaxed)
        packetsSent.store(0, ordering: .relaxed)
        latencyTotal.store(0, ordering: .relaxed)
        latencyCount.store(0, ordering: .relaxed)
        latencyMin.store(Int64.max, ordering: .relaxed)
        latencyMax.store(0, ordering: .relaxed)
    }

    public struct Snapshot: Hashable, Sendable {
        public var received: Int64
        public var sent: Int64
        public var minLatency: Int64
        public var avgLatency: Double
        public var maxLatency: Int64
        public var authFailed: Int64
        public var largeRequestsRejected: Int64
        public var connectionRejected: Int64
        public var uptimeMillis: Int64
    }

    public func snapshot() -> Snapshot {
        let count = latencyCount.load(ordering: .relaxed)
        let min = latencyMin.load(ordering: .relaxed)
        let elapsed = ContinuousClock.now - startedAt
        return Snapshot(
            received: packetsReceived.load(ordering: .relaxed),
            sent: packetsSent.load(ordering: .relaxed),
            minLatency: count == 0 ? 0 : min,
            avgLatency: count == 0 ? 0 : Double(latencyTotal.load(ordering: .relaxed)) / Double(count),
            maxLatency: latencyMax.load(ordering: .relaxed),
            authFailed: authFailed.load(ordering: .relaxed),
            largeRequestsRejected: largeRequestsRejected.load(ordering: .relaxed),
            connectionRejected: connectionRejected.load(ordering: .relaxed),
            uptimeMillis: elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }
}
