// How a request flows: admit (route, auth, body, cost estimate, client limits) → pick a
// deployment → forward → relay the answer as it arrives → record the outcome (health, quota,
// metrics, access log) → on a retryable failure before the first byte reached the client, pick
// another, all inside one deadline.
#include "proxy/proxy.hpp"

#include "health/retry_after.hpp"
#include "http/hangup_watch.hpp"
#include "http/parse_buffered.hpp"
#include "http/sse.hpp"
#include "http/wire.hpp"
#include "metrics/registry.hpp"
#include "proxy/header_scan.hpp"
#include "proxy/openai_error.hpp"
#include "proxy/upstream_request.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/container/static_vector.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/fmt/chrono.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <new>
#include <type_traits>
#include <optional>
#include <tuple>
#include <charconv>

namespace spillway::proxy {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

struct handler::request_context {
    request_record& rec;
    std::vector<std::unique_ptr<http::upstream_pool>>& pools;
    http::request& req;
    http::any_stream& client;
    const snapshot& snap;
    const routing::model_entry& model;
    operation op;
    body_facts body;
    routing::request_facts facts;
    std::uint64_t estimate = 0;  // tokens, as Azure will count them at admission
    core::time_point started;
    core::time_point deadline;
    bool client_keep_alive = true;
    boost::container::small_vector<routing::target_id, 4> tried;
};

struct handler::attempt_result {
    bool answered = false;     // the client got its answer (or went away): stop
    bool keep_alive = false;   // when answered: may the client connection stay open
    bool client_gone = false;  // the client went away: no verdict on the upstream
    attempt_record record;
};

namespace {

constexpr std::size_t max_discard_bytes = 64 * 1024;  // a retried answer's body we read to keep the connection

std::chrono::nanoseconds remaining(core::time_point deadline, const core::clock& clock) {
    return deadline - clock.now();
}

bool is_retry_status(const config::routing& r, unsigned status) {
    return std::find(r.retry_on.begin(), r.retry_on.end(), static_cast<int>(status)) != r.retry_on.end();
}

std::string stall_message(const config::routing& r) {
    return "it sent nothing for " + std::to_string(r.stream_idle_timeout.count()) +
           " ms (routing.stream_idle_timeout_ms)";
}

failure classify_io_error(const error_code& ec) {
    if (ec == beast::error::timeout) return failure::timeout;
    return failure::upstream_reset;
}

// The relay's working memory: a piece of body and the answer's tail (usage comes last in a body
// or stream). It comes from the per-thread block cache: in the coroutine frame it would make the
// frame too large for malloc's fast per-thread cache.
struct relay_space {
    std::array<char, http::relay_block_bytes - sizeof(tail_buffer)> chunk;
    tail_buffer tail;
};
static_assert(sizeof(relay_space) <= http::relay_block_bytes && std::is_trivially_destructible_v<relay_space>);

// A connection may serve again only after a complete final answer with nothing left over.
bool reusable(const http::answer_parser& parser, const http::upstream_connection& conn) {
    return parser.is_done() && parser.keep_alive() && parser.status() >= 200 && conn.buffer.size() == 0;
}

// The failure looks like a kept-alive connection the server had already closed.
bool looks_stale(const error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == bhttp::error::partial_message;
}

// Reads a retried answer's body away, up to max_discard_bytes; true if the connection may
// serve again. A coroutine of its own, so that its buffer is not part of every attempt's frame.
awaitable<bool> discard_body(http::upstream_connection& conn, http::answer_parser& parser) {
    std::array<char, 4096> sink;
    std::size_t discarded = 0;
    error_code ec;
    while (!parser.is_done() && !ec && discarded < max_discard_bytes) {
        parser.body() = {sink.data(), sink.size()};
        std::tie(ec, std::ignore) = co_await http::read_until(
            conn.stream, conn.buffer, parser, [&](const auto& p) { return p.is_done() || p.body().size == 0; });
        if (ec == bhttp::error::need_buffer) ec = {};
        discarded += sink.size() - parser.body().size;
    }
    co_return reusable(parser, conn);
}

// Reads the head of the upstream's answer into conn.parser, skipping interim 1xx answers
// (100 Continue, 103 Early Hints), which would otherwise leave the real one unread on a pooled
// connection. A non-streaming answer's head comes only after the whole generation: meanwhile the
// hang-up watch cancels the exchange (and its token spend) if the client leaves, reported as
// the third value. The watch ends here: once the answer flows, a client that leaves is noticed
// by the relay's next write.
awaitable<std::tuple<error_code, std::size_t, bool>> read_answer_head(http::hangup_watch& hangups,
                                                                      http::any_stream& client,
                                                                      http::upstream_connection& conn) {
    http::hangup_watch::exchange watched(hangups, client.tcp_layer().socket(), conn.stream.tcp_layer().socket());
    error_code ec;
    std::size_t n = 0;
    do {
        conn.parser.reset();  // no body limit: the client chose to ask, and the deadline bounds it
        std::tie(ec, n) = co_await http::read_until(conn.stream, conn.buffer, conn.parser,
                                                    [](const auto& p) { return p.is_header_done(); });
    } while (!ec && !watched.client_gone() && conn.parser.status() / 100 == 1 && conn.parser.status() != 101);
    co_return std::tuple{ec, n, watched.client_gone()};
}

std::optional<std::uint64_t> header_number(std::string_view v) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || p == v.data()) return std::nullopt;
    return n;
}

