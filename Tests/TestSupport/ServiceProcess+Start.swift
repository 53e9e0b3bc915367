import Foundation

/// The subprocess fixtures: `chat-service serve` and `chat-service stub-upstream` started the one
/// way every suite of the real binary starts them.
extension ServiceProcess {
    /// `chat-service serve` with ``TestServiceEnvironment/defaults`` and `environment` over them,
    /// on a free loopback HTTP port (unless `environment` names one): see ``httpBase``.
    public static func serve(environment: [String: String]) throws -> ServiceProcess {
        var merged = TestServiceEnvironment.defaults.merging(environment) { $1 }
        // The binary binds what it is told; a test must know the port before it asks.
        if merged["HTTP_PORT"] == "0" { merged["HTTP_PORT"] = "\(freeLoopbackPort())" }
        return try ServiceProcess(arguments: ["serve"], environment: merged)
    }

    /// `chat-service stub-upstream --port <free port> <arguments>`, once its admin route answers;
    /// throws (with its log) when it does not within 20 s.
    public static func stubUpstream(_ arguments: [String]) async throws -> (process: ServiceProcess, base: String) {
        let port = freeLoopbackPort()
        let stub = try ServiceProcess(arguments: ["stub-upstream", "--port", "\(port)"] + arguments, environment: [:])
        let base = "http://127.0.0.1:\(port)"
        guard await eventually(timeout: .seconds(20), { await httpGet("\(base)/admin/stats") != nil }) else {
            stub.signal(SIGKILL)
            throw ServiceProcessError("the stub upstream did not answer within 20 s; log:\n\(stub.output())")
        }
        return (stub, base)
    }

    /// `http://127.0.0.1:<HTTP_PORT>` of a `serve` process.
    public var httpBase: String? {
        environment["HTTP_PORT"].map { "http://127.0.0.1:\($0)" }
    }

    /// Waits until `GET <path>` answers 200 with a body containing `bodyContains` (when given);
    /// throws (with the log) when it does not within `timeout`.
    public func waitUntilAnswering(
        _ path: String = "/health", bodyContains: String? = #""status":"ok""#, timeout: Duration = .seconds(20)
    ) async throws {
        guard let base = httpBase else { throw ServiceProcessError("not a serve process: no HTTP_PORT") }
        let answered = await eventually(timeout: timeout) {
            guard let reply = await httpGet(base + path), reply.status == 200 else { return false }
            return bodyContains.map { reply.body.contains($0) } ?? true
        }
        guard answered else { throw ServiceProcessError("\(path) did not answer within \(timeout); log:\n\(output())") }
    }
}

/// A subprocess fixture that did not come up.
public struct ServiceProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
