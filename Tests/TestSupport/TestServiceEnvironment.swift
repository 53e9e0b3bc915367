/// The variables every instance of the service under test gets unless the test overrides them,
/// in-process (``InProcessService``) or as a subprocess (``ServiceProcess/serve(environment:)``):
/// loopback only, free ports, the test secrets, a short shutdown, and a Redis policy that fails
/// and recovers quickly.
public enum TestServiceEnvironment {
    public static let jwtSecret = "test-jwt-secret"
    public static let adminToken = "test-admin-token"

    public static let defaults: [String: String] = [
        "REDIS_RETRY_DELAY": "50ms", "REDIS_MAX_RETRY_DELAY": "100ms", "REDIS_MAX_RETRIES": "2",
        "REDIS_HEALTH_CHECK_INTERVAL": "200ms", "REDIS_CONNECT_TIMEOUT": "500ms", "REDIS_COMMAND_TIMEOUT": "500ms",
        "PARTICIPANTS_MAX_API_TIMEOUT": "3s",
        "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0", "GRPC_HOST": "127.0.0.1", "GRPC_PORT": "0",
        "JWT_SECRET": jwtSecret, "ADMIN_TOKEN": adminToken,
        "SHUTDOWN_TIMEOUT": "3s",
    ]
}
