import Synchronization

/// Writes the replica has applied for one connection, waiting for the connection's event loop.
///
/// The replica applies writes in batches and completes each on its own thread. Hopping to the
/// event loop once per write costs a task, often a wake-up of the loop (an eventfd write) and a
/// flush (a writev) per reply; here only the write that finds the list empty schedules the hop,
/// and that one task answers every write appended meanwhile, in order. No wake-up is lost: an
/// append that finds the list non-empty comes after one that found it empty and whose drain
/// has not run yet (a drain empties the list), so that drain takes it.
final class CompletedWrites: Sendable {
    struct Item: Sendable {
        /// The request's position in the connection's queue.
        let index: Int
        let xid: Int32
        let outcome: WriteOutcome
        /// monotonicMillis when the write was submitted, for the latency statistics.
        let started: Int64
    }

    private let items = Mutex<[Item]>([])

    /// Appends in completion order; true when the list was empty, and the caller must then
    /// schedule a drain on the connection's loop.
    func append(_ item: Item) -> Bool {
        items.withLock { list in
            list.append(item)
            return list.count == 1
        }
    }

    /// Everything appended so far, oldest first; leaves the list empty.
    func drain() -> [Item] {
        items.withLock { list in
            var taken: [Item] = []
            swap(&taken, &list)
            return taken
        }
    }
}
