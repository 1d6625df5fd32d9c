// What happened to one client request, kept as it is served: the source of its metrics and of
// its access-log line. Never holds keys or bodies.
#pragma once

#include "core/clock.hpp"
#include "proxy/usage_scan.hpp"
#include "routing/catalog.hpp"

#include <boost/container/small_vector.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::proxy {

// Why an attempt did not produce the client's answer. `stalled`: the upstream's answer had
// begun, then nothing came for routing.stream_idle_timeout.
enum class failure { none, connect, timeout, stalled, upstream_reset, status, client_gone };

struct attempt_record {
    routing::target_id target = 0;
    failure why = failure::none;
    unsigned status = 0;  // upstream status when there was one
    std::optional<std::chrono::milliseconds> retry_after;
    std::optional<core::clock_duration> ttfb;  // until the upstream's response headers
    core::clock_duration duration{};
};

struct request_record {
    std::string id;
    core::time_point started;
    std::string_view method;          // views into the request, which outlives the record
    std::string_view path;            // without the query string
    std::string client;               // the client key's configured name
    std::string model;                // as resolved; empty if the request never got that far
    std::optional<std::size_t> model_index;
    bool stream = false;
    std::uint64_t estimate = 0;
    unsigned status = 0;              // what the client got
    boost::container::small_vector<attempt_record, 2> attempts;
    std::optional<routing::target_id> answered_by;
    token_usage tokens;
};

// The outcome word of an attempt for logs and metrics: "ok", "throttled", "server_error", ...
std::string_view outcome_of(const attempt_record& a);

// One JSON line (no trailing newline).
std::string format_access_log(const request_record& r, const routing::catalog& cat, core::clock_duration total,
                              std::string_view timestamp);

}  // namespace spillway::proxy
