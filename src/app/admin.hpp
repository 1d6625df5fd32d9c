// The admin port (SPEC §5): Prometheus metrics, health probes, the deployment table, the live
// dashboard and config reload. Never the data plane.
#pragma once

#include "core/clock.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "proxy/snapshot.hpp"

#include <functional>
#include <string>
#include <vector>

namespace spillway::app {

class admin_handler final : public http::request_handler {
public:
    using reload_fn = std::function<std::vector<std::string>()>;
    admin_handler(const proxy::snapshot_holder& snapshots, metrics::registry& metrics,
                  const http::connection_gate& data_connections, const core::clock& clock, reload_fn reload);

    awaitable<bool> serve(http::request& req, http::any_stream& client, const http::connection_info& info) override;
    http::string_response reject(http::read_failure why, unsigned version) override;

    // The bodies, separately testable.
    std::string status_json() const;
    // Empty when ready; else the reason per model.
    std::vector<std::pair<std::string, std::string>> unready_models() const;
    std::string metrics_text();

private:
    const proxy::snapshot_holder& snapshots_;
    metrics::registry& metrics_;
    const http::connection_gate& data_connections_;
    const core::clock& clock_;
    reload_fn reload_;
};

}  // namespace spillway::app
