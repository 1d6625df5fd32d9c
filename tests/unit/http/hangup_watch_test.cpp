// Unit tests for http/hangup_watch: on real loopback socket pairs, a client that closed or reset
// is noticed and its upstream read cancelled; a client still there (idle or with a pipelined
// request unread) is left alone; exchanges leave the watch when destroyed; the timer stops when
// there is nothing to watch. One io_context, run in the test thread.
//
// Negative assertions ("left alone") need no time window: each such exchange is watched next to a
// witness whose client did close, registered at the same tick, so the look that finds the witness
// gone has also looked at the exchange under test.
#include "http/hangup_watch.hpp"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace spillway::http {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr std::chrono::milliseconds period{10};
constexpr std::chrono::seconds bound{10};  // generous: a loaded 2-CPU runner must never hit it

// Both ends of one loopback TCP connection: `ours` is spillway's end, `theirs` the peer's.
struct socket_pair {
    tcp::socket ours;
    tcp::socket theirs;
};

// The connection's accepting end is `ours` when `we_accept` (a client connection), else the
// connecting end (an upstream connection).
socket_pair connected_pair(net::io_context& io, bool we_accept) {
    tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    tcp::socket connecting(io);
    connecting.connect(acceptor.local_endpoint());
    tcp::socket accepted = acceptor.accept();
    if (we_accept) return {std::move(accepted), std::move(connecting)};
    return {std::move(connecting), std::move(accepted)};
}

// RST instead of FIN: SO_LINGER with a zero timeout, then close.
void abort_socket(tcp::socket& s) {
    s.set_option(net::socket_base::linger(true, 0));
    s.close();
}

// One proxied exchange as the proxy sees it: the client's connection, the upstream's, and a read
// pending on the upstream socket, as while the proxy waits for the answer's head.
struct exchange_fixture {
    explicit exchange_fixture(net::io_context& io)
        : client(connected_pair(io, true)), upstream(connected_pair(io, false)) {
        upstream.ours.async_read_some(net::buffer(&byte, 1), [this](error_code ec, std::size_t) {
            upstream_read_ended = ec;
            ended_at = steady::now();
        });
    }
    exchange_fixture(const exchange_fixture&) = delete;
    exchange_fixture& operator=(const exchange_fixture&) = delete;

    socket_pair client;
    socket_pair upstream;
    char byte = 0;
    std::optional<error_code> upstream_read_ended;
    steady::time_point ended_at;
};

class HangupWatch : public ::testing::Test {
protected:
    // Runs the io_context until `done` holds, it runs out of work, or `bound` passes.
    bool run_until(const std::function<bool()>& done) {
        const auto until = steady::now() + bound;
        while (!done() && steady::now() < until) {
            io_.run_one_for(100ms);
            if (io_.stopped()) break;
        }
        return done();
    }

    net::io_context io_;
};

TEST_F(HangupWatch, ClientThatClosedIsGoneAndItsUpstreamReadIsCancelled) {
    hangup_watch watch(io_, period);
    exchange_fixture x(io_);
    hangup_watch::exchange watched(watch, x.client.ours, x.upstream.ours);
    EXPECT_EQ(watch.watched(), 1u);
    x.client.theirs.close();  // orderly: the proxy's end will read end of stream

    ASSERT_TRUE(run_until([&] { return x.upstream_read_ended.has_value(); }));
    EXPECT_EQ(*x.upstream_read_ended, net::error::operation_aborted);
    EXPECT_TRUE(watched.client_gone());
    EXPECT_EQ(watch.watched(), 0u) << "a client found gone leaves the watch";
    EXPECT_TRUE(x.upstream.ours.is_open()) << "cancelled, not closed: closing is the owner's business";
}

TEST_F(HangupWatch, ClientThatResetIsGone) {
    hangup_watch watch(io_, period);
    exchange_fixture x(io_);
    hangup_watch::exchange watched(watch, x.client.ours, x.upstream.ours);
    abort_socket(x.client.theirs);

    ASSERT_TRUE(run_until([&] { return x.upstream_read_ended.has_value(); }));
    EXPECT_EQ(*x.upstream_read_ended, net::error::operation_aborted);
    EXPECT_TRUE(watched.client_gone());
}

// The proxy's own end closed, e.g. by the client connection's deadline: nothing left to answer.
TEST_F(HangupWatch, ClientSocketClosedOnOurSideIsGone) {
    hangup_watch watch(io_, period);
    exchange_fixture x(io_);
    hangup_watch::exchange watched(watch, x.client.ours, x.upstream.ours);
    x.client.ours.close();

    ASSERT_TRUE(run_until([&] { return x.upstream_read_ended.has_value(); }));
    EXPECT_EQ(*x.upstream_read_ended, net::error::operation_aborted);
    EXPECT_TRUE(watched.client_gone());
}

TEST_F(HangupWatch, ClientStillConnectedIsLeftAlone) {
    hangup_watch watch(io_, period);
    exchange_fixture present(io_), witness(io_);
    hangup_watch::exchange watched_present(watch, present.client.ours, present.upstream.ours);
    hangup_watch::exchange watched_witness(watch, witness.client.ours, witness.upstream.ours);
    witness.client.theirs.close();

    ASSERT_TRUE(run_until([&] { return witness.upstream_read_ended.has_value(); }));
    EXPECT_TRUE(watched_witness.client_gone());
    EXPECT_FALSE(watched_present.client_gone());
    EXPECT_FALSE(present.upstream_read_ended.has_value()) << "the upstream read of a present client goes on";
    EXPECT_EQ(watch.watched(), 1u);
}

