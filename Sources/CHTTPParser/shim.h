#ifndef CHAT_SERVICE_CHTTPPARSER_SHIM_H
#define CHAT_SERVICE_CHTTPPARSER_SHIM_H
// The joyent/nodejs http-parser (Debian: libhttp-parser-dev), the request parser of the HTTP
// server. libc first, as in CLibEvent's shim: the headers of a module are seen in one
// translation unit, and nothing here may change glibc's feature macros for them.
#include <stddef.h>
#include <stdint.h>
#include <http_parser.h>

// http_parser's status fields are bitfields and HTTP_PARSER_ERRNO a macro: plain accessors
// keep the Swift side free of bitfield layout questions.
static inline enum http_errno chat_http_parser_errno(const http_parser *parser) {
    return (enum http_errno)parser->http_errno;
}

static inline unsigned int chat_http_parser_method(const http_parser *parser) {
    return parser->method;
}

static inline int chat_http_parser_is_chunked(const http_parser *parser) {
    return (parser->flags & F_CHUNKED) != 0;
}

static inline int chat_http_parser_has_content_length(const http_parser *parser) {
    return (parser->flags & F_CONTENTLENGTH) != 0;
}
#endif
