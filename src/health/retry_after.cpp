#include "health/retry_after.hpp"

#include <algorithm>
#include <charconv>

namespace spillway::health {

namespace {

std::optional<double> parse_number(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (s.empty()) return std::nullopt;
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || !(v >= 0)) return std::nullopt;
    return std::min(v, 1e9);  // ~11 days in ms: beyond any cap, and safe to convert
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after_ms, std::string_view retry_after) {
    if (auto ms = parse_number(retry_after_ms)) return std::chrono::milliseconds(static_cast<long long>(*ms + 0.5));
    if (auto s = parse_number(retry_after)) return std::chrono::milliseconds(static_cast<long long>(*s * 1000 + 0.5));
    return std::nullopt;
}

}  // namespace spillway::health
