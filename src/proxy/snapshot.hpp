// One immutable view of the configuration and everything derived from it. A reload builds a
// new snapshot and publishes it; requests in flight keep the one they started with.
#pragma once

#include "config/config.hpp"
#include "proxy/client_auth.hpp"
#include "routing/catalog.hpp"

#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace spillway::proxy {

struct snapshot {
    explicit snapshot(std::shared_ptr<const config::root> cfg);

    std::shared_ptr<const config::root> config;
    routing::catalog catalog;
    client_auth auth;
    // Per region (same index as config.regions): its TLS client context, null for http.
    std::vector<std::unique_ptr<boost::asio::ssl::context>> region_tls;
};

// Shared by all workers. Workers poll version() (one relaxed atomic load per request) and take
// the lock only when it changed, so the hot path never contends.
class snapshot_holder {
public:
    explicit snapshot_holder(std::shared_ptr<const config::root> cfg);

    std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
    std::shared_ptr<const snapshot> current() const;
    void publish(std::shared_ptr<const config::root> cfg);  // throws if TLS setup fails

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const snapshot> current_;
    std::atomic<std::uint64_t> version_{1};
};

}  // namespace spillway::proxy
