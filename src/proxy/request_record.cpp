#include "proxy/request_record.hpp"

#include <nlohmann/json.hpp>

namespace spillway::proxy {

std::string_view outcome_of(const attempt_record& a) {
    switch (a.why) {
        case failure::connect: return "connect_error";
        case failure::timeout: return "timeout";
        case failure::stalled: return "stalled";
        case failure::upstream_reset: return "upstream_reset";
        case failure::client_gone: return "client_gone";
        case failure::status:
        case failure::none:
            if (a.status == 429) return "throttled";
            if (a.status >= 500 || a.status == 408) return "server_error";
            if (a.why == failure::status) return "retryable_status";
            return "ok";
    }
    return "unknown";
}

std::string format_access_log(const request_record& r, const routing::catalog& cat, core::clock_duration total,
                              std::string_view timestamp) {
    using nlohmann::json;
    json attempts = json::array();
    for (const auto& a : r.attempts) {
        const auto& t = cat.at(a.target);
        json j = {{"region", t.region->name}, {"deployment", t.deployment->name}, {"outcome", outcome_of(a)},
                  {"ms", core::to_ms(a.duration)}};
        if (a.status) j["status"] = a.status;
        if (a.ttfb) j["ttfb_ms"] = core::to_ms(*a.ttfb);
        if (a.retry_after) j["retry_after_ms"] = a.retry_after->count();
        attempts.push_back(std::move(j));
    }
    json line = {{"time", timestamp},     {"request_id", r.id}, {"method", r.method}, {"path", r.path},
                 {"client", r.client},    {"model", r.model},   {"stream", r.stream}, {"status", r.status},
                 {"latency_ms", core::to_ms(total)}, {"estimated_tokens", r.estimate}, {"attempts", std::move(attempts)}};
    if (r.answered_by) {
        const auto& t = cat.at(*r.answered_by);
        line["region"] = t.region->name;
        line["deployment"] = t.deployment->name;
    }
    if (!r.attempts.empty() && r.attempts.back().ttfb) line["ttfb_ms"] = core::to_ms(*r.attempts.back().ttfb);
    if (r.tokens.prompt || r.tokens.completion) {
        line["tokens"] = json::object();
        if (r.tokens.prompt) line["tokens"]["prompt"] = *r.tokens.prompt;
        if (r.tokens.completion) line["tokens"]["completion"] = *r.tokens.completion;
    }
    return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace spillway::proxy
