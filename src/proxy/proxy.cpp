// How a request flows: admit (route, auth, body) → pick a deployment → forward → relay the
// answer → on a retryable failure before the first byte reached the client, pick another.
#include "proxy/proxy.hpp"

#include "http/sse.hpp"
#include "proxy/openai_error.hpp"
#include "proxy/upstream_request.hpp"

#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace spillway::proxy {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

struct handler::request_context {
    http::request& req;
    http::any_stream& client;
    const snapshot& snap;
    const routing::model_entry& model;
    operation op;
    body_facts body;
    routing::request_facts facts;
    core::time_point deadline;
    bool client_keep_alive = true;
    std::vector<routing::target_id> tried;
    std::vector<attempt_record> attempts;
};

struct handler::attempt_result {
    bool answered = false;    // the client got its answer (or went away): stop
    bool keep_alive = false;  // when answered: may the client connection stay open
    attempt_record record;
};

namespace {

constexpr std::size_t relay_chunk = 16 * 1024;
constexpr std::size_t max_discard_bytes = 64 * 1024;  // a retried answer's body we read to keep the connection

std::chrono::nanoseconds remaining(core::time_point deadline, const core::clock& clock) {
    return deadline - clock.now();
}

bool is_retry_status(const config::routing& r, unsigned status) {
    return std::find(r.retry_on.begin(), r.retry_on.end(), static_cast<int>(status)) != r.retry_on.end();
}

failure classify_io_error(const error_code& ec) {
    if (ec == beast::error::timeout) return failure::timeout;
    return failure::upstream_reset;
}

// The failure looks like a kept-alive connection the server had already closed.
bool looks_stale(const error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == bhttp::error::partial_message;
}

std::string models_json(const routing::catalog& cat) {
    nlohmann::json data = nlohmann::json::array();
    for (const auto& m : cat.models())
        data.push_back({{"id", m.name}, {"object", "model"}, {"created", 0}, {"owned_by", "spillway"}});
    return nlohmann::json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

}  // namespace

handler::handler(net::io_context& io, snapshot_holder& snapshots, core::clock& clock)
    : io_(io), snapshots_(snapshots), clock_(clock) {}

const snapshot& handler::refresh() {
    auto version = snapshots_.version();
    if (version != snapshot_version_) {
        snapshot_ = snapshots_.current();
        snapshot_version_ = version;
        // New config, new pools: idle connections of the old ones close as they are dropped.
        pools_.clear();
        const auto& cfg = *snapshot_->config;
        for (std::size_t i = 0; i < cfg.regions.size(); ++i) {
            const auto& r = cfg.regions[i];
            http::upstream_target t;
            t.host = r.upstream.host;
            t.port = r.upstream.port;
            t.tls = r.upstream.tls;
            t.tls_context = snapshot_->region_tls[i].get();
            t.verify_host = r.tls_verify;
            t.connect_timeout = cfg.routing.connect_timeout;
            t.max_idle = cfg.limits.upstream_idle_per_region;
            pools_.push_back(std::make_unique<http::upstream_pool>(io_, std::move(t)));
        }
    }
    return *snapshot_;
}

http::string_response handler::reject(http::read_failure why, unsigned version) {
    switch (why) {
        case http::read_failure::body_too_large:
            return make_error(413, "invalid_request_error", "request_too_large",
                              "Request body exceeds the limit of " +
                                  std::to_string(refresh().config->limits.max_body_bytes) + " bytes.", version);
        case http::read_failure::header_too_large:
            return make_error(431, "invalid_request_error", "headers_too_large", "Request headers are too large.", version);
        case http::read_failure::malformed:
            break;
    }
    return make_error(400, "invalid_request_error", "malformed_request",
                      "The request is not valid HTTP/1.1 (bad framing, conflicting Content-Length and "
                      "Transfer-Encoding, or an invalid header).", version);
}

awaitable<bool> handler::reply(http::any_stream& client, http::string_response res, bool keep_alive) {
    res.keep_alive(keep_alive);
    client.tcp_layer().expires_after(refresh().config->limits.idle_timeout);
    bool ok = co_await http::write_response(client, res);
    co_return ok && keep_alive;
}

awaitable<bool> handler::serve(http::request& req, http::any_stream& client, const http::connection_info& info) {
    const snapshot& snap = refresh();
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();
    api_route route = classify_route(req.method() == bhttp::verb::post, req.method() == bhttp::verb::get, req.target());
    if (route.what == api_route::kind::not_found)
        co_return co_await reply(client, make_error(404, "invalid_request_error", "unknown_url",
                                                    "Unknown request URL: " + std::string(req.method_string()) + " " +
                                                        std::string(req.target().substr(0, req.target().find('?'))) +
                                                        ".", version), keep_alive);
    if (route.what == api_route::kind::method_not_allowed)
        co_return co_await reply(client, make_error(405, "invalid_request_error", "method_not_allowed",
                                                    "Method " + std::string(req.method_string()) +
                                                        " is not allowed for this URL.", version), keep_alive);

    auto presented = client_auth::presented_key(req["api-key"], req[bhttp::field::authorization]);
    if (!snap.auth.check(presented).allowed)
        co_return co_await reply(client, make_error(401, "invalid_request_error", "invalid_api_key",
                                                    presented.empty() ? "Missing API key: send it as 'api-key: KEY' or 'Authorization: Bearer KEY'."
                                                                      : "Incorrect API key provided.", version), keep_alive);

    if (route.what == api_route::kind::list_models) {
        http::string_response res{bhttp::status::ok, version};
        res.set(bhttp::field::content_type, "application/json");
        res.body() = models_json(snap.catalog);
        co_return co_await reply(client, std::move(res), keep_alive);
    }

    body_facts body;
    if (auto err = inspect_body(req.body(), body))
        co_return co_await reply(client, make_error(400, "invalid_request_error", "invalid_json",
                                                    "We could not parse the JSON body of your request: " + err->message,
                                                    version), keep_alive);
    std::string_view model_name = route.path_deployment.empty() ? std::string_view(body.model) : route.path_deployment;
    if (model_name.empty())
        co_return co_await reply(client, make_error(400, "invalid_request_error", "missing_model",
                                                    "You must provide a model parameter.", version), keep_alive);
    const routing::model_entry* model = snap.catalog.find(model_name);
    if (!model)
        co_return co_await reply(client, make_error(404, "invalid_request_error", "model_not_found",
                                                    "The model `" + std::string(model_name) +
                                                        "` does not exist or is not configured in spillway.", version),
                                 keep_alive);

    request_context ctx{req, client, snap, *model, route.op, std::move(body), {}, {}, keep_alive, {}, {}};
    ctx.facts.data_zone = req["x-spillway-data-zone"];
    ctx.deadline = info.request_started + snap.config->routing.request_timeout;
    co_return co_await forward(ctx);
}

awaitable<bool> handler::forward(request_context& ctx) {
    const auto& routing_cfg = ctx.snap.config->routing;
    for (int n = 1; n <= routing_cfg.max_attempts; ++n) {
        auto pick = router_.pick(ctx.snap.catalog, ctx.model, ctx.facts, ctx.tried);
        if (!pick) break;
        ctx.tried.push_back(*pick);
        // Retry only if another attempt could follow; otherwise the last answer goes to the client as is.
        bool may_retry = n < routing_cfg.max_attempts &&
                         router_.pick(ctx.snap.catalog, ctx.model, ctx.facts, ctx.tried).has_value();
        attempt_result result = co_await attempt(ctx, ctx.snap.catalog.at(*pick), may_retry);
        ctx.attempts.push_back(result.record);
        if (result.answered) co_return result.keep_alive;
        if (remaining(ctx.deadline, clock_) <= 0ns) break;
    }
    co_return co_await answer_exhausted(ctx);
}

// Nothing answered the client: say why in one error, with a hint when to come back.
awaitable<bool> handler::answer_exhausted(request_context& ctx) {
    unsigned version = ctx.req.version();
    if (ctx.attempts.empty()) {
        auto res = make_error(503, "service_unavailable", "no_deployment_available",
                              "No deployment of `" + ctx.model.name + "` is available" +
                                  (ctx.facts.data_zone.empty() ? std::string{} :
                                   " in data zone `" + std::string(ctx.facts.data_zone) + "`") + ".", version);
        set_retry_after(res, 1s);
        co_return co_await reply(ctx.client, std::move(res), ctx.client_keep_alive);
    }
    if (remaining(ctx.deadline, clock_) <= 0ns || ctx.attempts.back().why == failure::timeout)
        co_return co_await reply(ctx.client, make_error(504, "timeout", "deadline_exceeded",
                                                        "The request did not complete within the deadline (" +
                                                            std::to_string(ctx.snap.config->routing.request_timeout.count()) +
                                                            " ms) across " + std::to_string(ctx.attempts.size()) +
                                                            " attempt(s).", version), ctx.client_keep_alive);
    auto res = make_error(503, "service_unavailable", "no_healthy_deployment",
                          "Every deployment of `" + ctx.model.name + "` tried (" + std::to_string(ctx.attempts.size()) +
                              ") failed; try again shortly.", version);
    set_retry_after(res, 1s);
    co_return co_await reply(ctx.client, std::move(res), ctx.client_keep_alive);
}

awaitable<handler::attempt_result> handler::attempt(request_context& ctx, const routing::target& target, bool may_retry) {
    attempt_result result;
    result.record.target = target.id;
    const config::region& region = *target.region;
    http::upstream_pool& pool = *pools_[target.region_index];

    // The upstream request: new URL, the region's credentials, and the body as received unless
    // the upstream reads the deployment from `model`.
    std::string rewritten;
    std::string_view body = ctx.req.body();
    if (model_in_body(region, ctx.op) && ctx.body.has_model && ctx.body.model != target.deployment->name) {
        rewritten = replace_model(body, ctx.body, target.deployment->name);
        body = rewritten;
    }
    bhttp::request<bhttp::span_body<const char>> up{bhttp::verb::post, upstream_target(region, *target.deployment, ctx.op), 11};
    copy_request_headers(ctx.req, up);
    set_upstream_credentials(region, up);
    up.set(bhttp::field::host, upstream_host(region.upstream));
    up.body() = boost::span<const char>(body.data(), body.size());
    up.prepare_payload();

    // A kept-alive connection may have been closed by the upstream while idle; one fresh retry
    // on the same upstream covers that without counting as a failed attempt.
    for (int round = 0; round < 2; ++round) {
        auto budget = remaining(ctx.deadline, clock_);
        auto [cec, conn] = co_await pool.acquire(budget, round > 0);
        if (cec) {
            result.record.why = cec == beast::error::timeout ? failure::timeout : failure::connect;
            co_return result;
        }
        conn->stream.tcp_layer().expires_after(remaining(ctx.deadline, clock_));
        auto [wec, wn] = co_await bhttp::async_write(conn->stream, up, use_nothrow);
        if (wec) {
            if (conn->reused && round == 0 && looks_stale(wec)) continue;
            result.record.why = classify_io_error(wec);
            co_return result;
        }
        upstream_parser parser;
        parser.body_limit(boost::none);  // the client chose to ask; sizes are bounded by the deadline
        auto [rec, rn] = co_await bhttp::async_read_header(conn->stream, conn->buffer, parser, use_nothrow);
        if (rec) {
            if (conn->reused && round == 0 && looks_stale(rec) && rn == 0) continue;
            result.record.why = classify_io_error(rec);
            co_return result;
        }
        unsigned status = parser.get().result_int();
        result.record.status = status;
        if (may_retry && is_retry_status(ctx.snap.config->routing, status)) {
            result.record.why = failure::status;
            // Read a small body away so the connection can serve again; a large one is not worth it.
            std::array<char, 4096> sink;
            std::size_t discarded = 0;
            error_code dec;
            while (!parser.is_done() && !dec && discarded < max_discard_bytes) {
                parser.get().body().data = sink.data();
                parser.get().body().size = sink.size();
                auto [e, n] = co_await bhttp::async_read_some(conn->stream, conn->buffer, parser, use_nothrow);
                dec = e == bhttp::error::need_buffer ? error_code{} : e;
                discarded += sink.size() - parser.get().body().size;
            }
            if (parser.is_done() && parser.keep_alive()) pool.release(std::move(conn));
            co_return result;
        }
        co_return co_await relay(ctx, target, std::move(conn), parser);
    }
    result.record.why = failure::upstream_reset;
    co_return result;
}

// Sends the upstream's answer to the client as it arrives: headers first, then each piece of
// body the moment it is read (an SSE stream is never buffered). From here on the client has
// bytes, so a failure can no longer be retried: a broken stream ends with an error event.
awaitable<handler::attempt_result> handler::relay(request_context& ctx, const routing::target& target,
                                                   http::connection_ptr conn, upstream_parser& parser) {
    attempt_result result;
    result.answered = true;
    result.record.target = target.id;
    result.record.status = parser.get().result_int();
    const auto write_timeout = ctx.snap.config->limits.idle_timeout;

    auto& upstream = parser.get();
    bhttp::response<bhttp::buffer_body> res{upstream.result(), ctx.req.version()};
    copy_response_headers(upstream, res);
    res.set("x-spillway-region", target.region->name);
    res.set("x-spillway-deployment", target.deployment->name);
    res.set("x-spillway-attempts", std::to_string(ctx.attempts.size() + 1));
    if (parser.content_length())
        res.content_length(*parser.content_length());
    else if (!parser.is_done())
        res.chunked(true);
    else
        res.content_length(0);
    res.keep_alive(ctx.client_keep_alive);
    const bool event_stream = upstream[bhttp::field::content_type].starts_with("text/event-stream");

    bhttp::response_serializer<bhttp::buffer_body> writer{res};
    res.body().data = nullptr;
    res.body().more = !parser.is_done();
    ctx.client.tcp_layer().expires_after(write_timeout);
    auto [hec, hn] = co_await bhttp::async_write_header(ctx.client, writer, use_nothrow);
    if (hec) co_return result;  // client gone; dropping `conn` closes the upstream request too

    std::array<char, relay_chunk> chunk;
    while (!parser.is_done()) {
        upstream.body().data = chunk.data();
        upstream.body().size = chunk.size();
        conn->stream.tcp_layer().expires_after(remaining(ctx.deadline, clock_));
        auto [rec, rn] = co_await bhttp::async_read_some(conn->stream, conn->buffer, parser, use_nothrow);
        if (rec == bhttp::error::need_buffer) rec = {};
        if (rec) {
            result.record.why = classify_io_error(rec);
            spdlog::warn("upstream {}/{} failed mid-response: {}", target.region->name, target.deployment->name,
                         rec.message());
            if (res.chunked()) {
                // End the client's stream cleanly, with an event the SDK reports as an error.
                std::string event = http::sse_data_event(
                    error_json("upstream_error", "upstream_stream_interrupted",
                               "The upstream deployment's stream was interrupted: " + rec.message()));
                if (!event_stream) event.clear();
                res.body().data = event.empty() ? nullptr : event.data();
                res.body().size = event.size();
                res.body().more = false;
                ctx.client.tcp_layer().expires_after(write_timeout);
                co_await bhttp::async_write(ctx.client, writer, use_nothrow);
            }
            result.keep_alive = false;
            co_return result;
        }
        std::size_t got = chunk.size() - upstream.body().size;
        if (got == 0 && !parser.is_done()) continue;
        res.body().data = got ? chunk.data() : nullptr;
        res.body().size = got;
        res.body().more = !parser.is_done();
        ctx.client.tcp_layer().expires_after(write_timeout);
        auto [wec, wn] = co_await bhttp::async_write(ctx.client, writer, use_nothrow);
        if (wec == bhttp::error::need_buffer) wec = {};
        if (wec) co_return result;  // client gone: the upstream connection is dropped, which cancels it
    }
    if (!writer.is_done()) {
        res.body().data = nullptr;
        res.body().size = 0;
        res.body().more = false;
        ctx.client.tcp_layer().expires_after(write_timeout);
        auto [wec, wn] = co_await bhttp::async_write(ctx.client, writer, use_nothrow);
        if (wec && wec != bhttp::error::need_buffer) co_return result;
    }
    if (parser.keep_alive()) pools_[target.region_index]->release(std::move(conn));
    result.keep_alive = ctx.client_keep_alive;
    co_return result;
}

}  // namespace spillway::proxy
