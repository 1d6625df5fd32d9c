// Unit tests for http/deadline_socket: a deadline closes the socket and the aborted operation
// reads as a timeout; moving a deadline later, or dropping it, keeps the connection; the
// watchdog keeps exactly the sockets that have a deadline, and pulls its timer in for an
// earlier one. Real loopback sockets on one io_context run by the test thread.
//
// The watchdog reads steady_clock itself, so these tests measure real time: a lower bound
// follows from the code (a deadline never fires early), an upper bound is generous enough for a
// loaded 2-CPU machine.
#include "http/deadline_socket.hpp"
#include "http/read_buffer.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/ioctl.h>

#include <array>
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::http {
namespace {

using namespace std::chrono_literals;
using clock_type = deadline_socket::clock_type;

// Well past any deadline these tests set, yet short enough to fail fast when one never fires.
constexpr auto late = 1s;

// A connected pair on 127.0.0.1: `client` is the peer, `server` becomes the socket under test.
struct loopback {
    tcp::socket client;
    tcp::socket server;
};

loopback connect_loopback(net::io_context& io) {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    tcp::socket client(io);
    client.connect(acceptor.local_endpoint());  // the kernel completes it into the backlog
    tcp::socket server = acceptor.accept();
    return {std::move(client), std::move(server)};
}

std::size_t armed_count(net::io_context& io) { return net::use_service<deadline_watchdog>(io).armed_count(); }

// Runs coroutines on `io` until all have finished. The watchdog's timer may still be waiting
// for a deadline that nobody has any more, which keeps run() from returning on its own, so the
// context is stopped when the last coroutine ends.
class runner {
public:
    explicit runner(net::io_context& io) : io_(io) {}

    void spawn(awaitable<void> task) {
        ++pending_;
        net::co_spawn(io_, std::move(task), [this](std::exception_ptr e) {
            if (e && !error_) error_ = e;
            if (--pending_ == 0) io_.stop();
        });
    }

    // False if some coroutine was still running after `limit`.
    bool run(clock_type::duration limit = 10s) {
        io_.restart();
        io_.run_for(limit);
        if (error_) std::rethrow_exception(error_);
        return pending_ == 0;
    }

private:
    net::io_context& io_;
    int pending_ = 0;
    std::exception_ptr error_;
};

struct read_result {
    bool done = false;
    error_code ec;
    std::string data;
    clock_type::time_point at;  // when the read completed
};

awaitable<void> read_once(deadline_socket& s, read_result& out) {
    std::array<char, 64> buf;
    auto [ec, n] = co_await s.async_read_some(net::buffer(buf), use_nothrow);
    out = {true, ec, std::string(buf.data(), n), clock_type::now()};
}

awaitable<void> pause(std::chrono::milliseconds d) {
    net::steady_timer timer(co_await net::this_coro::executor, d);
    co_await timer.async_wait(use_nothrow);
}

awaitable<void> write_after(tcp::socket& s, std::chrono::milliseconds delay, std::string data) {
    co_await pause(delay);
    co_await net::async_write(s, net::buffer(data), use_nothrow);
}

TEST(DeadlineSocket, IdleReadEndsAsTimeoutAtTheDeadline) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    const auto armed_at = clock_type::now();
    s.expires_after(30ms);
    read_result r;
    runner run(io);
    run.spawn(read_once(s, r));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(r.done);
    EXPECT_EQ(r.ec, net::error::operation_aborted);
    EXPECT_EQ(s.explain(r.ec), beast::error::timeout);
    EXPECT_TRUE(s.timed_out());
    EXPECT_GE(r.at - armed_at, 30ms);  // a deadline never fires early
    EXPECT_LT(r.at - armed_at, late);
    EXPECT_FALSE(s.socket().is_open());  // closed, as tcp_stream does
    EXPECT_EQ(armed_count(io), 0u);      // a fired deadline leaves the watchdog
}

awaitable<void> read_then_read_again(deadline_socket& s, read_result& first, read_result& second) {
    co_await read_once(s, first);
    s.expires_never();
    co_await read_once(s, second);  // still pending when the old deadline passes
}

TEST(DeadlineSocket, DataBeforeTheDeadlineIsReadAndExpiresNeverKeepsTheSocket) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    net::write(client, net::buffer(std::string("ping")));
    const auto armed_at = clock_type::now();
    s.expires_after(30ms);
    read_result first, second;
    runner run(io);
    run.spawn(read_then_read_again(s, first, second));
    // Written well after the dropped deadline, and after the watchdog's tick for it.
    run.spawn(write_after(client, 100ms, "pong"));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(first.done);
    EXPECT_FALSE(first.ec);
    EXPECT_EQ(first.data, "ping");
    ASSERT_TRUE(second.done);
    EXPECT_FALSE(second.ec) << second.ec.message();
    EXPECT_EQ(second.data, "pong");
    EXPECT_GE(second.at - armed_at, 100ms);
    EXPECT_FALSE(s.timed_out());
    EXPECT_TRUE(s.socket().is_open());
}

