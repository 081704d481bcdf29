/* proxy_proto: pure parser for the HAProxy PROXY protocol, versions 1 (text) and 2 (binary).
 *
 * No I/O: the caller hands in the bytes received so far on a connection, before any SMTP.
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt */
#ifndef MXG_PROXY_PROTO_H
#define MXG_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

/* A v1 header is at most 107 bytes including CRLF; a v2 header is 16 bytes plus a length that
 * we cap, since we only need the addresses (TLVs are skipped). */
#define PROXY_V1_MAX 107
#define PROXY_V2_MAX (16 + 1024)

enum proxy_status {
	PROXY_NEED_MORE = 0, /* a valid prefix; call again with more bytes */
	PROXY_OK = 1,        /* a complete header; see struct proxy_result */
	PROXY_ERROR = -1,    /* not a PROXY header, malformed, or over the size limit */
};

struct proxy_result {
	size_t header_len;      /* bytes to consume from the stream */
	int version;            /* 1 or 2 */
	int local;              /* v2 LOCAL command or v1 "UNKNOWN": no address carried */
	struct ip_addr src, dst;
	uint16_t src_port, dst_port;
};

/* Parses buf[0..len). On PROXY_OK fills *res. On PROXY_ERROR, *why (if not NULL) points to a
 * static reason for the log. Never reads beyond len. */
enum proxy_status proxy_parse(const uint8_t *buf, size_t len, struct proxy_result *res,
			      const char **why);

#endif
