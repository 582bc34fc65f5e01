/* Loopback ports for servers the tests start but do not own (HAProxy) and for "nothing listens here" checks:
 * reserved in a registry shared with the shell tests, scripts/pgtmp and the demo (scripts/libcanary.bash), so no two
 * concurrent tests get the same port. Servers we own bind port 0 and report what they got instead. */
#ifndef CANARY_PORT_FIXTURE_H
#define CANARY_PORT_FIXTURE_H

#include "canary/err.h"

/* Reserves a TCP port on 127.0.0.1 below the kernel's ephemeral range that nothing is bound to and no live process
 * holds in the registry (this one included, so a port is never handed out twice). The reservation lasts until
 * port_release or until this process exits (released at exit; a process killed by a signal leaves them to be
 * taken over by the next reserver). Returns the port, or -1 with err (may be NULL) set. */
int port_reserve(struct cn_err *err);

/* Gives back a port this process reserved; does nothing for a port it does not hold. */
void port_release(int port);

#endif