awaitable<void> read_then_idle(deadline_socket& s, read_result& first, read_result& second) {
    co_await read_once(s, first);
    co_await read_once(s, second);
}

TEST(DeadlineSocket, OneDeadlineCoversEveryOperationUntilItIsMoved) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    net::write(client, net::buffer(std::string("ping")));
    const auto armed_at = clock_type::now();
    s.expires_after(50ms);
    read_result first, second;
    runner run(io);
    run.spawn(read_then_idle(s, first, second));
    ASSERT_TRUE(run.run());

    // A successful read does not reset the deadline (unlike tcp_stream's per-operation timer).
    ASSERT_TRUE(first.done);
    EXPECT_FALSE(first.ec);
    ASSERT_TRUE(second.done);
    EXPECT_EQ(s.explain(second.ec), beast::error::timeout);
    EXPECT_GE(second.at - armed_at, 50ms);
    EXPECT_LT(second.at - armed_at, late);
}

// Pushes the deadline `step` ahead every 10 ms until `hold` has passed, then writes.
awaitable<void> keep_alive_then_write(deadline_socket& s, tcp::socket& client, std::chrono::milliseconds step,
                                      std::chrono::milliseconds hold, int& pushes) {
    const auto start = clock_type::now();
    while (clock_type::now() - start < hold) {
        s.expires_after(step);
        ++pushes;
        co_await pause(10ms);
    }
    std::string data = "late";
    co_await net::async_write(client, net::buffer(data), use_nothrow);
}

TEST(DeadlineSocket, PushingTheDeadlineLaterKeepsAPendingReadAlive) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    const auto armed_at = clock_type::now();
    // The margin (step − 10 ms period) absorbs scheduling delay on a loaded machine.
    s.expires_after(100ms);
    read_result r;
    int pushes = 0;
    runner run(io);
    run.spawn(read_once(s, r));
    run.spawn(keep_alive_then_write(s, client, 100ms, 300ms, pushes));
    ASSERT_TRUE(run.run());

    EXPECT_GT(pushes, 10);
    ASSERT_TRUE(r.done);
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.data, "late");
    EXPECT_GE(r.at - armed_at, 300ms);  // the read outlived the first deadline threefold
    EXPECT_FALSE(s.timed_out());
    EXPECT_EQ(armed_count(io), 1u);  // still armed: the last push has not passed yet
}

TEST(DeadlineSocket, PushedDeadlineIsStillEnforcedAtItsNewTime) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    const auto armed_at = clock_type::now();
    s.expires_at(armed_at + 30ms);
    s.expires_at(armed_at + 80ms);  // the watchdog still wakes at 30 ms, and must wait again
    read_result r;
    runner run(io);
    run.spawn(read_once(s, r));
    ASSERT_TRUE(run.run(5s));

    ASSERT_TRUE(r.done);
    EXPECT_EQ(s.explain(r.ec), beast::error::timeout);
    EXPECT_GE(r.at - armed_at, 80ms);
    EXPECT_LT(r.at - armed_at, late);
}

TEST(DeadlineSocket, WatchdogListsExactlyTheSocketsWithADeadline) {
    net::io_context io;
    auto [client_a, server_a] = connect_loopback(io);
    auto [client_b, server_b] = connect_loopback(io);
    deadline_socket a(std::move(server_a));
    EXPECT_EQ(armed_count(io), 0u);

    a.expires_after(10s);
    EXPECT_EQ(armed_count(io), 1u);
    a.expires_after(20s);  // re-arming does not link it twice
    a.expires_after(5s);
    EXPECT_EQ(armed_count(io), 1u);
    {
        deadline_socket b(std::move(server_b));
        b.expires_after(10s);
        EXPECT_EQ(armed_count(io), 2u);
    }
    EXPECT_EQ(armed_count(io), 1u);  // a destroyed socket unlinks itself

    a.expires_never();
    EXPECT_EQ(armed_count(io), 0u);
    a.expires_never();  // twice is harmless
    EXPECT_EQ(armed_count(io), 0u);
    a.expires_after(10s);
    EXPECT_EQ(armed_count(io), 1u);
}

