// The data plane: where a request meets routing, the upstream pools and the client stream.
// One handler per worker thread; it owns that worker's upstream pools and router.
#pragma once

#include "core/clock.hpp"
#include "core/random.hpp"
#include "http/hangup_watch.hpp"
#include "http/server.hpp"
#include "http/upstream_pool.hpp"
#include "proxy/api_route.hpp"
#include "proxy/header_scan.hpp"
#include "proxy/request_body.hpp"
#include "proxy/request_record.hpp"
#include "proxy/snapshot.hpp"
#include "quota/estimate.hpp"
#include "routing/balanced_router.hpp"


#include <memory>
#include <optional>

namespace spdlog {
class logger;
}
#include <string>
#include <vector>

namespace spillway::proxy {


class handler final : public http::request_handler {
public:
    // access_log: null to disable. worker: a small number that makes request ids unique per process.
    handler(net::io_context& io, snapshot_holder& snapshots, core::clock& clock,
            std::shared_ptr<spdlog::logger> access_log, unsigned worker);

    awaitable<bool> serve(http::request& req, http::any_stream& client, const http::connection_info& info) override;
    http::string_response reject(http::read_failure why, unsigned version) override;
    // Refuses a request whose route or client key is wrong before its body is read.
    std::optional<http::string_response> screen(const http::request_parser& head,
                                                const http::connection_info& info) override;

private:
    struct request_context;
    struct attempt_result;
    // What admit() learns about a request it lets through.
    struct admission {
        api_route route;
        std::optional<std::size_t> key_index;  // the client key's, into config::auth::keys
        const routing::model_entry* model = nullptr;
        operation op{};
        body_facts body;
        std::uint64_t estimate = 0;
        request_headers headers;
    };

    const snapshot& refresh();
    std::string next_request_id();
    request_record new_record(const http::request_parser& head, const http::connection_info& info);
    std::optional<http::string_response> admit_head(const http::request_parser& head, request_record& rec,
                                                    admission& out);
    std::optional<http::string_response> admit(http::request& req, request_record& rec, admission& out);
    void finish(const snapshot& snap, request_record& rec);
    awaitable<bool> reply(request_record& rec, http::any_stream& client, http::string_response res, bool keep_alive);
    awaitable<bool> forward(request_context& ctx);
    awaitable<attempt_result> attempt(request_context& ctx, const routing::target& target);
    quota::remaining_estimate pool_headroom(request_context& ctx);
    using upstream_parser = http::answer_parser;
    awaitable<attempt_result> relay(request_context& ctx, const routing::target& target,
                                    http::connection_ptr conn, upstream_parser& parser, bool event_stream);
    awaitable<bool> answer_exhausted(request_context& ctx);

    net::io_context& io_;
    snapshot_holder& snapshots_;
    core::clock& clock_;
    std::shared_ptr<const snapshot> snapshot_;
    std::uint64_t snapshot_version_ = 0;
    // Per region of snapshot_. Requests hold the set they started with, so a reload can replace
    // it while they finish on the old one.
    using pool_set = std::vector<std::unique_ptr<http::upstream_pool>>;
    std::shared_ptr<pool_set> pools_;
    core::prng random_;
    std::shared_ptr<spdlog::logger> access_log_;
    http::hangup_watch hangups_;
    std::string id_prefix_;
    std::uint64_t next_id_ = 0;
};

}  // namespace spillway::proxy
