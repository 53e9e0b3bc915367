import CLibEvent

/// One evhttp client connection of an ``HTTPClient``: whether it carries a request, and
/// whether it closed (then it is never used again, only freed).
final class HTTPClientConnection: @unchecked Sendable {
    // @unchecked Sendable: used only on the loop thread, by the client actor (whose executor
    // is the loop) and its requests' evhttp callbacks; a deinit may hand it to the loop.
    let evcon: OpaquePointer
    /// The connection's SSL object for `https` (owned by its bufferevent), else nil.
    let ssl: OpaquePointer?
    /// `host:port`, with the address connected to when the host is a name; for messages.
    let address: String
    /// Carries a request now.
    var isBusy = false
    /// Closed, or failed: evhttp would reconnect it in place, which the client never lets it do.
    var isRetired = false
    private var freed = false

    init(evcon: OpaquePointer, ssl: OpaquePointer?, address: String) {
        self.evcon = evcon
        self.ssl = ssl
        self.address = address
        // evhttp calls this when the connection closes (the server's idle timeout, a reset).
        evhttp_connection_set_closecb(
            evcon,
            { _, context in
                guard let context else { return }
                Unmanaged<HTTPClientConnection>.fromOpaque(context).takeUnretainedValue().isRetired = true
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Frees the evhttp connection (its bufferevent and SSL object with it). evhttp may call the
    /// close callback from inside; this object is alive for that, as the caller holds it.
    func free() {
        guard !freed else { return }
        freed = true
        isRetired = true
        evhttp_connection_free(evcon)
    }

    /// Why a request that could not connect failed, when TLS is the reason: the certificate
    /// verification result, or OpenSSL's errors of the handshake. Nil for plain HTTP and for
    /// failures before TLS (connection refused).
    func tlsFailure() -> String? {
        guard let ssl else { return nil }
        let verification = SSL_get_verify_result(ssl)
        if verification != X509_V_OK {
            return "certificate verification failed: \(String(cString: X509_verify_cert_error_string(verification)))"
        }
        guard let bufferevent = evhttp_connection_get_bufferevent(evcon) else { return nil }
        let code = bufferevent_get_openssl_error(bufferevent)
        guard code != 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        // Anything else OpenSSL queued for this failure belongs to it, not to the next one.
        while bufferevent_get_openssl_error(bufferevent) != 0 {}
        return "TLS handshake failed: \(CString.string(buffer))"
    }
}
