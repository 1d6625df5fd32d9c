#include "http/upstream_pool.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/ssl.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

namespace spillway::http {

using namespace boost::asio::experimental::awaitable_operators;

error_code enable_keepalive(tcp::socket& socket, const tcp_keepalive& settings) {
    using idle_option = net::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>;
    using interval_option = net::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
    using probes_option = net::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
    error_code ec;
    socket.set_option(net::socket_base::keep_alive(true), ec);
    if (!ec) socket.set_option(idle_option(static_cast<int>(settings.idle.count())), ec);
    if (!ec) socket.set_option(interval_option(static_cast<int>(settings.interval.count())), ec);
    if (!ec) socket.set_option(probes_option(settings.probes), ec);
    return ec;
}

upstream_pool::upstream_pool(net::io_context& io, upstream_target target)
    : io_(io), target_(std::move(target)) {}

connection_ptr upstream_pool::take_idle() {
    if (idle_.empty()) return nullptr;
    connection_ptr conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
}

void upstream_pool::release(connection_ptr conn) {
    if (idle_.size() >= target_.max_idle) return;  // dropping it closes it
    conn->reused = true;
    conn->stream.tcp_layer().expires_never();
    idle_.push_back(std::move(conn));
}

awaitable<std::tuple<error_code, connection_ptr>> upstream_pool::connect(std::chrono::nanoseconds budget) {
    using std::chrono::milliseconds;
    auto limit = std::min<std::chrono::nanoseconds>(target_.connect_timeout, budget);
    if (limit <= std::chrono::nanoseconds::zero())
        co_return std::tuple{error_code{beast::error::timeout}, connection_ptr{}};

    if (resolved_.empty()) {
        // Bounded like the connect: a slow DNS server must not hold requests past their budget.
        tcp::resolver resolver(io_);
        net::steady_timer timer(io_, limit);
        auto outcome = co_await (resolver.async_resolve(target_.host, std::to_string(target_.port), use_nothrow) ||
                                 timer.async_wait(use_nothrow));
        if (outcome.index() == 1) co_return std::tuple{error_code{beast::error::timeout}, connection_ptr{}};
        auto [ec, results] = std::get<0>(std::move(outcome));
        if (ec) co_return std::tuple{ec, connection_ptr{}};
        resolved_ = std::move(results);
    }

    // The connection is built in place (its socket registers with the deadline watchdog), then
    // connected and, for TLS, handshaken within `limit`.
    auto conn = std::make_unique<upstream_connection>(tcp::socket(io_), target_.tls ? target_.tls_context : nullptr);
    deadline_socket& tcp_layer = conn->stream.tcp_layer();
    tcp_layer.expires_after(limit);
    auto [ec, ep] = co_await net::async_connect(tcp_layer.socket(), resolved_, use_nothrow);
    if (ec) {
        resolved_ = {};  // re-resolve next time: the address may have moved
        co_return std::tuple{tcp_layer.explain(ec), connection_ptr{}};
    }
    tcp_layer.socket().set_option(tcp::no_delay(true), ec);
    enable_keepalive(tcp_layer.socket());  // best effort: the connection works without it
    ++opened_;
    if (auto* tls = conn->stream.tls()) {
        // SNI, and the certificate must name the host we meant to reach.
        if (!SSL_set_tlsext_host_name(tls->native_handle(), target_.host.c_str()))
            co_return std::tuple{error_code{static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()},
                                 connection_ptr{}};
        if (target_.verify_host) tls->set_verify_callback(ssl::host_name_verification(target_.host));
        auto [hec] = co_await tls->async_handshake(ssl::stream_base::client, use_nothrow);
        if (hec) co_return std::tuple{tcp_layer.explain(hec), connection_ptr{}};
    }
    tcp_layer.expires_never();
    co_return std::tuple{error_code{}, std::move(conn)};
}

}  // namespace spillway::http
