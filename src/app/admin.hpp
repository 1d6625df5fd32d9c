// The admin port (SPEC §5): health probes and the deployment table; never the data plane.
#pragma once

#include "http/server.hpp"
#include "proxy/snapshot.hpp"

#include <functional>
#include <string>
#include <vector>

namespace spillway::app {

class admin_handler final : public http::request_handler {
public:
    using reload_fn = std::function<std::vector<std::string>()>;
    admin_handler(const proxy::snapshot_holder& snapshots, reload_fn reload);

    awaitable<bool> serve(http::request& req, http::any_stream& client, const http::connection_info& info) override;
    http::string_response reject(http::read_failure why, unsigned version) override;

private:
    http::string_response status_json(unsigned version) const;

    const proxy::snapshot_holder& snapshots_;
    reload_fn reload_;
};

}  // namespace spillway::app
