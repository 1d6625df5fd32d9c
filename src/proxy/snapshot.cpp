#include "proxy/snapshot.hpp"

#include "http/tls.hpp"
#include "http/wire.hpp"

namespace spillway::proxy {

snapshot::snapshot(std::shared_ptr<const config::root> cfg, state_registry& registry, metrics::registry& metrics)
    : config(std::move(cfg)), catalog(*config), auth(config->auth) {
    for (std::size_t i = 0; i < catalog.size(); ++i)
        target_metrics.push_back(std::make_unique<metrics::deployment_metrics>(metrics, catalog.at(i).region->name,
                                                                               catalog.at(i).deployment->name));
    for (const auto& m : catalog.models()) model_metrics.push_back(std::make_unique<metrics::model_metrics>(metrics, m.name));
    // Unknown model names are client input: one bounded label for all of them.
    unmatched_metrics = std::make_unique<metrics::model_metrics>(metrics, "");
    std::vector<std::pair<const config::region*, const config::deployment*>> targets;
    for (std::size_t i = 0; i < catalog.size(); ++i) targets.emplace_back(catalog.at(i).region, catalog.at(i).deployment);
    states = registry.bind(*config, targets);
    for (const auto& [region, dep] : targets) {
        target_wire w{make_upstream_wire(*region, *dep), {}};
        http::wire::append_field("x-spillway-region", region->name, w.client_fields);
        http::wire::append_field("x-spillway-deployment", dep->name, w.client_fields);
        wire.push_back(std::move(w));
    }
    std::vector<quota::client_limit> limits;
    for (const auto& k : config->auth.keys) limits.push_back({k.rpm, k.tpm});
    client_limits = std::make_unique<quota::client_limits>(limits);
    for (const auto& r : config->regions)
        region_tls.push_back(r.upstream.tls ? http::make_client_tls(r.tls_verify, r.ca_file) : nullptr);
}

snapshot_holder::snapshot_holder(std::shared_ptr<const config::root> cfg, const core::clock& clock,
                                 metrics::registry& metrics)
    : registry_(clock), metrics_(metrics), current_(std::make_shared<const snapshot>(std::move(cfg), registry_, metrics)) {}

std::shared_ptr<const snapshot> snapshot_holder::current() const {
    std::lock_guard lock(mutex_);
    return current_;
}

void snapshot_holder::publish(std::shared_ptr<const config::root> cfg) {
    auto next = std::make_shared<const snapshot>(std::move(cfg), registry_, metrics_);
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    version_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace spillway::proxy
