import ChatRuntime

/// Command-line options of `bench-batch-write`.
struct BatchWriteOptions: Sendable {
    var host = "127.0.0.1"
    var port = 6379
    var batchSize = 50
    var inFlight = 50
    var seconds = 5.0
    var warmupSeconds = 1.0
    var participants = 20
    /// Distinct chats written, round robin; more than fit in L1 so the L1 evicts as in a sync.
    var chats = 20_000
    var l1Capacity = 10_000
    /// With `--cluster`: the seed nodes of a Redis Cluster, written to in cluster mode (one
    /// pipeline per primary per batch); `--host` and `--port` are then ignored.
    var clusterSeeds: [RedisServerAddress] = []

    static let usage = """
        usage: bench-batch-write [--host 127.0.0.1] [--port 6379] [--batch-size 50] [--in-flight 50]
                                 [--seconds 5] [--warmup 1] [--participants 20] [--chats 20000] [--l1 10000]
                                 [--cluster host:port,host:port,...]
        """

    struct InvalidOption: Error, CustomStringConvertible {
        var description: String
    }

    init(arguments: [String]) throws(InvalidOption) {
        var index = 0
        func value(_ name: String) throws(InvalidOption) -> String {
            index += 1
            guard index < arguments.count else { throw InvalidOption(description: "\(name) needs a value") }
            return arguments[index]
        }
        func number<T: LosslessStringConvertible & Comparable>(_ name: String, _ text: String, atLeast minimum: T)
            throws(InvalidOption) -> T
        {
            guard let parsed = T(text), parsed >= minimum else {
                throw InvalidOption(description: "\(name) takes a number >= \(minimum), got \(text)")
            }
            return parsed
        }
        while index < arguments.count {
            let name = arguments[index]
            switch name {
            case "--host": host = try value(name)
            case "--port": port = try number(name, value(name), atLeast: 1)
            case "--batch-size": batchSize = try number(name, value(name), atLeast: 1)
            case "--in-flight": inFlight = try number(name, value(name), atLeast: 1)
            case "--seconds": seconds = try number(name, value(name), atLeast: 0.1)
            case "--warmup": warmupSeconds = try number(name, value(name), atLeast: 0.0)
            case "--participants": participants = try number(name, value(name), atLeast: 0)
            case "--chats": chats = try number(name, value(name), atLeast: 1)
            case "--l1": l1Capacity = try number(name, value(name), atLeast: 0)
            case "--cluster":
                let text = try value(name)
                do {
                    clusterSeeds = try text.split(separator: ",").map { try RedisServerAddress(parsing: String($0)) }
                } catch {
                    throw InvalidOption(description: "--cluster takes host:port,host:port,...: \(error)")
                }
                guard !clusterSeeds.isEmpty else { throw InvalidOption(description: "--cluster needs a seed node") }
            default: throw InvalidOption(description: "unknown option \(name)")
            }
            index += 1
        }
    }
}