// Unread bytes (a pipelined request, or a TLS record) cannot be told from a client that is still
// there: the peek must not consume them, and the exchange stays.
TEST_F(HangupWatch, PipelinedBytesKeepTheExchangeAndAreNotConsumed) {
    hangup_watch watch(io_, period);
    exchange_fixture pipelining(io_), witness(io_);
    hangup_watch::exchange watched_pipelining(watch, pipelining.client.ours, pipelining.upstream.ours);
    hangup_watch::exchange watched_witness(watch, witness.client.ours, witness.upstream.ours);
    const std::string next_request = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    net::write(pipelining.client.theirs, net::buffer(next_request));
    witness.client.theirs.close();

    ASSERT_TRUE(run_until([&] { return witness.upstream_read_ended.has_value(); }));
    EXPECT_FALSE(watched_pipelining.client_gone());
    EXPECT_FALSE(pipelining.upstream_read_ended.has_value());

    std::string unread(next_request.size(), '\0');
    net::read(pipelining.client.ours, net::buffer(unread));
    EXPECT_EQ(unread, next_request) << "the peek left the pipelined request for the session to read";
}

// A request answered within one period costs nothing: an exchange is looked at only by a tick
// after the first one that saw it, so never sooner than two periods after it was registered
// (timers never fire early). The period is longer here so that a look at the first tick would
// show, even on a slow machine.
TEST_F(HangupWatch, ExchangeIsLookedAtOnlyAfterAWholePeriod) {
    constexpr std::chrono::milliseconds slow_period{50};
    hangup_watch watch(io_, slow_period);
    exchange_fixture x(io_);
    x.client.theirs.close();
    const auto registered = steady::now();
    hangup_watch::exchange watched(watch, x.client.ours, x.upstream.ours);

    ASSERT_TRUE(run_until([&] { return x.upstream_read_ended.has_value(); }));
    EXPECT_TRUE(watched.client_gone());
    EXPECT_GE(x.ended_at - registered, 2 * slow_period);
}

TEST_F(HangupWatch, DestroyedExchangeLeavesTheWatch) {
    hangup_watch watch(io_, period);
    exchange_fixture a(io_), b(io_);
    auto watched_a = std::make_unique<hangup_watch::exchange>(watch, a.client.ours, a.upstream.ours);
    {
        hangup_watch::exchange watched_b(watch, b.client.ours, b.upstream.ours);
        EXPECT_EQ(watch.watched(), 2u);
    }
    EXPECT_EQ(watch.watched(), 1u);
    // The destroyed exchange's client leaving later is none of the watch's business any more.
    b.client.theirs.close();
    a.client.theirs.close();

    ASSERT_TRUE(run_until([&] { return a.upstream_read_ended.has_value(); }));
    EXPECT_TRUE(watched_a->client_gone());
    EXPECT_FALSE(b.upstream_read_ended.has_value()) << "an exchange no longer watched is never cancelled";
    watched_a.reset();
    EXPECT_EQ(watch.watched(), 0u);
}

// With nothing to watch the timer stops (the io_context runs out of work on its own), and the
// next exchange starts it again.
TEST_F(HangupWatch, TimerStopsWhenIdleAndRestartsForTheNextExchange) {
    hangup_watch watch(io_, period);
    {
        exchange_fixture answered(io_);
        { hangup_watch::exchange watched(watch, answered.client.ours, answered.upstream.ours); }
        answered.upstream.ours.cancel();
        ASSERT_TRUE(run_until([&] { return answered.upstream_read_ended.has_value(); }));
    }
    EXPECT_EQ(watch.watched(), 0u);
    io_.run_for(bound);
    EXPECT_TRUE(io_.stopped()) << "the watch kept its timer armed with nothing to watch";

    io_.restart();
    exchange_fixture next(io_);
    hangup_watch::exchange watched(watch, next.client.ours, next.upstream.ours);
    next.client.theirs.close();
    ASSERT_TRUE(run_until([&] { return next.upstream_read_ended.has_value(); }));
    EXPECT_TRUE(watched.client_gone());
    io_.run_for(bound);
    EXPECT_TRUE(io_.stopped()) << "stops again once the last exchange is done";
}

// Exchanges are destroyed by the coroutines that own them, which may end after the watch (at
// shutdown): the watch lets go of them, and its pending timer wait does not call back into it.
TEST_F(HangupWatch, ExchangesMayOutliveTheWatch) {
    exchange_fixture x(io_);
    auto watch = std::make_unique<hangup_watch>(io_, period);
    auto watched = std::make_unique<hangup_watch::exchange>(*watch, x.client.ours, x.upstream.ours);
    x.client.theirs.close();
    watch.reset();
    io_.run_for(5 * period);
    EXPECT_FALSE(watched->client_gone());
    EXPECT_FALSE(x.upstream_read_ended.has_value());
    watched.reset();
}

}  // namespace
}  // namespace spillway::http
