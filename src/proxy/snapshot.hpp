// One immutable view of the configuration and everything derived from it. A reload builds a
// new snapshot and publishes it; requests in flight keep the one they started with.
#pragma once

#include "config/config.hpp"
#include "proxy/client_auth.hpp"
#include "proxy/deployment_state.hpp"
#include "proxy/upstream_request.hpp"
#include "metrics/registry.hpp"
#include "quota/client_limits.hpp"
#include "routing/catalog.hpp"

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace spillway::proxy {

struct snapshot {
    snapshot(std::shared_ptr<const config::root> cfg, state_registry& registry, metrics::registry& metrics);

    std::shared_ptr<const config::root> config;
    routing::catalog catalog;
    client_auth auth;
    // Per target (same index as catalog targets): its live health and quota state.
    std::vector<std::shared_ptr<deployment_state>> states;
    // Per target: the parts of its messages that are the same for every request, written once.
    struct target_wire {
        upstream_wire upstream;     // request lines, Host and credentials
        std::string client_fields;  // "x-spillway-region: R\r\nx-spillway-deployment: D\r\n"
    };
    std::vector<target_wire> wire;
    // Metric handles: per target, per model (catalog order), and for requests matching no model.
    std::vector<std::unique_ptr<metrics::deployment_metrics>> target_metrics;
    std::vector<std::unique_ptr<metrics::model_metrics>> model_metrics;
    std::unique_ptr<metrics::model_metrics> unmatched_metrics;
    // Per client key (same index as config.auth.keys).
    std::unique_ptr<quota::client_limits> client_limits;
    // Per region (same index as config.regions): its TLS client context, null for http.
    std::vector<std::unique_ptr<boost::asio::ssl::context>> region_tls;
};

// Shared by all workers. Workers poll version() (one relaxed atomic load per request) and take
// the lock only when it changed, so the hot path never contends.
class snapshot_holder {
public:
    snapshot_holder(std::shared_ptr<const config::root> cfg, const core::clock& clock, metrics::registry& metrics);
    metrics::registry& metrics() const { return metrics_; }

    std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
    std::shared_ptr<const snapshot> current() const;
    void publish(std::shared_ptr<const config::root> cfg);  // throws if TLS setup fails

private:
    state_registry registry_;
    metrics::registry& metrics_;
    mutable std::mutex mutex_;
    std::shared_ptr<const snapshot> current_;
    std::atomic<std::uint64_t> version_{1};
};

}  // namespace spillway::proxy
