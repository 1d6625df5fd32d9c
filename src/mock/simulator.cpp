// The I/O half of spillway-mock: listeners, keep-alive HTTP/1.1 sessions that execute a region's
// plan (wait, answer, stream event by event, hang, reset) and the control plane.
//
// Threads: one io_context{1} per worker thread. Context 0 also owns every acceptor and serves the
// control port, so listeners are only ever opened/closed on that thread (control requests run there
// too). Accepted data connections are handed round-robin to the workers and never change thread.
#include "mock/simulator.hpp"

#include "core/net.hpp"
#include "mock/region.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <mutex>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace spillway::mock {

namespace {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

constexpr std::size_t header_limit = 64 * 1024;
constexpr std::size_t body_limit = 64 * 1024 * 1024;

// Completion handler for every co_spawn: a session must never take the process down silently.
struct log_escaped {
    const char* what;
    void operator()(std::exception_ptr e) const {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("spillway-mock: {} ended by an exception: {}", what, ex.what());
        } catch (...) {
            spdlog::error("spillway-mock: {} ended by an unknown exception", what);
        }
    }
};

// RST instead of FIN: what a crashed or reset upstream looks like to the proxy.
void abort_socket(tcp::socket& s) {
    error_code ec;
    s.set_option(net::socket_base::linger(true, 0), ec);
    s.close(ec);
}

// One region's port and the connections accepted on it.
struct listener {
    std::unique_ptr<region> state;
    net::ip::address address;
    std::uint16_t port = 0;                  // written once, before the threads start
    std::shared_ptr<tcp::acceptor> acceptor;  // context 0 only
    bool listening = false;                   // context 0 only

    struct connection {
        net::any_io_executor executor;
        std::weak_ptr<tcp::socket> socket;
    };
    std::mutex connections_mu;
    std::unordered_map<std::uint64_t, connection> connections;
    std::uint64_t next_connection = 0;

    // Closes every open connection on its own thread (sockets are not thread-safe).
    void abort_connections() {
        std::lock_guard lock{connections_mu};
        for (auto& [id, c] : connections)
            net::post(c.executor, [w = c.socket] {
                if (auto s = w.lock()) abort_socket(*s);
            });
    }
};

// Keeps a session findable for `down` while it lives (it sits in the coroutine frame).
class connection_registration {
public:
    connection_registration(listener& l, const std::shared_ptr<tcp::socket>& s) : l_(l) {
        std::lock_guard lock{l_.connections_mu};
        id_ = l_.next_connection++;
        l_.connections.emplace(id_, listener::connection{s->get_executor(), s});
    }
    ~connection_registration() {
        std::lock_guard lock{l_.connections_mu};
        l_.connections.erase(id_);
    }
    connection_registration(const connection_registration&) = delete;
    connection_registration& operator=(const connection_registration&) = delete;

private:
    listener& l_;
    std::uint64_t id_ = 0;
};

struct read_result {
    error_code ec;
    request req;
};

// Reads one request, answering `Expect: 100-continue` so curl does not stall a second on big bodies.
awaitable<read_result> read_request(tcp::socket* sock, beast::flat_buffer* buffer) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(body_limit);
    auto [ec, n] = co_await http::async_read_header(*sock, *buffer, parser, use_nothrow);
    if (ec) co_return read_result{ec, {}};
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await net::async_write(*sock, net::buffer(continue_line), use_nothrow);
        if (wec) co_return read_result{wec, {}};
    }
    if (!parser.is_done()) {
        auto [bec, bn] = co_await http::async_read(*sock, *buffer, parser, use_nothrow);
        if (bec) co_return read_result{bec, {}};
    }
    co_return read_result{{}, parser.release()};
}

