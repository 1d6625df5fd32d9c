#include "proxy/snapshot.hpp"

#include "http/tls.hpp"

namespace spillway::proxy {

snapshot::snapshot(std::shared_ptr<const config::root> cfg)
    : config(std::move(cfg)), catalog(*config), auth(config->auth) {
    for (const auto& r : config->regions)
        region_tls.push_back(r.upstream.tls ? http::make_client_tls(r.tls_verify, r.ca_file) : nullptr);
}

snapshot_holder::snapshot_holder(std::shared_ptr<const config::root> cfg)
    : current_(std::make_shared<const snapshot>(std::move(cfg))) {}

std::shared_ptr<const snapshot> snapshot_holder::current() const {
    std::lock_guard lock(mutex_);
    return current_;
}

void snapshot_holder::publish(std::shared_ptr<const config::root> cfg) {
    auto next = std::make_shared<const snapshot>(std::move(cfg));
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    version_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace spillway::proxy
