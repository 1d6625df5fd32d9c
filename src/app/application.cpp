#include "app/application.hpp"

#include "app/admin.hpp"
#include "config/loader.hpp"
#include "core/log.hpp"
#include "http/tls.hpp"

#include <spdlog/spdlog.h>

#include <csignal>

namespace spillway::app {

using namespace std::chrono_literals;

struct application::worker {
    // One thread runs it, and its sockets and timers are only ever used on that thread (other
    // threads post to it), so Asio may skip the per-socket lock it takes around every read and
    // write; posting and timers stay locked.
    net::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::unique_ptr<proxy::handler> handler;
    std::unique_ptr<http::listener> listener;
    std::thread thread;
};

namespace {

http::server_limits limits_of(const config::root& cfg) {
    http::server_limits l;
    l.max_body_bytes = cfg.limits.max_body_bytes;
    l.max_header_bytes = cfg.limits.max_header_bytes;
    l.header_timeout = cfg.limits.header_timeout;
    l.idle_timeout = cfg.limits.idle_timeout;
    l.max_connections = cfg.limits.max_connections;
    return l;
}

tcp::endpoint endpoint_of(const config::listener& l, std::uint16_t port) {
    return {net::ip::make_address(l.address), port};
}

void run_io(net::io_context& io, const char* what) {
    for (;;) {
        try {
            io.run();
            return;
        } catch (const std::exception& e) {
            spdlog::error("{} thread: unhandled exception: {}", what, e.what());
        }
    }
}

}  // namespace

application::application(std::shared_ptr<const config::root> cfg, std::string config_path)
    : config_path_(std::move(config_path)), snapshots_(std::move(cfg), clock_, metrics_) {}

application::~application() {
    if (!stopped_) shutdown(0ms);
}

void application::start() {
    auto snap = snapshots_.current();
    const config::root& cfg = *snap->config;
    if (cfg.listen.tls) server_tls_ = http::make_server_tls(cfg.listen.tls->cert_file, cfg.listen.tls->key_file);

    unsigned n = cfg.workers ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
    std::shared_ptr<spdlog::logger> access_log = cfg.log.access_log ? core::make_access_logger() : nullptr;
    auto limits = limits_of(cfg);
    std::uint16_t port = cfg.listen.port;
    if (port != 0) {
        // SO_REUSEPORT would let this process silently share a port another spillway holds:
        // try it alone first, so "address in use" is an error as users expect.
        tcp::acceptor probe(workers_probe_io_);
        probe.open(endpoint_of(cfg.listen, port).protocol());
        probe.set_option(net::socket_base::reuse_address(true));
        probe.bind(endpoint_of(cfg.listen, port));
    }
    for (unsigned i = 0; i < n; ++i) {
        auto w = std::make_unique<worker>();
        w->handler = std::make_unique<proxy::handler>(w->io, snapshots_, clock_, access_log, i);
        // Every worker accepts on the same port (SO_REUSEPORT); with port 0 the first picks it.
        w->listener = std::make_unique<http::listener>(w->io, endpoint_of(cfg.listen, port), true, limits,
                                                       server_tls_.get(), *w->handler, gate_, clock_);
        port = w->listener->local_endpoint().port();
        workers_.push_back(std::move(w));
    }
    data_port_ = port;

    admin_handler_ = std::make_unique<admin_handler>(snapshots_, metrics_, gate_, clock_, [this] { return reload(); });
    auto admin_limits = limits;
    admin_limits.max_body_bytes = 1 << 20;
    admin_listener_ = std::make_unique<http::listener>(admin_io_, endpoint_of(cfg.admin, cfg.admin.port), false,
                                                       admin_limits, nullptr, *admin_handler_, admin_gate_, clock_);
    admin_port_ = admin_listener_->local_endpoint().port();

    for (auto& w : workers_) {
        w->listener->start();
        w->thread = std::thread([&io = w->io] { run_io(io, "worker"); });
    }
    admin_listener_->start();

    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.add(SIGHUP);
    signals_.async_wait([this](const error_code& ec, int sig) { on_signal(ec, sig); });
    admin_thread_ = std::thread([this] { run_io(admin_io_, "admin"); });
    spdlog::info("listening: data {}:{} ({} worker{}{}), admin {}:{}", cfg.listen.address, data_port_, n,
                 n == 1 ? "" : "s", server_tls_ ? ", TLS" : "", cfg.admin.address, admin_port_);
}

void application::on_signal(const error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
        reload();
        signals_.async_wait([this](const error_code& e, int s) { on_signal(e, s); });
        return;
    }
    std::lock_guard lock(stop_mutex_);
    if (stop_requested_) {
        spdlog::warn("signal {} again: stopping without waiting for in-flight requests", sig);
        force_stop_ = true;
    } else {
        spdlog::info("signal {}: draining (send it again to stop at once)", sig);
    }
    stop_requested_ = true;
    stop_cv_.notify_all();
    signals_.async_wait([this](const error_code& e, int s) { on_signal(e, s); });
}

void application::wait() {
    {
        std::unique_lock lock(stop_mutex_);
        stop_cv_.wait(lock, [this] { return stop_requested_; });
    }
    shutdown(drain_grace);
}

void application::request_stop() {
    std::lock_guard lock(stop_mutex_);
    stop_requested_ = true;
    stop_cv_.notify_all();
}

void application::shutdown(std::chrono::milliseconds grace) {
    if (stopped_.exchange(true)) return;
    gate_.draining = true;
    // Acceptors are closed on their own threads: Asio objects are not shared across threads.
    for (auto& w : workers_) net::post(w->io, [l = w->listener.get()] { l->stop(); });
    auto until = std::chrono::steady_clock::now() + grace;
    while (gate_.in_flight.load() > 0 && std::chrono::steady_clock::now() < until && !force_stop_.load())
        std::this_thread::sleep_for(10ms);
    if (gate_.in_flight.load() > 0) spdlog::warn("drain grace period over: {} request(s) cut off", gate_.in_flight.load());
    for (auto& w : workers_) w->io.stop();
    admin_io_.stop();
    for (auto& w : workers_)
        if (w->thread.joinable()) w->thread.join();
    if (admin_thread_.joinable()) admin_thread_.join();
    spdlog::info("stopped");
}

std::vector<std::string> application::reload() {
    if (config_path_.empty()) return {"this instance was not started from a config file; nothing to reload"};
    auto loaded = config::load_file(config_path_, config::process_env());
    std::vector<std::string> problems;
    for (const auto& p : loaded.problems) problems.push_back(p.to_string());
    if (!problems.empty()) {
        for (const auto& p : problems) spdlog::error("reload rejected: {}", p);
        metrics_.reloads_error().Increment();
        return problems;
    }
    try {
        snapshots_.publish(loaded.config);
    } catch (const std::exception& e) {
        spdlog::error("reload rejected: {}", e.what());
        metrics_.reloads_error().Increment();
        return {e.what()};
    }
    metrics_.reloads_ok().Increment();
    spdlog::info("config reloaded from {}: listen, admin, workers and log settings apply at the next restart",
                 config_path_);
    return {};
}

}  // namespace spillway::app