TEST(DeadlineSocket, WatchdogTickAfterItsSocketsAreGoneIsHarmless) {
    net::io_context io;
    auto [client_a, server_a] = connect_loopback(io);
    auto [client_b, server_b] = connect_loopback(io);
    {
        deadline_socket gone(std::move(server_a));
        gone.expires_after(20ms);  // the watchdog's timer now waits for a socket that will not exist
    }
    deadline_socket never(std::move(server_b));
    never.expires_after(20ms);
    never.expires_never();
    ASSERT_EQ(armed_count(io), 0u);

    runner run(io);
    run.spawn(pause(100ms));  // across the watchdog's tick
    ASSERT_TRUE(run.run());
    EXPECT_TRUE(never.socket().is_open());
    EXPECT_FALSE(never.timed_out());
}

TEST(DeadlineSocket, EarlierDeadlineArmedAfterALaterOneFiresOnTime) {
    net::io_context io;
    auto [client_a, server_a] = connect_loopback(io);
    auto [client_b, server_b] = connect_loopback(io);
    deadline_socket far(std::move(server_a)), near(std::move(server_b));
    far.expires_after(10s);  // the watchdog's timer now waits 10 s
    const auto armed_at = clock_type::now();
    near.expires_after(30ms);  // must pull it in
    read_result far_read, near_read;
    runner run(io);
    run.spawn(read_once(near, near_read));
    run.spawn(read_once(far, far_read));
    run.spawn(write_after(client_a, 200ms, "far"));  // ends the far read well after near's deadline
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(near_read.done);
    EXPECT_EQ(near.explain(near_read.ec), beast::error::timeout);
    EXPECT_GE(near_read.at - armed_at, 30ms);
    EXPECT_LT(near_read.at - armed_at, late);
    ASSERT_TRUE(far_read.done);
    EXPECT_FALSE(far_read.ec) << far_read.ec.message();
    EXPECT_EQ(far_read.data, "far");
    EXPECT_FALSE(far.timed_out());
    EXPECT_EQ(armed_count(io), 1u);  // far still waits for its own deadline
}

TEST(DeadlineSocket, DeadlineInThePastClosesAtTheNextTick) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    const auto armed_at = clock_type::now();
    s.expires_at(armed_at - 1s);
    read_result r;
    runner run(io);
    run.spawn(read_once(s, r));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(r.done);
    EXPECT_EQ(s.explain(r.ec), beast::error::timeout);
    EXPECT_LT(r.at - armed_at, late);
}

// The watchdog fires at the earliest deadline but then waits at least `granularity`: a second
// deadline that falls inside that window is enforced at the end of the window, not at its time.
TEST(DeadlineSocket, DeadlineJustAfterATickWaitsOutTheGranularity) {
    net::io_context io;
    auto [client_a, server_a] = connect_loopback(io);
    auto [client_b, server_b] = connect_loopback(io);
    deadline_socket first(std::move(server_a)), second(std::move(server_b));
    const auto armed_at = clock_type::now();
    first.expires_at(armed_at + 30ms);
    second.expires_at(armed_at + 45ms);  // inside [tick, tick + 20 ms) if the tick is on time
    read_result first_read, second_read;
    runner run(io);
    run.spawn(read_once(first, first_read));
    run.spawn(read_once(second, second_read));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(first_read.done);
    ASSERT_TRUE(second_read.done);
    EXPECT_EQ(first.explain(first_read.ec), beast::error::timeout);
    EXPECT_EQ(second.explain(second_read.ec), beast::error::timeout);
    EXPECT_LT(second_read.at - armed_at, late);
    // The tick that closed `first` ran at or after 30 ms and before `first`'s read completed.
    if (first_read.at - armed_at >= 45ms) GTEST_SKIP() << "the first tick ran too late to tell (loaded machine)";
    EXPECT_GE(second_read.at - armed_at, 30ms + deadline_watchdog::granularity);
}

awaitable<void> cancel_after(deadline_socket& s, std::chrono::milliseconds delay) {
    co_await pause(delay);
    s.socket().cancel();
}