upstream_signals read_signals(const answer_headers& h) {
    upstream_signals s;
    s.retry_after = health::parse_retry_after(h.retry_after_ms, h.retry_after);
    s.remaining_tokens = header_number(h.remaining_tokens);
    s.remaining_requests = header_number(h.remaining_requests);
    return s;
}

// What an ended attempt means for the deployment's health and quota.
void record_outcome(deployment_state& state, quota::reservation& reservation, const attempt_record& rec,
                    bool client_gone, std::chrono::nanoseconds elapsed) {
    if (client_gone) return state.on_abandoned();
    if (rec.why == failure::connect || rec.why == failure::timeout ||
        (rec.why == failure::upstream_reset && rec.status == 0))
        return state.on_failed(reservation, true);
    if (rec.why == failure::upstream_reset || rec.why == failure::stalled)
        return state.on_failed(reservation, false);  // broke mid-answer
    if (rec.status == 429) return state.on_throttled(reservation, rec.retry_after);
    if (rec.status >= 500 || rec.status == 408) return state.on_failed(reservation, rec.why == failure::status);
    state.on_succeeded(elapsed);
}

double seconds(core::clock_duration d) { return std::chrono::duration<double>(d).count(); }

void record_attempt_metrics(metrics::deployment_metrics& m, const attempt_record& a, bool completed) {
    if (a.status)
        m.upstream_requests.increment(a.status);
    else
        m.upstream_requests.increment(outcome_of(a));
    if (a.ttfb) m.ttfb.Observe(seconds(*a.ttfb));
    if (completed) m.latency.Observe(seconds(a.duration));
}

// The attempt failed and the request went on to another deployment.
void count_retry(const snapshot& snap, const attempt_record& failed) {
    auto outcome = outcome_of(failed);
    auto reason = metrics::retry_reason::server_error;
    if (outcome == "throttled") reason = metrics::retry_reason::throttled;
    else if (outcome == "connect_error") reason = metrics::retry_reason::connect_error;
    else if (outcome == "timeout" || outcome == "stalled") reason = metrics::retry_reason::timeout;
    else if (outcome == "upstream_reset") reason = metrics::retry_reason::upstream_reset;
    snap.target_metrics[failed.target]->retries[static_cast<std::size_t>(reason)]->Increment();
}

std::chrono::milliseconds client_wait(core::time_point at, core::time_point now) {
    // SDKs honour retry-after only up to 60 s (AZURE.md §6): never promise more.
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(at - now);
    return std::clamp<std::chrono::milliseconds>(wait, std::chrono::milliseconds(0), std::chrono::milliseconds(60000));
}

std::string models_json(const routing::catalog& cat) {
    nlohmann::json data = nlohmann::json::array();
    for (const auto& m : cat.models())
        data.push_back({{"id", m.name}, {"object", "model"}, {"created", 0}, {"owned_by", "spillway"}});
    return nlohmann::json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

}  // namespace

handler::handler(net::io_context& io, snapshot_holder& snapshots, core::clock& clock,
                 std::shared_ptr<spdlog::logger> access_log, unsigned worker)
    : io_(io), snapshots_(snapshots), clock_(clock), access_log_(std::move(access_log)), hangups_(io) {
    // Request ids: random per process start, then worker and a counter: unique without coordination.
    char prefix[24];
    std::snprintf(prefix, sizeof prefix, "%08x-%u-", static_cast<unsigned>(random_.next_unit() * 4294967295.0), worker);
    id_prefix_ = prefix;
}

