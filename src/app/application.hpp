// The application object: owns the object graph (no globals) — config snapshots, one worker
// per core (io_context + listener + proxy handler, all on that worker's thread), the admin
// listener, and signal handling (SIGTERM/SIGINT drain, SIGHUP reload).
#pragma once

#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/net.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "proxy/proxy.hpp"
#include "proxy/snapshot.hpp"

#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace spillway::app {

class admin_handler;

class application {
public:
    // config_path: re-read on reload; empty when the config was built in memory (demo).
    application(std::shared_ptr<const config::root> cfg, std::string config_path);
    ~application();

    // Binds every listener (throws on failure, e.g. port in use) and starts the threads.
    void start();
    // Blocks until SIGINT/SIGTERM (or request_stop), then drains.
    void wait();
    void request_stop();
    // Drain: stop accepting, let in-flight requests finish up to `grace`, then stop.
    void shutdown(std::chrono::milliseconds grace);
    // Re-reads the config file; returns the problems (empty on success).
    std::vector<std::string> reload();

    std::uint16_t data_port() const { return data_port_; }
    std::uint16_t admin_port() const { return admin_port_; }
    const proxy::snapshot_holder& snapshots() const { return snapshots_; }

    static constexpr std::chrono::milliseconds drain_grace{30000};

private:
    struct worker;
    void on_signal(const error_code& ec, int sig);

    std::string config_path_;
    core::steady_clock clock_;
    metrics::registry metrics_;
    proxy::snapshot_holder snapshots_;
    http::connection_gate gate_;
    http::connection_gate admin_gate_;
    std::unique_ptr<net::ssl::context> server_tls_;
    std::vector<std::unique_ptr<worker>> workers_;

    net::io_context admin_io_{1};
    std::unique_ptr<admin_handler> admin_handler_;
    std::unique_ptr<http::listener> admin_listener_;
    net::signal_set signals_{admin_io_};
    std::thread admin_thread_;

    std::uint16_t data_port_ = 0;
    std::uint16_t admin_port_ = 0;
    std::atomic<bool> stopped_{false};
    std::mutex stop_mutex_;
    std::condition_variable stop_cv_;
    bool stop_requested_ = false;
    std::atomic<bool> force_stop_{false};
    net::io_context workers_probe_io_;  // only for the start-up port probe
};

}  // namespace spillway::app