TEST(DeadlineSocket, CancelWithoutATimeoutStaysOperationAborted) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    s.expires_after(10s);
    read_result r;
    runner run(io);
    run.spawn(read_once(s, r));
    run.spawn(cancel_after(s, 10ms));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(r.done);
    EXPECT_EQ(r.ec, net::error::operation_aborted);
    EXPECT_FALSE(s.timed_out());
    EXPECT_EQ(s.explain(r.ec), net::error::operation_aborted);
    EXPECT_TRUE(s.socket().is_open());
}

TEST(DeadlineSocket, ExplainPassesOtherErrorsThrough) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    const std::vector<error_code> others = {error_code{}, net::error::eof, net::error::connection_reset,
                                            net::error::broken_pipe, beast::error::timeout};
    for (const auto& ec : others) EXPECT_EQ(s.explain(ec), ec) << ec.message();
    EXPECT_EQ(s.explain(net::error::operation_aborted), net::error::operation_aborted);

    // Even after a timeout, only the errors the close causes become a timeout.
    s.expires_after(0ms);
    read_result r;
    runner run(io);
    run.spawn(read_once(s, r));
    ASSERT_TRUE(run.run());
    ASSERT_TRUE(s.timed_out());
    for (const auto& ec : others) EXPECT_EQ(s.explain(ec), ec) << ec.message();
    EXPECT_EQ(s.explain(net::error::operation_aborted), beast::error::timeout);
    EXPECT_EQ(s.explain(net::error::bad_descriptor), beast::error::timeout);  // an operation started after the close

    // A new deadline starts a new story.
    s.expires_after(10s);
    EXPECT_FALSE(s.timed_out());
    EXPECT_EQ(s.explain(net::error::operation_aborted), net::error::operation_aborted);
}

struct write_result {
    bool done = false;
    error_code ec;
    std::size_t bytes = 0;
};

awaitable<void> write_all(deadline_socket& s, const std::vector<char>& data, write_result& out) {
    auto [ec, n] = co_await net::async_write(s, net::buffer(data), use_nothrow);
    out = {true, ec, n};
}

TEST(DeadlineSocket, WriteToAPeerThatDoesNotReadTimesOut) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    server.set_option(net::socket_base::send_buffer_size(4096));
    client.set_option(net::socket_base::receive_buffer_size(4096));
    deadline_socket s(std::move(server));
    const std::vector<char> data(16 * 1024 * 1024, 'x');  // far more than the kernel buffers hold
    s.expires_after(30ms);
    write_result w;
    runner run(io);
    run.spawn(write_all(s, data, w));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(w.done);
    EXPECT_EQ(s.explain(w.ec), beast::error::timeout) << w.ec.message();
    EXPECT_LT(w.bytes, data.size());
}

TEST(DeadlineSocket, WriteNowTakesWhatTheKernelTakesAndNeverWaits) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    server.set_option(net::socket_base::send_buffer_size(4096));
    client.set_option(net::socket_base::receive_buffer_size(4096));
    deadline_socket s(std::move(server));
    error_code ec;
    EXPECT_EQ(s.write_now(net::buffer(std::string_view("hello")), ec), 5u);
    EXPECT_FALSE(ec) << ec.message();
    std::array<char, 5> got;
    net::read(client, net::buffer(got));
    EXPECT_EQ(std::string_view(got.data(), got.size()), "hello");

    // The peer does not read: the kernel buffers fill, and then write_now says so at once.
    const std::vector<char> data(16 * 1024 * 1024, 'x');
    std::size_t total = 0;
    for (int calls = 0; !ec && calls < 1000; ++calls) total += s.write_now(net::buffer(data), ec);
    EXPECT_EQ(ec, net::error::would_block) << ec.message();
    EXPECT_GT(total, 0u);
    EXPECT_LT(total, data.size());
}

TEST(DeadlineSocket, WriteNowAfterATimeoutReportsTheTimeout) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    s.expires_after(0ms);
    read_result r;
    runner run(io);
    run.spawn(read_once(s, r));
    ASSERT_TRUE(run.run());
    ASSERT_TRUE(s.timed_out());

    error_code ec;
    EXPECT_EQ(s.write_now(net::buffer(std::string_view("late")), ec), 0u);
    EXPECT_TRUE(ec);
    EXPECT_EQ(s.explain(ec), beast::error::timeout) << ec.message();
}

struct header_result {
    bool done = false;
    error_code ec;
};

awaitable<void> read_header(deadline_socket& s, header_result& out) {
    read_buffer buffer;
    beast::http::request_parser<beast::http::empty_body> parser;
    auto [ec, n] = co_await beast::http::async_read_header(s, buffer, parser, use_nothrow);
    out = {true, s.explain(ec)};
}

