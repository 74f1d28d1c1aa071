import CoreMetrics
import Prometheus

/// Metrics for Prometheus at the admin server's `/metrics`: swift-metrics timers for request
/// latency, and gauges mirroring mntr's keys (without the `zk_` prefix, as ZooKeeper's
/// Prometheus provider names them), refreshed at each scrape. The registry is the server's own,
/// so several servers in one process never mix their figures.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let writeLatency: CoreMetrics.Timer
    let readLatency: CoreMetrics.Timer

    init() {
        let factory = PrometheusMetricsFactory(registry: registry)
        writeLatency = CoreMetrics.Timer(label: "write_latency_seconds", factory: factory)
        readLatency = CoreMetrics.Timer(label: "read_latency_seconds", factory: factory)
    }

    /// The text exposition of everything, with mntr's figures as of now.
    func exposition(_ report: ServerReport) -> String {
        for (key, value) in report.mntrPairs {
            guard let number = Double(value) else { continue }
            registry.makeGauge(name: String(key.dropFirst(3))).set(number)
        }
        return registry.emitToString()
    }
}
