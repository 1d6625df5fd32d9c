// Unit tests for http/edge_read: a read that emptied the socket makes the next read wait for
// readiness without trying a recv first; no readiness is lost on the way (data that came before
// the next read was started, or before the last read's handler ran, the end of the stream); a
// read that filled its buffer is not taken for one that emptied the socket; closing and
// per-operation cancellation abort a waiting read. Real loopback sockets, one io_context run by
// the test thread.
//
// Whether a read tried a recv when it was started is seen in the socket's receive queue
// (FIONREAD) right after starting it, before the io_context runs: a recv that was tried has
// taken the data out.
#include "http/edge_read.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/ioctl.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace spillway::http {
namespace {

#if SPILLWAY_HAS_EDGE_READ

using namespace std::chrono_literals;

struct loopback {
    tcp::socket client;
    tcp::socket server;  // the socket under test
};

loopback connect_loopback(net::io_context& io) {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    tcp::socket client(io);
    client.connect(acceptor.local_endpoint());
    tcp::socket server = acceptor.accept();
    return {std::move(client), std::move(server)};
}

// Bytes in the socket's receive queue.
int queued(tcp::socket& s) {
    int n = -1;
    EXPECT_EQ(::ioctl(s.native_handle(), FIONREAD, &n), 0);
    return n;
}

// Sends `data` from the peer and waits until all of it is in `s`'s receive queue (poll(2) does
// not take readiness events from Asio's epoll registration).
void send_and_wait(tcp::socket& peer, tcp::socket& s, std::string_view data) {
    const int before = queued(s);
    net::write(peer, net::buffer(data));
    for (int i = 0; i < 1000 && queued(s) < before + static_cast<int>(data.size()); ++i) {
        pollfd p{s.native_handle(), POLLIN, 0};
        ::poll(&p, 1, 1);
    }
    ASSERT_EQ(queued(s), before + static_cast<int>(data.size()));
}

// One read's outcome.
struct outcome {
    error_code ec;
    std::size_t n = 0;
};

class EdgeRead : public ::testing::Test {
protected:
    net::io_context io;
    loopback pair = connect_loopback(io);
    edge_read_detail::reactor& reactor = reactor_of(io);
    std::array<char, 64> buffer{};
    std::optional<outcome> done;

    void start_read(std::size_t size = 64) {
        done.reset();
        async_read_some_edge(pair.server, reactor, net::buffer(buffer.data(), size),
                             [this](error_code ec, std::size_t n) { done = outcome{ec, n}; });
    }
    // Runs the io_context until the read has completed (or a second has passed). The context
    // stops whenever it runs out of work, as after the previous read.
    void run_until_done() {
        io.restart();
        for (auto until = std::chrono::steady_clock::now() + 1s; !done && std::chrono::steady_clock::now() < until;)
            io.run_one_for(10ms);
    }
    std::string received() const { return done ? std::string(buffer.data(), done->n) : std::string("(no completion)"); }

