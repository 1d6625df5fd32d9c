#include "app/admin.hpp"

#include "proxy/openai_error.hpp"

#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

namespace spillway::app {

namespace bhttp = boost::beast::http;

admin_handler::admin_handler(const proxy::snapshot_holder& snapshots, reload_fn reload)
    : snapshots_(snapshots), reload_(std::move(reload)) {}

http::string_response admin_handler::reject(http::read_failure, unsigned version) {
    return proxy::make_error(400, "invalid_request_error", "malformed_request", "Malformed request.", version);
}

http::string_response admin_handler::status_json(unsigned version) const {
    auto snap = snapshots_.current();
    nlohmann::json deployments = nlohmann::json::array();
    for (std::size_t i = 0; i < snap->catalog.size(); ++i) {
        const auto& t = snap->catalog.at(i);
        deployments.push_back({{"region", t.region->name},
                               {"model", t.deployment->model},
                               {"name", t.deployment->name},
                               {"priority", t.deployment->priority},
                               {"weight", t.deployment->weight},
                               {"state", "available"}});
    }
    http::string_response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = nlohmann::json{{"deployments", std::move(deployments)}}.dump();
    return res;
}

awaitable<bool> admin_handler::serve(http::request& req, http::any_stream& client, const http::connection_info&) {
    std::string_view path = req.target().substr(0, req.target().find('?'));
    const unsigned version = req.version();
    http::string_response res;
    if (req.method() == bhttp::verb::get && path == "/healthz") {
        res = http::string_response{bhttp::status::ok, version};
        res.set(bhttp::field::content_type, "text/plain");
        res.body() = "ok\n";
    } else if (req.method() == bhttp::verb::get && path == "/status") {
        res = status_json(version);
    } else if (req.method() == bhttp::verb::post && path == "/reload") {
        auto problems = reload_();
        nlohmann::json body = {{"reloaded", problems.empty()}, {"errors", problems}};
        res = http::string_response{problems.empty() ? bhttp::status::ok : bhttp::status::unprocessable_entity, version};
        res.set(bhttp::field::content_type, "application/json");
        res.body() = body.dump();
    } else {
        res = proxy::make_error(404, "invalid_request_error", "unknown_url", "Unknown admin URL.", version);
    }
    res.keep_alive(req.keep_alive());
    bool ok = co_await http::write_response(client, res);
    co_return ok && req.keep_alive();
}

}  // namespace spillway::app
