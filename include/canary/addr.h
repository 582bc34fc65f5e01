/* Socket addresses as people write them in service files and on command lines: "unix:/PATH", "/PATH", "HOST:PORT"
 * or "[V6]:PORT". One grammar for the HAProxy runtime API (the service loader checks it, the gateway connects with
 * it) and canaryd's --listen. Pure: no allocation, no I/O, no name resolution. */
#ifndef CANARY_ADDR_H
#define CANARY_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "canary/err.h"

#define CN_ADDR_TEXT_MAX 512 /* the longest address as written, NUL included (a service file's CN_URL_MAX) */

/* Flags for cn_addr_parse. */
#define CN_ADDR_UNIX 1u      /* accept "unix:/PATH" and "/PATH" (a unix socket) */
#define CN_ADDR_PORT_ZERO 2u /* accept port 0 (the system picks one) */

struct cn_addr {
	bool is_unix;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* is_unix: the absolute socket path */
	char host[256];                                         /* else: the host, without an IPv6 address's [] */
	char port[6];                                           /* else: the port in decimal, "1".."65535" */
	uint16_t port_num;                                      /* else: the same port as a number */
	char text[CN_ADDR_TEXT_MAX];                            /* the address as written, for messages */
};

/* Parses s into *out (written only on success). `what` names the value in messages ("runtime_api", "--listen").
 * Returns 0, or -CN_EINPUT with err saying what is wrong: "runtime_api 'x:0' has an invalid port '0'; use 1..65535". */
int cn_addr_parse(const char *s, const char *what, unsigned flags, struct cn_addr *out, struct cn_err *err);

#endif
