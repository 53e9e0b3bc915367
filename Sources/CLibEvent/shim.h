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
#endif
