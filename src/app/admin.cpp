#include "app/admin.hpp"

#include "app/dashboard_html.hpp"
#include "proxy/openai_error.hpp"

#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include <map>

namespace spillway::app {

namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

template <class T>
json optional_json(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

http::string_response text_response(bhttp::status status, unsigned version, std::string_view type, std::string body) {
    http::string_response res{status, version};
    res.set(bhttp::field::content_type, type);
    res.set(bhttp::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

}  // namespace

admin_handler::admin_handler(const proxy::snapshot_holder& snapshots, metrics::registry& metrics,
                             const http::connection_gate& data_connections, const core::clock& clock, reload_fn reload)
    : snapshots_(snapshots), metrics_(metrics), data_connections_(data_connections), clock_(clock),
      reload_(std::move(reload)) {}

http::string_response admin_handler::reject(http::read_failure, unsigned version) {
    return proxy::make_error(400, "invalid_request_error", "malformed_request", "Malformed request.", version);
}

std::string admin_handler::status_json() const {
    auto snap = snapshots_.current();
    const auto& cat = snap->catalog;
    json deployments = json::array();
    for (std::size_t i = 0; i < cat.size(); ++i) {
        const auto& t = cat.at(i);
        auto r = snap->states[i]->report();
        deployments.push_back({{"region", t.region->name},
                               {"model", t.deployment->model},
                               {"name", t.deployment->name},
                               {"sku", config::to_string(t.deployment->sku)},
                               {"data_zone", t.region->data_zone},
                               {"priority", t.deployment->priority},
                               {"weight", t.deployment->weight},
                               {"tpm", optional_json(t.deployment->tpm)},
                               {"rpm", optional_json(config::root::effective_rpm(*t.deployment))},
                               {"state", r.state},
                               {"cooldown_remaining_ms", r.cooldown_remaining_ms},
                               {"latency_ewma_ms", optional_json(r.latency_ewma_ms)},
                               {"ttfb_ewma_ms", optional_json(r.ttfb_ewma_ms)},
                               {"remaining_tokens", optional_json(r.remaining_tokens)},
                               {"remaining_requests", optional_json(r.remaining_requests)},
                               {"inflight", r.inflight},
                               {"requests", r.requests},
                               {"errors", r.errors},
                               {"requests_last_minute", r.requests_last_minute}});
    }
    json models = json::array();
    for (const auto& m : cat.models()) models.push_back(m.name);
    json regions = json::array();
    for (const auto& r : snap->config->regions)
        regions.push_back({{"name", r.name}, {"endpoint", r.endpoint_url}, {"kind", config::to_string(r.kind)},
                           {"data_zone", r.data_zone}});
    return json{{"models", std::move(models)}, {"regions", std::move(regions)}, {"deployments", std::move(deployments)}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::pair<std::string, std::string>> admin_handler::unready_models() const {
    auto snap = snapshots_.current();
    std::vector<std::pair<std::string, std::string>> unready;
    for (const auto& m : snap->catalog.models()) {
        std::map<std::string, int> states;
        bool ok = false;
        for (auto id : m.targets) {
            auto state = snap->states[id]->report().state;
            if (state == "available" || state == "half_open") ok = true;
            ++states[state];
        }
        if (ok) continue;
        std::string why = "no available deployment (";
        for (const auto& [state, n] : states) why += std::to_string(n) + " " + state + ", ";
        why.resize(why.size() - 2);
        unready.emplace_back(m.name, why + ")");
    }
    return unready;
}

std::string admin_handler::metrics_text() {
    // Gauges describe the present: set them from the shared state at scrape time.
    auto snap = snapshots_.current();
    for (std::size_t i = 0; i < snap->catalog.size(); ++i) {
        auto r = snap->states[i]->report();
        auto& m = *snap->target_metrics[i];
        m.available.Set(r.available ? 1 : 0);
        m.cooldown_seconds.Set(static_cast<double>(r.cooldown_remaining_ms) / 1000.0);
        auto as_double = [](std::optional<std::uint64_t> v) {
            return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
        };
        m.set_remaining(as_double(r.remaining_tokens), as_double(r.remaining_requests));
        m.inflight.Set(static_cast<double>(r.inflight));
    }
    metrics_.active_connections().Set(data_connections_.open.load());
    return metrics_.serialize();
}

awaitable<bool> admin_handler::serve(http::request& req, http::any_stream& client, const http::connection_info&) {
    std::string_view path = req.head.target().substr(0, req.head.target().find('?'));
    const unsigned version = req.head.version();
    const bool get = req.head.method() == "GET";
    http::string_response res;
    if (get && path == "/metrics") {
        res = text_response(bhttp::status::ok, version, "text/plain; version=0.0.4; charset=utf-8", metrics_text());
    } else if (get && path == "/healthz") {
        res = text_response(bhttp::status::ok, version, "text/plain", "ok\n");
    } else if (get && path == "/readyz") {
        // Draining: tell load balancers to stop sending traffic here while in-flight work ends.
        const bool draining = data_connections_.draining.load();
        auto unready = unready_models();
        json reasons = json::object();
        for (const auto& [model, why] : unready) reasons[model] = why;
        const bool ready = unready.empty() && !draining;
        json body = {{"ready", ready}};
        if (draining) body["reason"] = "draining: shutting down";
        if (!unready.empty()) body["models"] = std::move(reasons);
        res = text_response(ready ? bhttp::status::ok : bhttp::status::service_unavailable, version,
                            "application/json", body.dump());
    } else if (get && path == "/status") {
        res = text_response(bhttp::status::ok, version, "application/json", status_json());
    } else if (get && (path == "/" || path == "/dashboard")) {
        res = text_response(bhttp::status::ok, version, "text/html; charset=utf-8", std::string(dashboard_html));
    } else if (req.head.method() == "POST" && path == "/reload") {
        auto problems = reload_();
        json body = {{"reloaded", problems.empty()}, {"errors", problems}};
        res = text_response(problems.empty() ? bhttp::status::ok : bhttp::status::unprocessable_entity, version,
                            "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace));
    } else {
        res = proxy::make_error(404, "invalid_request_error", "unknown_url",
                                "Unknown admin URL; try /metrics, /healthz, /readyz, /status, / or POST /reload.", version);
    }
    res.keep_alive(req.head.keep_alive());
    client.tcp_layer().expires_after(std::chrono::seconds(30));  // a scraper that stops reading is cut off
    bool ok = co_await http::write_response(client, res);
    co_return ok && req.head.keep_alive();
}

}  // namespace spillway::app
