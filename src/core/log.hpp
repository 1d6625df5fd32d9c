// Process-wide logging setup (spdlog). Log lines never carry keys or bodies.
#pragma once

#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}

namespace spillway::core {

// level: trace|debug|info|warn|error|off; format: "text" or "json".
void setup_logging(std::string_view level, std::string_view format);

// The access log: one JSON line per request on stdout. Thread-safe; flushed per line so a
// log shipper sees requests as they end.
std::shared_ptr<spdlog::logger> make_access_logger();

}  // namespace spillway::core
