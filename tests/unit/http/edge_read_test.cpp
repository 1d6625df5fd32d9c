// Unit tests for http/edge_read: a read that emptied the socket makes the next read wait for
// readiness without trying a recv first; no readiness is lost on the way (data that came before
// the next read was started, or before the last read's handler ran; an end of stream or a reset
// that came with the last data, whether a read was waiting or not); a read that left bytes behind
// is not taken for one that emptied the socket; without TCP_INQ every read tries at once; closing
// and per-operation cancellation abort a waiting read. Real loopback sockets, one io_context run
// by the test thread.
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

// Waits until `s` shows one of `events` to poll(2): POLLRDHUP once the peer's FIN has come,
// POLLHUP once its reset has.
void wait_for(tcp::socket& s, short events) {
    pollfd p{s.native_handle(), events, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    ASSERT_NE(p.revents & events, 0);
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
    bool inq = enable_edge_reads(pair.server);
    std::array<char, 64> buffer{};
    std::optional<outcome> done;

    void start_read(std::size_t size = 64) { start_read_on(pair.server, size); }
    void start_read_on(tcp::socket& s, std::size_t size = 64) {
        done.reset();
        async_read_some_edge(s, reactor, net::buffer(buffer.data(), size),
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

TEST_F(EdgeRead, TheKernelReportsWhatIsLeftAfterEachRead) { ASSERT_TRUE(inq) << "setsockopt(TCP_INQ) failed"; }

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

TEST_F(EdgeRead, WithoutTcpInqEveryReadTriesAtOnce) {
    loopback plain = connect_loopback(io);  // enable_edge_reads not called
    send_and_wait(plain.client, plain.server, "hello");
    start_read_on(plain.server);
    run_until_done();
    ASSERT_EQ(received(), "hello");
    send_and_wait(plain.client, plain.server, "world");
    start_read_on(plain.server);
    EXPECT_EQ(queued(plain.server), 0) << "without TCP_INQ a read cannot know that it emptied the socket";
    run_until_done();
    EXPECT_EQ(received(), "world");
}

TEST_F(EdgeRead, AReadThatTookEverythingInExactlyItsBufferMakesTheNextWait) {
    send_and_wait(pair.client, pair.server, "hello");
    start_read(5);
    run_until_done();
    ASSERT_EQ(received(), "hello");
    send_and_wait(pair.client, pair.server, "world");
    start_read();
    EXPECT_EQ(queued(pair.server), 5) << "the read tried a recv when it was started";
    run_until_done();
    EXPECT_EQ(received(), "world");
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

// The end of the stream, or a reset, that comes together with the last data raises one readiness
// event, which the read of that data consumes; the next read must still see the end.
class EdgeReadEnd : public EdgeRead {
protected:
    enum class end { fin, reset };

    void send_last(std::string_view data, end how) {
        send_and_wait(pair.client, pair.server, data);
        if (how == end::fin) {
            pair.client.shutdown(tcp::socket::shutdown_send);
            wait_for(pair.server, POLLRDHUP);
        } else {
            pair.client.set_option(net::socket_base::linger(true, 0));
            pair.client.close();
            wait_for(pair.server, POLLHUP);
        }
    }
    // Reads "hello", then expects the next read to end with `expected`.
    void expect_end_after_hello(const error_code& expected) {
        ASSERT_TRUE(done);
        ASSERT_FALSE(done->ec) << done->ec.message();
        ASSERT_EQ(received(), "hello");
        start_read();
        run_until_done();
        ASSERT_TRUE(done) << "the end of the stream was lost: the read waits for an event that came already";
        EXPECT_EQ(done->ec, expected) << done->ec.message();
        EXPECT_EQ(done->n, 0u);
    }
    // The read is waiting when the data and the end come.
    void read_waiting(end how) {
        start_read();
        ASSERT_EQ(queued(pair.server), 0);
        ASSERT_FALSE(done);
        send_last("hello", how);
        run_until_done();
    }
    // The reactor collects the event while no read waits; the read comes after.
    void read_afterwards(end how) {
        net::steady_timer keep_busy(io, 1h);
        keep_busy.async_wait([](error_code) {});
        send_last("hello", how);
        io.restart();
        io.poll();
        start_read();
        run_until_done();
    }
};

TEST_F(EdgeReadEnd, FinWithTheDataOfAWaitingRead) {
    read_waiting(end::fin);
    expect_end_after_hello(net::error::eof);
}

TEST_F(EdgeReadEnd, FinWithDataThatCameWhileNoReadWaited) {
    read_afterwards(end::fin);
    expect_end_after_hello(net::error::eof);
}

TEST_F(EdgeReadEnd, ResetAfterTheDataOfAWaitingRead) {
    read_waiting(end::reset);
    expect_end_after_hello(net::error::connection_reset);
}

TEST_F(EdgeReadEnd, ResetAfterDataThatCameWhileNoReadWaited) {
    read_afterwards(end::reset);
    expect_end_after_hello(net::error::connection_reset);
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
