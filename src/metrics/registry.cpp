#include "metrics/registry.hpp"

#include <prometheus/text_serializer.h>

namespace spillway::metrics {

namespace {

// Seconds: from a fast embedding call to a long streamed completion.
const prometheus::Histogram::BucketBoundaries latency_buckets = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

template <class T>
prometheus::Family<T>& family(prometheus::Registry& r, const std::string& name, const std::string& help) {
    if constexpr (std::is_same_v<T, prometheus::Counter>)
        return prometheus::BuildCounter().Name(name).Help(help).Register(r);
    else if constexpr (std::is_same_v<T, prometheus::Gauge>)
        return prometheus::BuildGauge().Name(name).Help(help).Register(r);
    else
        return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

}  // namespace

status_counters::status_counters(prometheus::Family<prometheus::Counter>& family, prometheus::Labels base)
    : family_(family), base_(std::move(base)) {}

void status_counters::increment(unsigned status) {
    if (status >= by_status_.size()) return increment(std::to_string(status));
    auto* c = by_status_[status].load(std::memory_order_acquire);
    if (!c) {
        // Family::Add returns the existing series for equal labels, so a race here is harmless.
        auto labels = base_;
        labels["code"] = std::to_string(status);
        c = &family_.Add(labels);
        by_status_[status].store(c, std::memory_order_release);
    }
    c->Increment();
}

void status_counters::increment(std::string_view outcome) {
    auto labels = base_;
    labels["code"] = std::string(outcome);
    family_.Add(labels).Increment();
}

std::string_view to_string(retry_reason r) {
    switch (r) {
        case retry_reason::throttled: return "throttled";
        case retry_reason::server_error: return "server_error";
        case retry_reason::connect_error: return "connect_error";
        case retry_reason::timeout: return "timeout";
        case retry_reason::upstream_reset: return "upstream_reset";
        case retry_reason::count_: break;
    }
    return "unknown";
}

registry::registry()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(family<prometheus::Counter>(*registry_, "spillway_requests_total",
                                            "Client requests answered, by model and HTTP status")),
      request_duration_(family<prometheus::Histogram>(*registry_, "spillway_request_duration_seconds",
                                                      "Client request duration, first byte in to last byte out")),
      upstream_requests_(family<prometheus::Counter>(*registry_, "spillway_upstream_requests_total",
                                                     "Upstream attempts by deployment and HTTP status (or failure)")),
      upstream_latency_(family<prometheus::Histogram>(*registry_, "spillway_upstream_latency_seconds",
                                                      "Upstream attempt duration until its answer was complete")),
      upstream_ttfb_(family<prometheus::Histogram>(*registry_, "spillway_upstream_ttfb_seconds",
                                                   "Upstream time to the first byte of the answer (headers)")),
      retries_(family<prometheus::Counter>(*registry_, "spillway_retries_total",
                                           "Attempts that failed and sent the request on to another deployment")),
      available_(family<prometheus::Gauge>(*registry_, "spillway_deployment_available",
                                           "1 when the deployment can take requests now (not cooling, circuit not open)")),
      cooldown_(family<prometheus::Gauge>(*registry_, "spillway_deployment_cooldown_seconds",
                                          "Seconds left of the deployment's 429 cooldown")),
      remaining_tokens_(family<prometheus::Gauge>(*registry_, "spillway_deployment_remaining_tokens",
                                                  "Estimated tokens left in the deployment's per-minute quota")),
      remaining_requests_(family<prometheus::Gauge>(*registry_, "spillway_deployment_remaining_requests",
                                                    "Estimated requests left in the deployment's current window")),
      inflight_(family<prometheus::Gauge>(*registry_, "spillway_deployment_inflight",
                                          "Requests currently sent to the deployment and not finished")),
      tokens_(family<prometheus::Counter>(*registry_, "spillway_tokens_total",
                                          "Tokens reported by upstream usage, by type (prompt/completion)")),
      reloads_(family<prometheus::Counter>(*registry_, "spillway_config_reloads_total", "Config reloads by result")),
      active_connections_(family<prometheus::Gauge>(*registry_, "spillway_active_connections",
                                                    "Open client connections on the data port").Add({})),
      reloads_ok_(reloads_.Add({{"result", "success"}})),
      reloads_error_(reloads_.Add({{"result", "error"}})) {}

std::string registry::serialize() const {
    return prometheus::TextSerializer().Serialize(registry_->Collect());
}

model_metrics::model_metrics(registry& r, const std::string& model)
    : requests(r.requests_, {{"model", model}}),
      duration(r.request_duration_.Add({{"model", model}}, latency_buckets)) {}

deployment_metrics::deployment_metrics(registry& r, const std::string& region, const std::string& deployment)
    : upstream_requests(r.upstream_requests_, {{"region", region}, {"deployment", deployment}}),
      latency(r.upstream_latency_.Add({{"region", region}, {"deployment", deployment}}, latency_buckets)),
      ttfb(r.upstream_ttfb_.Add({{"region", region}, {"deployment", deployment}}, latency_buckets)),
      prompt_tokens(r.tokens_.Add({{"region", region}, {"deployment", deployment}, {"type", "prompt"}})),
      completion_tokens(r.tokens_.Add({{"region", region}, {"deployment", deployment}, {"type", "completion"}})),
      available(r.available_.Add({{"region", region}, {"deployment", deployment}})),
      cooldown_seconds(r.cooldown_.Add({{"region", region}, {"deployment", deployment}})),
      inflight(r.inflight_.Add({{"region", region}, {"deployment", deployment}})),
      remaining_tokens_family_(r.remaining_tokens_),
      remaining_requests_family_(r.remaining_requests_),
      labels_{{"region", region}, {"deployment", deployment}} {
    for (std::size_t i = 0; i < retries.size(); ++i)
        retries[i] = &r.retries_.Add(
            {{"region", region}, {"deployment", deployment}, {"reason", std::string(to_string(static_cast<retry_reason>(i)))}});
}

void deployment_metrics::set_or_remove(prometheus::Family<prometheus::Gauge>& family, prometheus::Gauge*& gauge,
                                       std::optional<double> value) {
    if (value) {
        if (!gauge) gauge = &family.Add(labels_);
        gauge->Set(*value);
    } else if (gauge) {
        family.Remove(gauge);
        gauge = nullptr;
    }
}

void deployment_metrics::set_remaining(std::optional<double> tokens, std::optional<double> requests) {
    set_or_remove(remaining_tokens_family_, remaining_tokens_, tokens);
    set_or_remove(remaining_requests_family_, remaining_requests_, requests);
}

}  // namespace spillway::metrics