response plain_json(http::status status, std::string body, bool keep_alive) {
    response res{status, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace

class simulator::impl {
public:
    impl(mock_config cfg, core::clock& clock) : cfg_(std::move(cfg)), clock_(clock) {}
    ~impl() { stop(); }

    void start();
    void stop();

    listener* find(std::string_view name) const {
        for (const auto& l : regions_)
            if (l->state->name() == name) return l.get();
        return nullptr;
    }

    mock_config cfg_;
    core::clock& clock_;
    std::vector<std::unique_ptr<net::io_context>> contexts_;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> guards_;
    std::vector<std::thread> threads_;
    std::vector<std::unique_ptr<listener>> regions_;
    std::shared_ptr<tcp::acceptor> control_;
    std::uint16_t control_port_ = 0;
    std::atomic<std::size_t> next_worker_{0};
    bool started_ = false;
    bool stopped_ = false;

    net::io_context& control_context() { return *contexts_.front(); }
    net::io_context& next_worker() {
        return *contexts_[next_worker_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
    }

    error_code open_listener(listener& l);
    void take_down(listener& l);
    response handle_control(const request& req);

    // Accepts into `l`'s region (or the control plane when l is null) until `acceptor` closes.
    static awaitable<void> accept_loop(impl* self, listener* l, std::shared_ptr<tcp::acceptor> acceptor);
    static awaitable<void> control_session(impl* self, tcp::socket peer);
};

namespace {
awaitable<void> data_session(listener* l, tcp::socket peer);
}  // namespace

awaitable<void> simulator::impl::accept_loop(impl* self, listener* l, std::shared_ptr<tcp::acceptor> acceptor) {
    for (;;) {
        net::io_context& worker = l ? self->next_worker() : self->control_context();
        auto [ec, peer] = co_await acceptor->async_accept(worker, use_nothrow);
        if (ec) {
            // Closed by `down` or stop(): this loop belongs to that acceptor and ends with it.
            if (ec == net::error::operation_aborted || !acceptor->is_open()) co_return;
            spdlog::warn("spillway-mock: accept failed: {}", ec.message());
            // Out of descriptors and similar: back off instead of spinning.
            net::steady_timer pause{acceptor->get_executor(), std::chrono::milliseconds{50}};
            co_await pause.async_wait(use_nothrow);
            continue;
        }
        if (l) {
            l->state->count_connection();
            net::co_spawn(worker, data_session(l, tcp::socket{std::move(peer)}), log_escaped{"data session"});
        } else {
            net::co_spawn(worker, control_session(self, tcp::socket{std::move(peer)}), log_escaped{"control session"});
        }
    }
}

namespace {

// Writes one SSE event as its own HTTP chunk in one gather write, so it leaves immediately.
awaitable<error_code> write_chunk(tcp::socket* sock, const std::string* data) {
    char size_line[24];
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data->size());
    std::array<net::const_buffer, 3> buffers{net::buffer(size_line, static_cast<std::size_t>(n)), net::buffer(*data),
                                             net::buffer("\r\n", 2)};
    auto [ec, written] = co_await net::async_write(*sock, buffers, use_nothrow);
    co_return ec;
}

// Sends nothing more: reads (and drops) until the client gives up or the region is taken down.
awaitable<void> hold_open(tcp::socket* sock) {
    std::array<char, 1024> sink;
    for (;;) {
        auto [ec, n] = co_await sock->async_read_some(net::buffer(sink), use_nothrow);
        if (ec) co_return;
    }
}

// An answer that stops partway: its head (with the full Content-Length) and `body_bytes` of its
// body, then nothing, with the connection left open.
awaitable<void> write_head_and_stall(tcp::socket* sock, response* res, std::size_t body_bytes) {
    http::response_serializer<http::string_body> serializer{*res};
    auto [hec, hn] = co_await http::async_write_header(*sock, serializer, use_nothrow);
    if (hec) co_return;
    std::string_view body = res->body();
    auto [bec, bn] = co_await net::async_write(*sock, net::buffer(body.substr(0, body_bytes)), use_nothrow);
    if (bec) co_return;
    co_await hold_open(sock);
}

awaitable<void> data_session(listener* l, tcp::socket peer) {
    auto sock = std::make_shared<tcp::socket>(std::move(peer));
    error_code ignored;
    sock->set_option(tcp::no_delay(true), ignored);  // one event per segment, no Nagle delay
    connection_registration registration{*l, sock};
    // Accepted just before the region went down: abort_connections() may have missed us.
    if (l->state->fault().mode == fault_mode::down) {
        abort_socket(*sock);
        co_return;
    }

    beast::flat_buffer buffer;
    net::steady_timer timer{sock->get_executor()};
    for (;;) {
        read_result in = co_await read_request(sock.get(), &buffer);
        if (in.ec) {
            if (in.ec == http::error::body_limit) {
                response res = plain_json(http::status::payload_too_large,
                                          azure_error_body("413", "Request body too large."), false);
                co_await http::async_write(*sock, res, use_nothrow);
            }
            break;
        }
        const bool keep_alive = in.req.keep_alive();
        action act = l->state->plan(in.req);

        if (act.what == action::kind::reset) {
            abort_socket(*sock);
            co_return;
        }
        if (act.what == action::kind::hang) {
            co_await hold_open(sock.get());
            co_return;
        }
        if (act.delay.count() > 0) {
            timer.expires_after(act.delay);
            co_await timer.async_wait(use_nothrow);
        }
        if (act.what == action::kind::respond) {
            act.response.keep_alive(keep_alive);
            act.response.prepare_payload();
            if (act.stall_after) {
                co_await write_head_and_stall(sock.get(), &act.response, *act.stall_after);
                co_return;
            }
            auto [ec, n] = co_await http::async_write(*sock, act.response, use_nothrow);
            if (ec) co_return;
            if (!keep_alive) break;
            continue;
        }

        // Streaming: chunked header, then each event flushed on its own.
        http::response<http::empty_body> head{std::move(act.response.base())};
        head.keep_alive(keep_alive);
        head.chunked(true);
        http::response_serializer<http::empty_body> serializer{head};
        auto [hec, hn] = co_await http::async_write_header(*sock, serializer, use_nothrow);
        if (hec) co_return;
        for (std::size_t i = 0; i < act.events.size(); ++i) {
            if (act.reset_after && i == *act.reset_after) {
                abort_socket(*sock);
                co_return;
            }
            if (act.stall_after && i == *act.stall_after) {
                co_await hold_open(sock.get());
                co_return;
            }
            if (act.events[i].paced && act.per_token.count() > 0) {
                timer.expires_after(act.per_token);
                co_await timer.async_wait(use_nothrow);
            }
            error_code wec = co_await write_chunk(sock.get(), &act.events[i].bytes);
            if (wec) co_return;
        }
        if (act.reset_after && *act.reset_after >= act.events.size()) {
            abort_socket(*sock);
            co_return;
        }
        if (act.stall_after && *act.stall_after >= act.events.size()) {
            co_await hold_open(sock.get());
            co_return;
        }
        static constexpr std::string_view last_chunk = "0\r\n\r\n";
        auto [lec, ln] = co_await net::async_write(*sock, net::buffer(last_chunk), use_nothrow);
        if (lec || !keep_alive) break;
    }
    sock->shutdown(tcp::socket::shutdown_send, ignored);
    sock->close(ignored);
}

}  // namespace

awaitable<void> simulator::impl::control_session(impl* self, tcp::socket peer) {
    beast::flat_buffer buffer;
    for (;;) {
        read_result in = co_await read_request(&peer, &buffer);
        if (in.ec) break;
        // Runs on context 0, the thread that owns the acceptors the control plane opens and closes.
        response res = self->handle_control(in.req);
        res.keep_alive(in.req.keep_alive());
        res.prepare_payload();
        auto [ec, n] = co_await http::async_write(peer, res, use_nothrow);
        if (ec || !in.req.keep_alive()) break;
    }
    error_code ignored;
    peer.shutdown(tcp::socket::shutdown_send, ignored);
    peer.close(ignored);
}

namespace {

std::string errors_json(const std::vector<std::string>& problems) {
    return nlohmann::json{{"errors", problems}}.dump();
}

}  // namespace

error_code simulator::impl::open_listener(listener& l) {
    auto acceptor = std::make_shared<tcp::acceptor>(control_context());
    tcp::endpoint endpoint{l.address, l.port};
    error_code ec;
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return ec;
    // `down` then up must come back on the same port, so the first bound port is kept.
    if (l.port == 0) l.port = acceptor->local_endpoint().port();
    l.acceptor = acceptor;
    l.listening = true;
    net::co_spawn(control_context(), accept_loop(this, &l, std::move(acceptor)), log_escaped{"accept loop"});
    return {};
}

void simulator::impl::take_down(listener& l) {
    if (l.acceptor) {
        error_code ignored;
        l.acceptor->close(ignored);  // new connections are refused from here on
        l.acceptor.reset();
    }
    l.listening = false;
    l.abort_connections();
}

response simulator::impl::handle_control(const request& req) {
    const bool keep = req.keep_alive();
    std::string_view target = req.target();
    target = target.substr(0, target.find('?'));
    if (target.size() > 1 && target.back() == '/') target.remove_suffix(1);
    const auto method = req.method();
    auto not_found = [&] { return plain_json(http::status::not_found, R"({"error":"not found"})", keep); };

    if (target == "/healthz" && method == http::verb::get) return plain_json(http::status::ok, R"({"ok":true})", keep);
    if (target == "/reset") {
        if (method != http::verb::post) return plain_json(http::status::method_not_allowed, R"({"error":"use POST"})", keep);
        std::vector<std::string> problems;
        for (auto& l : regions_) {
            l->state->reset();
            if (!l->listening)
                if (auto ec = open_listener(*l))
                    problems.push_back(l->state->name() + ": cannot listen again: " + ec.message());
        }
        if (!problems.empty()) return plain_json(http::status::internal_server_error, errors_json(problems), keep);
        return plain_json(http::status::ok, R"({"ok":true})", keep);
    }
    if (target == "/regions") {
        if (method != http::verb::get) return plain_json(http::status::method_not_allowed, R"({"error":"use GET"})", keep);
        std::string body = R"({"regions":[)";
        for (std::size_t i = 0; i < regions_.size(); ++i) {
            if (i) body += ',';
            body += regions_[i]->state->describe_json(regions_[i]->port, regions_[i]->listening);
        }
        body += "]}";
        return plain_json(http::status::ok, std::move(body), keep);
    }

    constexpr std::string_view prefix = "/regions/";
    if (!target.starts_with(prefix)) return not_found();
    std::string_view rest = target.substr(prefix.size());
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string_view sub = name.size() < rest.size() ? rest.substr(name.size() + 1) : std::string_view{};
    listener* l = find(name);
    if (!l) return plain_json(http::status::not_found, errors_json({"unknown region '" + std::string{name} + "'"}), keep);

    if (sub.empty() && method == http::verb::get)
        return plain_json(http::status::ok, l->state->describe_json(l->port, l->listening), keep);
    if (sub == "stats" && method == http::verb::get) return plain_json(http::status::ok, l->state->stats_json(), keep);
    if (sub == "fault" && method == http::verb::post) {
        fault_spec f;
        auto problems = parse_fault(req.body(), f);
        if (!problems.empty()) return plain_json(http::status::bad_request, errors_json(problems), keep);
        // Fault first, then the listener: a session accepted meanwhile checks the fault after registering.
        l->state->set_fault(f);
        if (f.mode == fault_mode::down) {
            take_down(*l);
        } else if (!l->listening) {
            if (auto ec = open_listener(*l))
                return plain_json(http::status::internal_server_error,
                                  errors_json({"cannot listen on port " + std::to_string(l->port) + ": " + ec.message()}),
                                  keep);
        }
        return plain_json(http::status::ok, l->state->describe_json(l->port, l->listening), keep);
    }
    if (sub == "latency" && method == http::verb::post) {
        latency_spec lat = l->state->latency();
        auto problems = parse_latency(req.body(), lat);
        if (!problems.empty()) return plain_json(http::status::bad_request, errors_json(problems), keep);
        l->state->set_latency(lat);
        return plain_json(http::status::ok, l->state->describe_json(l->port, l->listening), keep);
    }
    return not_found();
}

void simulator::impl::start() {
    if (started_) throw std::logic_error("simulator::start called twice");
    started_ = true;
    const unsigned threads = std::max(1u, cfg_.threads);
    for (unsigned i = 0; i < threads; ++i) {
        contexts_.push_back(std::make_unique<net::io_context>(1));
        guards_.push_back(net::make_work_guard(*contexts_.back()));
    }

    std::uint64_t seed = cfg_.seed != 0 ? cfg_.seed : std::random_device{}();
    for (std::size_t i = 0; i < cfg_.regions.size(); ++i) {
        const region_spec& spec = cfg_.regions[i];
        auto l = std::make_unique<listener>();
        l->state = std::make_unique<region>(spec, clock_, seed + i);
        l->address = net::ip::make_address(spec.address);
        l->port = spec.port;
        if (auto ec = open_listener(*l))
            throw std::system_error(ec, "region " + spec.name + ": cannot listen on " + spec.address + ":" +
                                            std::to_string(spec.port));
        regions_.push_back(std::move(l));
    }

    control_ = std::make_shared<tcp::acceptor>(control_context());
    tcp::endpoint endpoint{net::ip::make_address(cfg_.control_address), cfg_.control_port};
    error_code ec;
    control_->open(endpoint.protocol(), ec);
    if (!ec) control_->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) control_->bind(endpoint, ec);
    if (!ec) control_->listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        throw std::system_error(ec, "control: cannot listen on " + cfg_.control_address + ":" +
                                        std::to_string(cfg_.control_port));
    control_port_ = control_->local_endpoint().port();
    net::co_spawn(control_context(), accept_loop(this, nullptr, control_), log_escaped{"control accept loop"});

    for (auto& ctx : contexts_) {
        threads_.emplace_back([c = ctx.get()] {
            try {
                c->run();
            } catch (const std::exception& e) {
                spdlog::error("spillway-mock: worker thread ended by an exception: {}", e.what());
            }
        });
    }
}

void simulator::impl::stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    guards_.clear();
    for (auto& ctx : contexts_) ctx->stop();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
    for (auto& l : regions_) {
        l->acceptor.reset();
        l->listening = false;
    }
    control_.reset();
    // Destroying the contexts destroys the suspended sessions; they unregister from their
    // listener, which is why regions_ outlives contexts_.
    contexts_.clear();
}

simulator::simulator(mock_config cfg, core::clock& clock) : impl_(std::make_unique<impl>(std::move(cfg), clock)) {}

simulator::~simulator() = default;

void simulator::start() { impl_->start(); }

void simulator::stop() { impl_->stop(); }

std::uint16_t simulator::region_port(std::string_view region) const {
    if (listener* l = impl_->find(region)) return l->port;
    throw std::out_of_range("spillway-mock: unknown region " + std::string{region});
}

std::uint16_t simulator::control_port() const { return impl_->control_port_; }

const mock_config& simulator::config() const noexcept { return impl_->cfg_; }

}  // namespace spillway::mock
