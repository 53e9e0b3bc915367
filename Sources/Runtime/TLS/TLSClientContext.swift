import CLibEvent

/// The OpenSSL settings every HTTPS connection of an ``HTTPClient`` is made with: TLS 1.2 or
/// newer, the server's certificate verified against the trusted CAs, and its name (or IP
/// address) checked against the certificate. There is no switch to turn verification off.
public final class TLSClientContext: @unchecked Sendable {
    // @unchecked Sendable: the SSL_CTX is configured in init and only read afterwards (SSL_new
    // takes its own references); OpenSSL makes a configured SSL_CTX safe to share across threads.
    let context: OpaquePointer
    /// Where the trusted CAs come from, for messages.
    public let trustDescription: String

    /// - Parameter caFile: a PEM file of the CA certificates to trust instead of the system's
    ///   (a private CA); nil trusts the system's store.
    public init(caFile: String? = nil) throws(TLSConfigurationError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw TLSConfigurationError("SSL_CTX_new failed: \(OpenSSLErrors.drain())")
        }
        self.context = context
        // Every property is set before anything can throw, so deinit frees the context then.
        trustDescription = caFile ?? "the system's CA store"
        guard chat_ssl_ctx_require_tls12(context) == 1 else {
            throw TLSConfigurationError("cannot require TLS 1.2: \(OpenSSLErrors.drain())")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                throw TLSConfigurationError("cannot load CA certificates from \(caFile): \(OpenSSLErrors.drain())")
            }
        } else {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else {
                throw TLSConfigurationError("cannot load the system's CA store: \(OpenSSLErrors.drain())")
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// A new SSL object for one connection to `host`: SNI set (for a name), and the host name
    /// or IP address the certificate must carry. The caller owns it (a bufferevent created
    /// with `BEV_OPT_CLOSE_ON_FREE` frees it).
    func makeSSL(for host: String) -> OpaquePointer? {
        guard let ssl = SSL_new(context) else { return nil }
        let accepted: Bool
        if NumericHost.isNumeric(host) {
            // RFC 6066: no SNI for an address; the certificate must name the address itself.
            accepted = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
        } else {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            accepted = chat_ssl_set_server_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1
        }
        guard accepted else {
            SSL_free(ssl)
            return nil
        }
        return ssl
    }
}

/// A TLS setting OpenSSL refused (an unreadable or malformed CA file).
public struct TLSConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// OpenSSL's thread-local error queue, as text.
enum OpenSSLErrors {
    /// Every queued error, joined, and the queue emptied (so a later failure is not blamed on
    /// an old error).
    static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(CString.string(buffer))
        }
        return messages.isEmpty ? "no detail from OpenSSL" : messages.joined(separator: "; ")
    }
}
