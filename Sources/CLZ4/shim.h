#ifndef CHAT_SERVICE_CLZ4_SHIM_H
#define CHAT_SERVICE_CLZ4_SHIM_H
// LZ4's block format (Debian: liblz4-dev), for the in-memory copies Runtime's LZ4Block keeps.
// Only the block API: no frames, no streaming, no dictionaries.
#include <lz4.h>
#endif
