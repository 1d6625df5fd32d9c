// `spillway --demo`: three simulated Azure regions in-process (spillway-mock's simulator) and
// the proxy in front of them, with copy-paste snippets. Needs no keys and no network.
#pragma once

#include <cstdint>

namespace spillway::app {

int run_demo(std::uint16_t port, std::uint16_t admin_port);

}  // namespace spillway::app