// What the server relies on: a header that stops arriving ends as a timeout through Beast's
// composed read, with the deadline_socket as the stream and a read_buffer as the buffer.
TEST(DeadlineSocket, SlowHeaderThroughBeastReadEndsAsTimeout) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    net::write(client, net::buffer(std::string("GET / HTTP/1.1\r\nHost: example\r\n")));  // no blank line
    s.expires_after(30ms);
    header_result h;
    runner run(io);
    run.spawn(read_header(s, h));
    ASSERT_TRUE(run.run());

    ASSERT_TRUE(h.done);
    EXPECT_EQ(h.ec, beast::error::timeout) << h.ec.message();
}

// Owns its socket, as a server session does, and waits for a request that never comes.
awaitable<void> idle_session(tcp::socket socket, std::chrono::seconds timeout, int& started) {
    deadline_socket s(std::move(socket));
    s.expires_after(timeout);
    ++started;
    std::array<char, 64> buf;
    co_await s.async_read_some(net::buffer(buf), use_nothrow);
}

// What the application's shutdown does: stop the worker's io_context with sessions still
// waiting, then destroy it; the watchdog's shutdown and the sessions' frames meet there.
TEST(DeadlineSocket, IoContextDestroyedWithArmedSocketsInPendingCoroutines) {
    auto io = std::make_unique<net::io_context>();
    std::vector<tcp::socket> clients;
    int started = 0;
    for (int i = 0; i < 3; ++i) {
        auto [client, server] = connect_loopback(*io);
        clients.push_back(std::move(client));
        net::co_spawn(*io, idle_session(std::move(server), std::chrono::seconds(10 + i), started), net::detached);
    }
    io->run_for(50ms);
    ASSERT_EQ(started, 3);
    EXPECT_EQ(armed_count(*io), 3u);
    io->stop();
    clients.clear();
    io.reset();  // must neither crash nor touch freed memory (see the sanitizer build)
}

TEST(DeadlineSocket, WatchdogIsPerIoContext) {
    net::io_context io_a, io_b;
    auto [client_a, server_a] = connect_loopback(io_a);
    auto [client_b, server_b] = connect_loopback(io_b);
    deadline_socket a(std::move(server_a)), b(std::move(server_b));
    a.expires_after(10s);
    EXPECT_EQ(armed_count(io_a), 1u);
    EXPECT_EQ(armed_count(io_b), 0u);
    b.expires_after(10s);
    EXPECT_EQ(armed_count(io_b), 1u);
    EXPECT_NE(&net::use_service<deadline_watchdog>(io_a), &net::use_service<deadline_watchdog>(io_b));
}

#if SPILLWAY_HAS_EDGE_READ
// Its reads are edge reads (edge_read.hpp) with TCP_INQ turned on by the first: after a read that
// took everything, the next one waits for readiness instead of trying a recv. Seen in the
// receive queue (FIONREAD) right after starting it: a recv that was tried would have emptied it.
TEST(DeadlineSocket, AReadAfterOneThatTookEverythingWaitsForReadiness) {
    net::io_context io;
    auto [client, server] = connect_loopback(io);
    deadline_socket s(std::move(server));
    auto queued = [&] {
        int n = -1;
        EXPECT_EQ(::ioctl(s.socket().native_handle(), FIONREAD, &n), 0);
        return n;
    };
    auto arrive = [&](std::string_view data) {  // written by the peer and in s's receive queue
        net::write(client, net::buffer(data));
        for (int i = 0; i < 1000 && queued() < static_cast<int>(data.size()); ++i) {
            pollfd p{s.socket().native_handle(), POLLIN, 0};
            ::poll(&p, 1, 1);
        }
        ASSERT_EQ(queued(), static_cast<int>(data.size()));
    };
    std::array<char, 64> buf;
    std::string got;
    auto read = [&] {
        got = "(no completion)";
        s.async_read_some(net::buffer(buf), [&](error_code ec, std::size_t n) {
            got = ec ? ec.message() : std::string(buf.data(), n);
        });
    };

    arrive("hello");
    read();
    io.restart();
    io.run();
    ASSERT_EQ(got, "hello");
    arrive("world");
    read();
    EXPECT_EQ(queued(), 5) << "the read tried a recv when it was started";
    io.restart();
    io.run();
    EXPECT_EQ(got, "world");
}
#endif

}  // namespace
}  // namespace spillway::http
