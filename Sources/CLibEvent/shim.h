#ifndef CHAT_SERVICE_CLIBEVENT_SHIM_H
#define CHAT_SERVICE_CLIBEVENT_SHIM_H
// libc first: event2/event-config.h defines _GNU_SOURCE, which changes glibc's fd_set
// and breaks clean debug builds if any event2 header is seen before these.
#include <stdlib.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <event2/util.h>

// HTTPS to upstream: OpenSSL and libevent's OpenSSL bufferevents.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <event2/bufferevent_ssl.h>

// SSL_set_tlsext_host_name is a macro over SSL_ctrl, which Swift does not import: this sends
// `name` as the TLS server name (SNI). Returns 1 on success.
static inline int chat_ssl_set_server_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

// SSL_CTX_set_min_proto_version is a macro too: TLS 1.2 at least.
static inline int chat_ssl_ctx_require_tls12(SSL_CTX *context) {
    return (int)SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
}
#endif
