// Unit tests for the upstream pool's connections, on a real loopback listener: a new connection
// is pooled for reuse and carries TCP keep-alive, so a long silent generation keeps its
// NAT mapping and a vanished peer is found.
#include "http/upstream_pool.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>

namespace spillway::http {
namespace {

using namespace std::chrono_literals;

int int_option(tcp::socket& s, int level, int name) {
    int value = -1;
    socklen_t size = sizeof value;
    if (::getsockopt(s.native_handle(), level, name, &value, &size) != 0) return -1;
    return value;
}

struct keepalive_seen {
    int enabled, idle, interval, probes;
};

keepalive_seen keepalive_of(tcp::socket& s) {
    return {int_option(s, SOL_SOCKET, SO_KEEPALIVE), int_option(s, IPPROTO_TCP, TCP_KEEPIDLE),
            int_option(s, IPPROTO_TCP, TCP_KEEPINTVL), int_option(s, IPPROTO_TCP, TCP_KEEPCNT)};
}

TEST(UpstreamPool, ANewConnectionHasKeepAliveAndIsReusedOnceReleased) {
    net::io_context io;
    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    upstream_target target;
    target.host = "127.0.0.1";
    target.port = acceptor.local_endpoint().port();
    upstream_pool pool(io, target);

    std::optional<std::tuple<error_code, connection_ptr>> connected;
    net::co_spawn(io, [&]() -> awaitable<void> { connected = co_await pool.connect(2s); }, net::detached);
    tcp::socket peer(io);
    acceptor.async_accept(peer, [](error_code) {});
    // Until connected: the deadline watchdog's timer keeps run() from returning by itself.
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!connected && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
    ASSERT_TRUE(connected);
    auto& [ec, conn] = *connected;
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(conn);
    EXPECT_EQ(pool.connections_opened(), 1u);

    keepalive_seen k = keepalive_of(conn->stream.tcp_layer().socket());
    EXPECT_EQ(k.enabled, 1);
    EXPECT_EQ(k.idle, 30);
    EXPECT_EQ(k.interval, 10);
    EXPECT_EQ(k.probes, 3);

    upstream_connection* raw = conn.get();
    pool.release(std::move(conn));
    EXPECT_EQ(pool.idle_count(), 1u);
    connection_ptr again = pool.take_idle();
    EXPECT_EQ(again.get(), raw);
    EXPECT_TRUE(again->reused);
    EXPECT_EQ(pool.take_idle(), nullptr);
}

TEST(UpstreamPool, EnableKeepaliveAppliesTheGivenSettings) {
    net::io_context io;
    tcp::socket s(io);
    s.open(tcp::v4());
    EXPECT_FALSE(enable_keepalive(s, {.idle = 5s, .interval = 2s, .probes = 4}));
    keepalive_seen k = keepalive_of(s);
    EXPECT_EQ(k.enabled, 1);
    EXPECT_EQ(k.idle, 5);
    EXPECT_EQ(k.interval, 2);
    EXPECT_EQ(k.probes, 4);
}

TEST(UpstreamPool, EnableKeepaliveReportsAClosedSocket) {
    net::io_context io;
    tcp::socket s(io);
    EXPECT_TRUE(enable_keepalive(s));
}

}  // namespace
}  // namespace spillway::http
