#pragma once

// Loopback ports for tests: servers that tests start bind 127.0.0.1 on a port the kernel says is
// free right now.

namespace sb::testing {

// A TCP port on 127.0.0.1 that was free when asked (bind to port 0, read it back, close).
int FreeTcpPort();

// A port on 127.0.0.1 free for both TCP and UDP (SIP listens on both).
int FreeTcpUdpPort();

}  // namespace sb::testing
