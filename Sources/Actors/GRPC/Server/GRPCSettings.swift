/// The gRPC listener's configuration (GRPC_HOST, GRPC_PORT; docs/GRPC.md).
public struct GRPCSettings: Sendable, Hashable {
    /// An IPv4 or IPv6 literal (`0.0.0.0`, `127.0.0.1`, `::`); a host name is resolved by NIO.
    public var host: String
    /// 0 binds any free port (tests); ``GRPCFrontend/boundPort()`` tells which.
    public var port: Int
    /// How long RPCs in flight may take to finish after graceful shutdown begins; past it the
    /// server is cancelled and the remaining calls end with CANCELLED.
    public var drainTimeout: Duration
    /// The largest request message accepted, in bytes; grpc-swift's transport resets the stream
    /// of a larger one before any handler runs.
    public var maxRequestBytes: Int

    public init(host: String, port: Int, drainTimeout: Duration, maxRequestBytes: Int = 1 << 20) {
        self.host = host
        self.port = port
        self.drainTimeout = drainTimeout
        self.maxRequestBytes = maxRequestBytes
    }
}
