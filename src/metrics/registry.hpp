// spillway's Prometheus metrics (SPEC §6) over prometheus-cpp. Label lookups happen once —
// handles are created per model and per deployment when a config snapshot is built, and
// per-status counters are created on first use and cached in atomics — so recording on the
// request path is a few atomic operations, never a map lookup or prometheus-cpp's family lock.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace spillway::metrics {

// Counters of one family, one per HTTP status (or outcome word), created on first use.
class status_counters {
public:
    status_counters(prometheus::Family<prometheus::Counter>& family, prometheus::Labels base);
    void increment(unsigned status);
    void increment(std::string_view outcome);  // e.g. "connect_error": rare, not cached

private:
    prometheus::Family<prometheus::Counter>& family_;
    prometheus::Labels base_;
    std::array<std::atomic<prometheus::Counter*>, 600> by_status_{};
};

enum class retry_reason { throttled, server_error, connect_error, timeout, upstream_reset, count_ };
std::string_view to_string(retry_reason r);

struct model_metrics {
    model_metrics(class registry& r, const std::string& model);
    status_counters requests;               // spillway_requests_total{model, code}
    prometheus::Histogram& duration;        // spillway_request_duration_seconds{model}
};

struct deployment_metrics {
    deployment_metrics(class registry& r, const std::string& region, const std::string& deployment);
    status_counters upstream_requests;      // spillway_upstream_requests_total{region, deployment, code}
    prometheus::Histogram& latency;         // spillway_upstream_latency_seconds
    prometheus::Histogram& ttfb;            // spillway_upstream_ttfb_seconds
    std::array<prometheus::Counter*, static_cast<std::size_t>(retry_reason::count_)> retries{};
    prometheus::Counter& prompt_tokens;     // spillway_tokens_total{type="prompt"}
    prometheus::Counter& completion_tokens; // spillway_tokens_total{type="completion"}
    prometheus::Gauge& available;           // spillway_deployment_available
    prometheus::Gauge& cooldown_seconds;    // spillway_deployment_cooldown_seconds
    prometheus::Gauge& inflight;            // spillway_deployment_inflight (extension)

    // spillway_deployment_remaining_tokens / _requests: a series exists only while the value is
    // known (a quota is configured or the upstream reported it); a made-up 0 would read as
    // "quota used up". Call from the scraping thread only.
    void set_remaining(std::optional<double> tokens, std::optional<double> requests);

private:
    void set_or_remove(prometheus::Family<prometheus::Gauge>& family, prometheus::Gauge*& gauge,
                       std::optional<double> value);
    prometheus::Family<prometheus::Gauge>& remaining_tokens_family_;
    prometheus::Family<prometheus::Gauge>& remaining_requests_family_;
    prometheus::Labels labels_;
    prometheus::Gauge* remaining_tokens_ = nullptr;
    prometheus::Gauge* remaining_requests_ = nullptr;
};

class registry {
public:
    registry();

    // Prometheus text exposition of everything.
    std::string serialize() const;

    prometheus::Gauge& active_connections() { return active_connections_; }
    prometheus::Counter& reloads_ok() { return reloads_ok_; }
    prometheus::Counter& reloads_error() { return reloads_error_; }

private:
    friend struct model_metrics;
    friend struct deployment_metrics;

    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& requests_;
    prometheus::Family<prometheus::Histogram>& request_duration_;
    prometheus::Family<prometheus::Counter>& upstream_requests_;
    prometheus::Family<prometheus::Histogram>& upstream_latency_;
    prometheus::Family<prometheus::Histogram>& upstream_ttfb_;
    prometheus::Family<prometheus::Counter>& retries_;
    prometheus::Family<prometheus::Gauge>& available_;
    prometheus::Family<prometheus::Gauge>& cooldown_;
    prometheus::Family<prometheus::Gauge>& remaining_tokens_;
    prometheus::Family<prometheus::Gauge>& remaining_requests_;
    prometheus::Family<prometheus::Gauge>& inflight_;
    prometheus::Family<prometheus::Counter>& tokens_;
    prometheus::Family<prometheus::Counter>& reloads_;
    prometheus::Gauge& active_connections_;
    prometheus::Counter& reloads_ok_;
    prometheus::Counter& reloads_error_;
};

}  // namespace spillway::metrics