    // A first read that takes all there is: "hello" into 64 bytes.
    void read_short() {
        send_and_wait(pair.client, pair.server, "hello");
        start_read();
        run_until_done();
        ASSERT_TRUE(done);
        ASSERT_FALSE(done->ec);
        ASSERT_EQ(received(), "hello");
    }
};

TEST_F(EdgeRead, ReadsWhatHasArrived) {
    send_and_wait(pair.client, pair.server, "hello");
    start_read();
    EXPECT_EQ(queued(pair.server), 0) << "a first read tries at once";
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_FALSE(done->ec) << done->ec.message();
    EXPECT_EQ(received(), "hello");
}

TEST_F(EdgeRead, AfterAReadThatEmptiedTheSocketTheNextWaitsForReadinessInsteadOfTrying) {
    read_short();
    send_and_wait(pair.client, pair.server, "world");
    start_read();
    EXPECT_EQ(queued(pair.server), 5) << "the read tried a recv when it was started";
    EXPECT_FALSE(done);
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_FALSE(done->ec) << done->ec.message();
    EXPECT_EQ(received(), "world");
}

// The same sequence with Asio's own reads, which the check above must tell apart.
TEST_F(EdgeRead, AsiosOwnReadTriesARecvAfterAShortRead) {
    auto asio_read = [this] {
        done.reset();
        pair.server.async_read_some(net::buffer(buffer), [this](error_code ec, std::size_t n) { done = outcome{ec, n}; });
    };
    send_and_wait(pair.client, pair.server, "hello");
    asio_read();
    run_until_done();
    ASSERT_EQ(received(), "hello");
    send_and_wait(pair.client, pair.server, "world");
    asio_read();
    EXPECT_EQ(queued(pair.server), 0);
    run_until_done();
    EXPECT_EQ(received(), "world");
}

TEST_F(EdgeRead, DataThatCameWhileNoReadWaitedIsReadAtOnce) {
    read_short();
    // The reactor polls (the timer keeps the context busy) and sees the data's readiness event
    // while no read is waiting.
    net::steady_timer keep_busy(io, 1h);
    keep_busy.async_wait([](error_code) {});
    send_and_wait(pair.client, pair.server, "world");
    io.restart();
    io.poll();
    start_read();
    EXPECT_EQ(queued(pair.server), 0) << "readiness seen with no read waiting must make the next read try";
    run_until_done();
    ASSERT_TRUE(done) << "the read waited for an event that had already come";
    EXPECT_EQ(received(), "world");
}

TEST_F(EdgeRead, DataThatCameBeforeTheShortReadsHandlerRanIsRead) {
    send_and_wait(pair.client, pair.server, "hello");
    std::optional<outcome> second;
    async_read_some_edge(pair.server, reactor, net::buffer(buffer), [&](error_code ec, std::size_t n) {
        ASSERT_FALSE(ec);
        ASSERT_EQ(std::string(buffer.data(), n), "hello");
        async_read_some_edge(pair.server, reactor, net::buffer(buffer),
                             [&](error_code ec2, std::size_t n2) { second = outcome{ec2, n2}; });
    });
    // The first read has emptied the socket; more comes before its handler runs.
    send_and_wait(pair.client, pair.server, "world");
    io.restart();
    for (auto until = std::chrono::steady_clock::now() + 1s; !second && std::chrono::steady_clock::now() < until;)
        io.run_one_for(10ms);
    ASSERT_TRUE(second) << "the second read was lost";
    EXPECT_FALSE(second->ec);
    EXPECT_EQ(std::string(buffer.data(), second->n), "world");
}

TEST_F(EdgeRead, AReadThatFilledItsBufferLeavesTheNextReadTryingAtOnce) {
    send_and_wait(pair.client, pair.server, "0123456789");
    start_read(4);
    run_until_done();
    ASSERT_TRUE(done);
    ASSERT_EQ(received(), "0123");
    // Nothing new arrives, so no readiness event would wake a read that waited.
    start_read(4);
    EXPECT_EQ(queued(pair.server), 2);
    run_until_done();
    ASSERT_TRUE(done) << "a full buffer was taken for an empty socket";
    EXPECT_EQ(received(), "4567");
}

TEST_F(EdgeRead, TheEndOfTheStreamAfterAShortReadEndsTheNextRead) {
    read_short();
    pair.client.shutdown(tcp::socket::shutdown_send);
    start_read();
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->ec, net::error::eof);
    EXPECT_EQ(done->n, 0u);
}

TEST_F(EdgeRead, ClosingTheSocketAbortsAWaitingRead) {
    read_short();
    start_read();
    io.restart();
    io.poll();
    ASSERT_FALSE(done);
    pair.server.close();
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->ec, net::error::operation_aborted);
}

TEST_F(EdgeRead, ACancellationSlotCancelsAWaitingReadAndTheSocketReadsOnAfterwards) {
    read_short();
    net::cancellation_signal cancel;
    done.reset();
    async_read_some_edge(pair.server, reactor, net::buffer(buffer),
                         net::bind_cancellation_slot(cancel.slot(),
                                                     [this](error_code ec, std::size_t n) { done = outcome{ec, n}; }));
    io.restart();
    io.poll();
    ASSERT_FALSE(done);
    cancel.emit(net::cancellation_type::terminal);
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->ec, net::error::operation_aborted);

    send_and_wait(pair.client, pair.server, "again");
    start_read();
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_EQ(received(), "again");
}

TEST_F(EdgeRead, AnEmptyBufferCompletesAtOnceWithNothing) {
    send_and_wait(pair.client, pair.server, "hello");
    start_read(0);
    run_until_done();
    ASSERT_TRUE(done);
    EXPECT_FALSE(done->ec);
    EXPECT_EQ(done->n, 0u);
    EXPECT_EQ(queued(pair.server), 5);
}

#else
TEST(EdgeRead, IsNotBuiltWithThisBoostVersion) { GTEST_SKIP() << "deadline_socket reads with Asio's own read here"; }
#endif

}  // namespace
}  // namespace spillway::http
