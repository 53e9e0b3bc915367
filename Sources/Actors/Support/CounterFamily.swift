import ChatRuntime
import Metrics

/// The counters of one metric by the value of one dimension (`participants_cache_reads_total`
/// by `result`), each handle made on first use and kept: making a handle goes through the metrics
/// factory's registry, which costs more than the increment and showed up in read-path profiles.
final class CounterFamily: Sendable {
    private let label: String
    private let dimension: String
    private let counters = AnnotatedMutex<[String: Counter]>([:])

    init(label: String, dimension: String) {
        self.label = label
        self.dimension = dimension
    }

    func increment(_ value: String, by amount: Int = 1) {
        let counter = counters.withLock { counters in
            if let counter = counters[value] { return counter }
            let counter = Counter(label: label, dimensions: [(dimension, value)])
            counters[value] = counter
            return counter
        }
        counter.increment(by: amount)
    }
}
