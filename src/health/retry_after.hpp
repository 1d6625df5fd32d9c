// Reading how long an upstream asked us to wait: retry-after-ms (Azure), else retry-after in
// seconds (an HTTP date is not used by Azure and is ignored).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace spillway::health {

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after_ms,
                                                           std::string_view retry_after);

}  // namespace spillway::health
