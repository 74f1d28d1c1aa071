import Dispatch
import Foundation
import Synchronization

/// Turns the first Ctrl-C (SIGINT) or SIGTERM into an orderly stop: the run in progress stops
/// sending, cleans up its znodes and closes its sessions, and no further run starts. A second
/// signal exits at once (leaving the znodes behind, as the message then says).
final class InterruptSwitch: Sendable {
    private struct State {
        var interrupted = false
        var sessions: [Session] = []
    }

    /// The state the signal handlers share with the runs (a class: a Mutex cannot be copied
    /// into the handlers' closures).
    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    private let shared = Shared()
    /// The signal sources, kept alive (and cancelled) with the switch; behind a Mutex because
    /// dispatch sources are not Sendable.
    private let sources: Mutex<[any DispatchSourceSignal]>

    /// Installs the handlers; the switch must live as long as runs do.
    init(log: @escaping @Sendable (String) -> Void) {
        var sources: [any DispatchSourceSignal] = []
        let shared = self.shared
        for signalNumber in [SIGINT, SIGTERM] {
            // The default action (terminate) is replaced by the dispatch source below.
            _ = signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                let (first, sessions) = shared.state.withLock { current -> (Bool, [Session]) in
                    let first = !current.interrupted
                    current.interrupted = true
                    return (first, current.sessions)
                }
                guard first else {
                    let pid = ProcessInfo.processInfo.processIdentifier
                    log("interrupted again: exiting without cleaning up: remove /keeper-bench-\(pid)-* yourself "
                        + "(zkCli.sh deleteall)")
                    exit(130)
                }
                log("interrupted: stopping, cleaning up and closing the sessions (interrupt again to quit at once)")
                for session in sessions { session.interrupt() }
            }
            source.resume()
            sources.append(source)
        }
        self.sources = Mutex(sources)
    }

    deinit {
        sources.withLock { sources in
            for source in sources { source.cancel() }
        }
    }

    var isInterrupted: Bool { shared.state.withLock { $0.interrupted } }

    /// The sessions an interrupt must stop; sessions registered after an interrupt stop at once.
    func register(_ sessions: [Session]) {
        let interrupted = shared.state.withLock { current -> Bool in
            current.sessions.append(contentsOf: sessions)
            return current.interrupted
        }
        if interrupted { for session in sessions { session.interrupt() } }
    }

    func unregister(_ sessions: [Session]) {
        let ids = Set(sessions.map { ObjectIdentifier($0.channel) })
        shared.state.withLock { current in current.sessions.removeAll { ids.contains(ObjectIdentifier($0.channel)) } }
    }
}
