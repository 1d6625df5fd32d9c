// Process-wide logging setup (spdlog). Log lines never carry keys or bodies.
#pragma once

#include <string_view>

namespace spillway::core {

// level: trace|debug|info|warn|error|off; format: "text" or "json".
void setup_logging(std::string_view level, std::string_view format);

}  // namespace spillway::core
