#ifndef CHAT_SERVICE_CHIREDIS_SHIM_H
#define CHAT_SERVICE_CHIREDIS_SHIM_H
// libc first, for the same fd_set reason as in CLibEvent's shim.
#include <stdlib.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
// redisLibeventAttach is a static function in this header; Swift imports it directly.
#include <hiredis/adapters/libevent.h>
#endif