const snapshot& handler::refresh() {
    auto version = snapshots_.version();
    if (version != snapshot_version_) {
        snapshot_ = snapshots_.current();
        snapshot_version_ = version;
        // New config, new pools: idle connections of the old ones close when the last request
        // using them ends.
        auto pools = std::make_shared<pool_set>();
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
            pools->push_back(std::make_unique<http::upstream_pool>(io_, std::move(t)));
        }
        pools_ = std::move(pools);
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

awaitable<bool> handler::reply(request_record& rec, http::any_stream& client, http::string_response res,
                               bool keep_alive) {
    rec.status = res.result_int();
    res.set("x-spillway-request-id", rec.id);
    res.keep_alive(keep_alive);
    client.tcp_layer().expires_after(refresh().config->limits.idle_timeout);
    bool ok = co_await http::write_response(client, res);
    co_return ok && keep_alive;
}

std::string handler::next_request_id() { return id_prefix_ + std::to_string(++next_id_); }

// Without its id: a request let through by screen() gets it when it is served.
request_record handler::new_record(const http::request_parser& head, const http::connection_info& info) {
    request_record rec;
    rec.started = info.request_started;
    rec.method = head.method();
    rec.path = head.target().substr(0, head.target().find('?'));
    return rec;
}

// A refusal here is counted and logged like one after the body (the server then drops the body).
std::optional<http::string_response> handler::screen(const http::request_parser& head,
                                                     const http::connection_info& info) {
    const snapshot& snap = refresh();
    request_record rec = new_record(head, info);
    admission ignored;
    auto refusal = admit_head(head, rec, ignored);
    if (refusal) {
        rec.id = next_request_id();
        rec.status = refusal->result_int();
        refusal->set("x-spillway-request-id", rec.id);
        finish(snap, rec);
    }
    return refusal;
}

awaitable<bool> handler::serve(http::request& req, http::any_stream& client, const http::connection_info& info) {
    // The snapshot is held for the whole request: a reload meanwhile must not free what it uses.
    refresh();
    std::shared_ptr<const snapshot> snap = snapshot_;
    std::shared_ptr<pool_set> pools = pools_;
    request_record rec = new_record(req.head, info);
    rec.id = next_request_id();

    bool keep_alive = false;
    admission admitted;
    if (auto refusal = admit(req, rec, admitted)) {
        keep_alive = co_await reply(rec, client, std::move(*refusal), info.keep_alive);
    } else {
        request_context ctx{rec, *pools, req, client, *snap, *admitted.model, admitted.op, std::move(admitted.body), {},
                            admitted.estimate, info.request_started, {}, info.keep_alive, {}};
        ctx.facts.data_zone = admitted.headers.data_zone;
        ctx.facts.estimated_tokens = admitted.estimate;
        ctx.deadline = info.request_started + snap->config->routing.request_timeout;
        keep_alive = co_await forward(ctx);
    }
    finish(*snap, rec);
    co_return keep_alive;
}

void handler::finish(const snapshot& snap, request_record& rec) {
    // Nothing was answered: the client left first. Counted as 499, nginx's "client closed request".
    if (rec.status == 0) rec.status = 499;
    auto total = clock_.now() - rec.started;
    auto& model = rec.model_index ? *snap.model_metrics[*rec.model_index] : *snap.unmatched_metrics;
    model.requests.increment(rec.status);
    model.duration.Observe(std::chrono::duration<double>(total).count());
    if (access_log_) {
        auto now = std::chrono::system_clock::now();
        access_log_->info(format_access_log(rec, snap.catalog, total, fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", now)));
    }
}

// What a request's head alone decides: its route and its client key.
std::optional<http::string_response> handler::admit_head(const http::request_parser& head, request_record& rec,
                                                         admission& out) {
    const snapshot& snap = *snapshot_;
    const unsigned version = head.version();
    out.route = classify_route(head.method() == "POST", head.method() == "GET", head.target());
    if (out.route.what == api_route::kind::not_found)
        return make_error(404, "invalid_request_error", "unknown_url",
                          "Unknown request URL: " + std::string(head.method()) + " " +
                              std::string(head.target().substr(0, head.target().find('?'))) + ".",
                          version);
    if (out.route.what == api_route::kind::method_not_allowed)
        return make_error(405, "invalid_request_error", "method_not_allowed",
                          "Method " + std::string(head.method()) + " is not allowed for this URL.", version);

    out.headers = scan_request_headers(head.fields());
    auto presented = client_auth::presented_key(out.headers.api_key, out.headers.authorization);
    const auto verdict = snap.auth.check(presented);
    out.key_index = verdict.key_index;
    if (verdict.key_index) rec.client = snap.config->auth.keys[*verdict.key_index].name;
    if (!verdict.allowed)
        return make_error(401, "invalid_request_error", "invalid_api_key",
                          presented.empty() ? "Missing API key: send it as 'api-key: KEY' or 'Authorization: Bearer KEY'."
                                            : "Incorrect API key provided.",
                          version);
    return std::nullopt;
}

// Everything about a request that needs no I/O: its route, key, body, model, cost and client
// limits. Either it is admitted (out.model set), or the answer that refuses it is returned.
// A plain function, not part of serve()'s coroutine: there every answer built here would hold
// a slot of its own in the frame (together about 2 KiB, allocated for every request).
std::optional<http::string_response> handler::admit(http::request& req, request_record& rec, admission& out) {
    if (auto refusal = admit_head(req.head, rec, out)) return refusal;
    const snapshot& snap = *snapshot_;
    const unsigned version = req.head.version();
    const api_route& route = out.route;
    if (route.what == api_route::kind::list_models) {
        http::string_response res{bhttp::status::ok, version};
        res.set(bhttp::field::content_type, "application/json");
        res.body() = models_json(snap.catalog);
        return res;
    }

    if (auto err = inspect_body(req.body, out.body))
        return make_error(400, "invalid_request_error", "invalid_json",
                          "We could not parse the JSON body of your request: " + err->message, version);
    std::string_view model_name = route.path_deployment.empty() ? std::string_view(out.body.model) : route.path_deployment;
    if (model_name.empty())
        return make_error(400, "invalid_request_error", "missing_model", "You must provide a model parameter.", version);
    const routing::model_entry* model = snap.catalog.find(model_name);
    if (model) {
        rec.model = model->name;
        rec.model_index = static_cast<std::size_t>(model - snap.catalog.models().data());
    }
    rec.stream = out.body.stream;
    if (!model)
        return make_error(404, "invalid_request_error", "model_not_found",
                          "The model `" + std::string(model_name) + "` does not exist or is not configured in spillway.",
                          version);

    quota::request_shape shape{out.body.prompt_chars, out.body.max_tokens, route.op != operation::embeddings};
    out.estimate = quota::estimate_tokens(shape, snap.config->routing.default_max_tokens);
    rec.estimate = out.estimate;
    if (auto key = out.key_index) {
        auto limit = snap.client_limits->admit(*key, clock_.now(), out.estimate);
        if (!limit.admitted) {
            auto res = make_error(429, "rate_limit_exceeded", "client_rate_limit_exceeded",
                                  "Client key `" + snap.config->auth.keys[*key].name + "` is over its " + limit.which +
                                      "-per-minute limit in spillway.",
                                  version);
            set_retry_after(res, std::chrono::ceil<std::chrono::milliseconds>(limit.retry_after));
            return res;
        }
    }
    out.model = model;
    out.op = route.op;
    return std::nullopt;
}

namespace {

// Reads the shared state through the snapshot of this request.
class snapshot_view final : public routing::state_view {
public:
    explicit snapshot_view(const snapshot& snap) : snap_(snap) {}
    routing::target_status status(routing::target_id id, std::uint64_t tokens) override {
        return snap_.states[id]->status(tokens);
    }

private:
    const snapshot& snap_;
};

}  // namespace

awaitable<bool> handler::forward(request_context& ctx) {
    const auto& routing_cfg = ctx.snap.config->routing;
    snapshot_view view(ctx.snap);
    routing::balanced_router router(view, random_);
    const auto wait_until = ctx.started + routing_cfg.max_wait;
    int sent = 0;
    while (sent < routing_cfg.max_attempts && remaining(ctx.deadline, clock_) > 0ns) {
        auto pick = router.pick(ctx.snap.catalog, ctx.model, ctx.facts, {ctx.tried.data(), ctx.tried.size()});
        if (!pick) {
            // Nothing available now: wait for the first deployment to free up, if that is within
            // max_wait_ms (and the deadline); otherwise answer.
            const auto& why = router.last_exhausted();
            if (why.no_candidates || !why.soonest || *why.soonest > wait_until || *why.soonest >= ctx.deadline) break;
            net::steady_timer timer(io_);
            timer.expires_after(*why.soonest - clock_.now() + 1ms);
            co_await timer.async_wait(use_nothrow);
            continue;
        }
        ctx.tried.push_back(*pick);
        deployment_state& state = *ctx.snap.states[*pick];
        auto reservation = state.begin(ctx.estimate);
        if (!reservation) continue;  // another request holds its half-open trial
        ++sent;
        if (!ctx.rec.attempts.empty()) count_retry(ctx.snap, ctx.rec.attempts.back());
        auto began = clock_.now();
        attempt_result result = co_await attempt(ctx, ctx.snap.catalog.at(*pick));
        result.record.duration = clock_.now() - began;
        record_outcome(state, *reservation, result.record, result.client_gone, result.record.duration);
        record_attempt_metrics(*ctx.snap.target_metrics[*pick], result.record, result.answered && !result.client_gone);
        ctx.rec.attempts.push_back(result.record);
        if (result.answered) {
            ctx.rec.answered_by = *pick;
            co_return result.keep_alive;
        }
    }
    co_return co_await answer_exhausted(ctx);
}

// Nothing answered the client: say why in one error, with when to come back.
awaitable<bool> handler::answer_exhausted(request_context& ctx) {
    const unsigned version = ctx.req.head.version();
    const auto now = clock_.now();
    const failure last = ctx.rec.attempts.empty() ? failure::none : ctx.rec.attempts.back().why;
    if (last == failure::stalled && remaining(ctx.deadline, clock_) > 0ns)
        co_return co_await reply(ctx.rec, ctx.client, make_error(504, "timeout", "upstream_stalled",
                                                        "The upstream deployment's answer stopped: " +
                                                            stall_message(ctx.snap.config->routing) + ", after " +
                                                            std::to_string(ctx.rec.attempts.size()) + " attempt(s).",
                                                        version), ctx.client_keep_alive);
    if (remaining(ctx.deadline, clock_) <= 0ns || last == failure::timeout)
        co_return co_await reply(ctx.rec, ctx.client, make_error(504, "timeout", "deadline_exceeded",
                                                        "The request did not complete within the deadline (" +
                                                            std::to_string(ctx.snap.config->routing.request_timeout.count()) +
                                                            " ms) across " + std::to_string(ctx.rec.attempts.size()) +
                                                            " attempt(s).", version), ctx.client_keep_alive);

    // Over every deployment of the model in the zone, tried or not: throttled ones make this a
    // 429, and the soonest recovery is when the client should come back.
    bool throttled = std::any_of(ctx.rec.attempts.begin(), ctx.rec.attempts.end(), [](const attempt_record& a) { return a.status == 429; });
    std::optional<core::time_point> soonest;
    bool any_in_zone = false;
    for (routing::target_id id : ctx.model.targets) {
        if (!routing::in_zone(ctx.snap.catalog.at(id), ctx.facts.data_zone)) continue;
        any_in_zone = true;
        auto s = ctx.snap.states[id]->status(ctx.estimate);
        if (s.state == routing::availability::available) continue;
        if (s.state != routing::availability::open) throttled = true;
        if (!soonest || s.available_at < *soonest) soonest = s.available_at;
    }
    const std::string zone = ctx.facts.data_zone.empty() ? std::string{} : " in data zone `" + std::string(ctx.facts.data_zone) + "`";
    if (!any_in_zone) {
        auto res = make_error(404, "invalid_request_error", "model_not_found",
                              "No deployment of `" + ctx.model.name + "` is configured" + zone + ".", version);
        co_return co_await reply(ctx.rec, ctx.client, std::move(res), ctx.client_keep_alive);
    }
    auto wait = soonest ? client_wait(*soonest, now) : std::chrono::milliseconds(1000);
    if (throttled) {
        auto res = make_error(429, "rate_limit_exceeded", "all_deployments_throttled",
                              "Every deployment of `" + ctx.model.name + "`" + zone +
                                  " is at its rate limit; the first frees up in " + std::to_string(wait.count()) + " ms.",
                              version);
        set_retry_after(res, wait);
        co_return co_await reply(ctx.rec, ctx.client, std::move(res), ctx.client_keep_alive);
    }
    auto res = make_error(503, "service_unavailable", "no_healthy_deployment",
                          "No healthy deployment of `" + ctx.model.name + "`" + zone + " (" +
                              std::to_string(ctx.rec.attempts.size()) + " attempt(s) failed); try again in " +
                              std::to_string(std::max<std::int64_t>(wait.count(), 1000)) + " ms.", version);
    set_retry_after(res, std::max(wait, std::chrono::milliseconds(1000)));
    co_return co_await reply(ctx.rec, ctx.client, std::move(res), ctx.client_keep_alive);
}

// The pool-wide headroom of SPEC §3: what is left across every available deployment of the
// model, replacing the one upstream's own x-ratelimit-remaining-* values.
quota::remaining_estimate handler::pool_headroom(request_context& ctx) {
    quota::remaining_estimate pool;
    for (routing::target_id id : ctx.model.targets) {
        if (!routing::in_zone(ctx.snap.catalog.at(id), ctx.facts.data_zone)) continue;
        auto part = ctx.snap.states[id]->pool_contribution();
        if (part.tokens) pool.tokens = pool.tokens.value_or(0) + *part.tokens;
        if (part.requests) pool.requests = pool.requests.value_or(0) + *part.requests;
    }
    return pool;
}

// A retry_on answer never goes to the client as is, even from the last deployment: spillway's
// own 429/503 says when the *first* deployment frees up, not just this one.
awaitable<handler::attempt_result> handler::attempt(request_context& ctx, const routing::target& target) {
    attempt_result result;
    result.record.target = target.id;
    const config::region& region = *target.region;
    http::upstream_pool& pool = *ctx.pools[target.region_index];

    // The upstream request: new URL, the region's credentials, and the body as received unless
    // the upstream reads the deployment from `model`.
    std::string rewritten;
    std::string_view body = ctx.req.body;
    if (model_in_body(region, ctx.op) && !(ctx.body.has_model && ctx.body.model == target.deployment->name)) {
        rewritten = with_model(body, ctx.body, target.deployment->name);
        body = rewritten;
    }
    const std::string head = upstream_request_head(ctx.snap.wire[target.id].upstream, ctx.op, ctx.req.head.fields(), body.size());
    const std::array<net::const_buffer, 2> request_bytes{net::buffer(head), net::buffer(body)};

    // A kept-alive connection may have been closed by the upstream while idle; one fresh retry
    // on the same upstream covers that without counting as a failed attempt.
    for (int round = 0; round < 2; ++round) {
        auto budget = remaining(ctx.deadline, clock_);
        // A kept-alive connection unless this is the fresh retry; only a new one is awaited.
        http::connection_ptr conn = round == 0 ? pool.take_idle() : nullptr;
        error_code cec;
        if (!conn) std::tie(cec, conn) = co_await pool.connect(budget);
        if (cec) {  // refused, unresolvable or too slow to connect: this upstream is unreachable
            result.record.why = failure::connect;
            co_return result;
        }
        const auto sent_at = clock_.now();
        conn->stream.tcp_layer().expires_after(ctx.deadline - sent_at);
        auto [wec, wn, sent] = http::write_at_once(conn->stream, request_bytes);
        if (!sent) std::tie(wec, wn) = co_await http::write_rest(conn->stream, request_bytes, wn);
        if (wec) {
            if (conn->reused && round == 0 && looks_stale(wec)) continue;
            result.record.why = classify_io_error(wec);
            co_return result;
        }
        auto& parser = conn->parser;
        auto [rec, rn, client_left] = co_await read_answer_head(hangups_, ctx.client, *conn);
        if (client_left) {
            result.record.why = failure::client_gone;
            result.client_gone = true;
            result.answered = true;
            co_return result;
        }
        if (!rec && parser.status() == 101) rec = bhttp::error::bad_version;  // no protocol switch here
        rec = conn->stream.tcp_layer().explain(rec);
        if (rec) {
            // A kept-alive connection closed by the upstream fails at once; one that fails after
            // the upstream had time to work on the request is a real failure, not to be resent.
            bool at_once = clock_.now() - sent_at < 250ms;
            if (conn->reused && round == 0 && looks_stale(rec) && rn == 0 && at_once) continue;
            result.record.why = classify_io_error(rec);
            co_return result;
        }
        unsigned status = parser.status();
        result.record.status = status;
        const answer_headers answer = scan_answer_headers(parser.fields());
        upstream_signals signals = read_signals(answer);
        result.record.retry_after = signals.retry_after;
        result.record.ttfb = clock_.now() - sent_at;
        ctx.snap.states[target.id]->on_headers(signals, *result.record.ttfb);
        if (is_retry_status(ctx.snap.config->routing, status)) {
            result.record.why = failure::status;
            // Read a small body away so the connection can serve again; a large one is not worth it.
            // Bounded by the connect timeout too: a stalled error body must not hold up the failover.
            conn->stream.tcp_layer().expires_after(
                std::min<std::chrono::nanoseconds>(ctx.snap.config->routing.connect_timeout, remaining(ctx.deadline, clock_)));
            if (co_await discard_body(*conn, parser)) pool.release(std::move(conn));
            co_return result;
        }
        attempt_result relayed =
            co_await relay(ctx, target, std::move(conn), parser, answer.content_type.starts_with("text/event-stream"));
        relayed.record.ttfb = result.record.ttfb;
        relayed.record.retry_after = result.record.retry_after;
        co_return relayed;
    }
    result.record.why = failure::upstream_reset;
    co_return result;
}

// Sends the upstream's answer to the client as it arrives. The upstream's own message is
// re-serialized in place (its fields are not copied), keeping its framing. The header goes out
// together with the first piece of body, in one write: until then nothing has reached the client
// and an upstream failure is still retried elsewhere. After that every piece is written the
// moment it is read (an SSE stream is never buffered), and a broken stream ends with an error event.
awaitable<handler::attempt_result> handler::relay(request_context& ctx, const routing::target& target,
                                                   http::connection_ptr conn, upstream_parser& parser,
                                                   bool event_stream) {
    attempt_result result;
    result.record.target = target.id;
    result.record.status = parser.status();
    const auto write_timeout = ctx.snap.config->limits.idle_timeout;
    const std::chrono::nanoseconds stream_idle = ctx.snap.config->routing.stream_idle_timeout;

    // The client's head is written in one pass from the parsed upstream header (no field is
    // copied or changed): the upstream's fields minus hop-by-hop ones, then spillway's own.
    // Framing: the upstream's, except that a body delimited by the connection's end becomes
    // chunked, and an HTTP/1.0 client gets raw bytes and a close instead of chunks.
    const unsigned version = ctx.req.head.version();
    const bool upstream_chunked = parser.chunked();
    bool chunked = upstream_chunked || (!parser.content_length() && !parser.is_done());
    bool keep_alive = ctx.client_keep_alive;
    if (chunked && version == 10) {
        chunked = false;
        keep_alive = false;
    }
    const auto pool = pool_headroom(ctx);
    std::string head;
    head.reserve(1024);
    http::wire::append_status_line(version, parser.status(), parser.reason(), head);
    append_client_response_fields(
        parser.fields(),
        {chunked == upstream_chunked ? std::string_view{} : std::string_view{"transfer-encoding"},
         pool.tokens ? std::string_view{"x-ratelimit-remaining-tokens"} : std::string_view{},
         pool.requests ? std::string_view{"x-ratelimit-remaining-requests"} : std::string_view{}},
        head);
    if (chunked && !upstream_chunked) http::wire::append_field("Transfer-Encoding", "chunked", head);
    if (version == 10 && keep_alive) http::wire::append_field("Connection", "keep-alive", head);
    if (version != 10 && !keep_alive) http::wire::append_field("Connection", "close", head);
    if (pool.tokens) http::wire::append_field("x-ratelimit-remaining-tokens", std::to_string(*pool.tokens), head);
    if (pool.requests) http::wire::append_field("x-ratelimit-remaining-requests", std::to_string(*pool.requests), head);
    head.append(ctx.snap.wire[target.id].client_fields);
    http::wire::append_field("x-spillway-attempts", std::to_string(ctx.rec.attempts.size() + 1), head);
    http::wire::append_field("x-spillway-request-id", ctx.rec.id, head);
    head.append(http::wire::crlf);

    auto& body = parser.body();
    http::scratch_block<http::relay_block_bytes> block;
    relay_space& space = *new (block.data()) relay_space;
    auto& chunk = space.chunk;
    tail_buffer& tail = space.tail;
    std::string chunk_size;  // the size line of the chunk being sent
    bool client_has_bytes = false;
    // The buffers of one scatter-write to the client: the head (first time only), `data` framed
    // as a chunk if chunked, and the last chunk when `last`.
    auto frame = [&](std::string_view data, bool last) {
        boost::container::static_vector<net::const_buffer, 5> out;
        if (!client_has_bytes) out.push_back(net::buffer(head));
        if (chunked && !data.empty()) {
            chunk_size.clear();
            http::wire::append_chunk_size(data.size(), chunk_size);
            out.push_back(net::buffer(chunk_size));
            out.push_back(net::buffer(data));
            out.push_back(net::buffer(http::wire::crlf));
        } else if (!data.empty()) {
            out.push_back(net::buffer(data));
        }
        if (chunked && last) out.push_back(net::buffer(http::wire::last_chunk));
        client_has_bytes = true;
        ctx.client.tcp_layer().expires_after(write_timeout);
        return out;
    };

    for (;;) {
        std::size_t got = 0;
        if (!parser.is_done()) {
            body.data = chunk.data();
            body.size = chunk.size();
            // What is already buffered goes out at once, several SSE events in one write; only
            // with nothing buffered is there a wait for the upstream.
            error_code rec = http::parse_buffered(parser, conn->buffer,
                                                  [&](const auto& p) { return p.is_done() || body.size == 0; });
            bool idle_bound = false;  // the wait below ends at the idle limit, before the deadline
            if (!rec && !parser.is_done() && body.size == chunk.size()) {
                const auto left = remaining(ctx.deadline, clock_);
                idle_bound = stream_idle.count() > 0 && stream_idle < left;
                conn->stream.tcp_layer().expires_after(idle_bound ? stream_idle : left);
                std::tie(rec, std::ignore) = co_await http::read_until(
                    conn->stream, conn->buffer, parser,
                    [&](const auto& p) { return p.is_done() || body.size != chunk.size(); });
            }
            if (rec == bhttp::error::need_buffer) rec = {};
            rec = conn->stream.tcp_layer().explain(rec);
            if (rec) {
                const bool stalled = idle_bound && rec == beast::error::timeout;
                result.record.why = stalled ? failure::stalled : classify_io_error(rec);
                const std::string why = stalled ? stall_message(ctx.snap.config->routing) : rec.message();
                spdlog::warn("upstream {}/{} failed mid-response: {}", target.region->name, target.deployment->name,
                             why);
                if (!client_has_bytes) co_return result;  // nothing sent yet: retryable elsewhere
                result.answered = true;
                if (event_stream) {
                    // End the client's stream cleanly, with an event the SDK reports as an error.
                    // (Anything else is cut off without a last chunk, so it cannot pass as complete.)
                    std::string event = http::sse_data_event(error_json(
                        "upstream_error", "upstream_stream_interrupted",
                        "The upstream deployment's stream was interrupted: " + why));
                    co_await http::write_all(ctx.client, frame(event, true));
                }
                result.keep_alive = false;
                co_return result;
            }
            got = chunk.size() - body.size;
            if (got == 0 && !parser.is_done()) continue;
            tail.append({chunk.data(), got});
        }
        if (!client_has_bytes) ctx.rec.status = result.record.status;
        result.answered = true;
        const auto out = frame({chunk.data(), got}, parser.is_done());
        auto [wec, wn, sent] = http::write_at_once(ctx.client, out);
        if (!sent) std::tie(wec, wn) = co_await http::write_rest(ctx.client, out, wn);
        if (wec) {  // client gone: the upstream connection is dropped, which cancels it
            result.record.why = failure::client_gone;
            result.client_gone = true;
            co_return result;
        }
        // The write deadline bounds a client that stops reading, not a pause of the upstream's.
        ctx.client.tcp_layer().expires_never();
        if (parser.is_done()) break;
    }
    if (reusable(parser, *conn)) ctx.pools[target.region_index]->release(std::move(conn));
    ctx.rec.tokens = find_usage(tail.view());
    auto& m = *ctx.snap.target_metrics[target.id];
    if (ctx.rec.tokens.prompt) m.prompt_tokens.Increment(static_cast<double>(*ctx.rec.tokens.prompt));
    if (ctx.rec.tokens.completion) m.completion_tokens.Increment(static_cast<double>(*ctx.rec.tokens.completion));
    result.keep_alive = keep_alive;
    co_return result;
}

}  // namespace spillway::proxy
