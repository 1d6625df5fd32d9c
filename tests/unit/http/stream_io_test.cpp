// Unit tests for the I/O shortcuts of the data path: parse_buffered (a Beast parser fed from what
// is already buffered, without I/O), read_until (the same, reading only when that is not
// enough, with Beast's errors for a peer that closes) and write_all (a write that first tries without waiting and
// falls back to an asynchronous write), the latter on real loopback sockets.
#include "http/any_stream.hpp"
#include "http/parse_buffered.hpp"

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/multi_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <poll.h>

#include <array>
#include <iterator>
#include <chrono>
#include <exception>
#include <string>
#include <string_view>

namespace spillway::http {
namespace {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

template <class DynamicBuffer>
void append(DynamicBuffer& buffer, std::string_view bytes) {
    buffer.commit(net::buffer_copy(buffer.prepare(bytes.size()), net::buffer(bytes)));
}

constexpr auto header_done = [](const auto& p) { return p.is_header_done(); };
constexpr auto message_done = [](const auto& p) { return p.is_done(); };

const std::string chat_request =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    "{\"model\":\"gpt\"}\n";
const std::string models_request = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";

// parse_buffered

TEST(ParseBuffered, WholeRequestIsParsedAndAPipelinedOneStaysBuffered) {
    beast::flat_buffer buffer;
    append(buffer, chat_request + models_request);
    bhttp::request_parser<bhttp::string_body> first;
    EXPECT_FALSE(parse_buffered(first, buffer, message_done));
    ASSERT_TRUE(first.is_done());
    EXPECT_EQ(first.get().target(), "/v1/chat/completions");
    EXPECT_EQ(first.get().body(), "{\"model\":\"gpt\"}\n");
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), models_request) << "exactly the first request's bytes consumed";

    bhttp::request_parser<bhttp::string_body> second;
    EXPECT_FALSE(parse_buffered(second, buffer, message_done));
    ASSERT_TRUE(second.is_done());
    EXPECT_EQ(second.get().target(), "/v1/models");
    EXPECT_EQ(buffer.size(), 0u);
}

TEST(ParseBuffered, ChunkedRequestAlsoStopsAtItsEnd) {
    const std::string chunked = "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    beast::flat_buffer buffer;
    append(buffer, chunked + models_request);
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));
    ASSERT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get().body(), "hello world");
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), models_request);
}

// Stopping at the header (as the server does before it checks the declared body size) leaves
// the body in the buffer, and a second call picks up from there.
TEST(ParseBuffered, StopsWhereEnoughSaysAndResumes) {
    beast::flat_buffer buffer;
    append(buffer, chat_request);
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(parse_buffered(parser, buffer, header_done));
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_FALSE(parser.is_done());
    EXPECT_EQ(buffer.size(), 16u) << "only the header consumed";
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));
    EXPECT_TRUE(parser.is_done());
    EXPECT_EQ(buffer.size(), 0u);
}

// Half a header is not an error (need_more): the caller reads more into the same buffer and calls
// again with the same parser (which may have taken the complete lines already).
TEST(ParseBuffered, HalfAHeaderIsNoErrorAndNotHeaderDone) {
    const std::size_t cut = chat_request.find("Content-Length") + 7;
    beast::flat_buffer buffer;
    append(buffer, chat_request.substr(0, cut));
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(parse_buffered(parser, buffer, header_done));
    EXPECT_FALSE(parser.is_header_done());
    EXPECT_GE(buffer.size(), 7u) << "the incomplete line stays buffered";

    append(buffer, chat_request.substr(cut));
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));
    ASSERT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get().body(), "{\"model\":\"gpt\"}\n");
}

TEST(ParseBuffered, BodyArrivingInPiecesIsResumed) {
    const std::size_t cut = chat_request.size() - 5;
    beast::flat_buffer buffer;
    append(buffer, chat_request.substr(0, cut));
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_FALSE(parser.is_done());

    append(buffer, chat_request.substr(cut));
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));
    ASSERT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get().body(), "{\"model\":\"gpt\"}\n");
}

TEST(ParseBuffered, OversizedHeaderGivesHeaderLimit) {
    const std::string big = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-padding: " + std::string(2000, 'a') +
                            "\r\nContent-Length: 0\r\n\r\n";
    for (bool whole : {true, false}) {  // a complete header over the limit, and one that is not even complete yet
        beast::flat_buffer buffer;
        append(buffer, whole ? big : big.substr(0, 1500));
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(1024);
        EXPECT_EQ(parse_buffered(parser, buffer, header_done), bhttp::error::header_limit) << "whole " << whole;
        EXPECT_FALSE(parser.is_header_done());
    }
}

TEST(ParseBuffered, MalformedInputReturnsTheParseError) {
    beast::flat_buffer buffer;
    append(buffer, "GET / HTTX/1.1\r\nHost: x\r\n\r\n");
    bhttp::request_parser<bhttp::string_body> parser;
    error_code ec = parse_buffered(parser, buffer, header_done);
    EXPECT_TRUE(ec);
    EXPECT_NE(ec, bhttp::error::need_more);
}

TEST(ParseBuffered, NothingToDoWhenAlreadyEnoughOrEmpty) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));  // empty buffer
    EXPECT_FALSE(parser.is_header_done());

    append(buffer, models_request);
    EXPECT_FALSE(parse_buffered(parser, buffer, [](const auto&) { return true; }));
    EXPECT_EQ(buffer.size(), models_request.size()) << "nothing consumed once enough holds";
}

// A buffer sequence of several pieces (a multi_buffer's) parses as one.
TEST(ParseBuffered, BufferInSeveralPieces) {
    const std::string padded = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-padding: " + std::string(600, 'p') +
                               "\r\nContent-Length: 16\r\n\r\n{\"model\":\"gpt\"}\n";
    beast::multi_buffer buffer;
    append(buffer, padded.substr(0, 512));  // fills the first block (512 bytes) exactly
    append(buffer, padded.substr(512) + models_request);
    const auto pieces = buffer.data();
    ASSERT_GE(std::distance(net::buffer_sequence_begin(pieces), net::buffer_sequence_end(pieces)), 2);
    bhttp::request_parser<bhttp::string_body> parser;
    EXPECT_FALSE(parse_buffered(parser, buffer, message_done));
    ASSERT_TRUE(parser.is_done());
    EXPECT_EQ(parser.get()["x-padding"].size(), 600u);
    EXPECT_EQ(parser.get().body(), "{\"model\":\"gpt\"}\n");
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), models_request);
}

std::string numbered_bytes(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
    return s;
}

// The relay's parser writes the body into a block of its own: a full block stops parsing with
// need_buffer, the bytes so far in the block and the rest still in the buffer.
TEST(ParseBuffered, FullBodyBufferStopsWithNeedBuffer) {
    const std::string body = numbered_bytes(100);
    beast::flat_buffer buffer;
    append(buffer, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + body);
    bhttp::response_parser<bhttp::buffer_body> parser;
    std::array<char, 16> block{};
    parser.get().body().data = block.data();
    parser.get().body().size = block.size();
    EXPECT_EQ(parse_buffered(parser, buffer, message_done), bhttp::error::need_buffer);
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_EQ(parser.get().body().size, 0u);
    EXPECT_EQ(std::string_view(block.data(), block.size()), body.substr(0, 16));
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), body.substr(16));
}

// The relay's loop: stop when done or the block is full, and take need_buffer (bytes left over
// after filling the block) as "block full", not as an error. The pieces make up the body,
// chunked or not.
TEST(ParseBuffered, RelayLoopReassemblesTheBody) {
    const std::string body = numbered_bytes(100);
    const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "1e\r\n" + body.substr(0, 30) + "\r\n46\r\n" + body.substr(30) + "\r\n0\r\n\r\n";
    for (const std::string& response : {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + body, chunked}) {
        beast::flat_buffer buffer;
        append(buffer, response);
        bhttp::response_parser<bhttp::buffer_body> parser;
        auto& piece = parser.get().body();
        std::array<char, 16> block{};
        std::string relayed;
        for (int round = 0; round < 100 && !parser.is_done(); ++round) {
            piece.data = block.data();
            piece.size = block.size();
            error_code ec = parse_buffered(parser, buffer, [&](const auto& p) { return p.is_done() || piece.size == 0; });
            if (ec == bhttp::error::need_buffer) {
                EXPECT_EQ(piece.size, 0u) << "need_buffer only with the block full";
                ec = {};
            }
            ASSERT_FALSE(ec) << ec.message();
            relayed.append(block.data(), block.size() - piece.size);
        }
        EXPECT_TRUE(parser.is_done());
        EXPECT_EQ(relayed, body);
        EXPECT_EQ(buffer.size(), 0u);
    }
}

// write_all

struct write_outcome {
    bool done = false;
    error_code ec;
    std::size_t written = 0;
};

template <class ConstBuffers>
awaitable<void> write_all_into(any_stream* stream, ConstBuffers buffers, write_outcome* out) {
    auto [ec, n] = co_await write_all(*stream, buffers);
    out->ec = ec;
    out->written = n;
    out->done = true;
}

awaitable<void> read_exactly(tcp::socket* peer, std::size_t n, std::string* into) {
    auto [ec, got] = co_await net::async_read(*peer, net::dynamic_buffer(*into), net::transfer_exactly(n), use_nothrow);
    (void)ec;
    (void)got;
}

void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

class WriteAll : public ::testing::Test {
protected:
    // A plain any_stream (spillway's end) connected to `peer_` over loopback. Small socket
    // buffers, when asked, so that megabytes cannot all be taken at once.
    any_stream connect(bool small_buffers) {
        tcp::acceptor acceptor(io_, {net::ip::make_address("127.0.0.1"), 0});
        tcp::socket ours(io_);
        ours.connect(acceptor.local_endpoint());
        peer_ = acceptor.accept();
        if (small_buffers) {
            ours.set_option(net::socket_base::send_buffer_size(64 * 1024));
            peer_.set_option(net::socket_base::receive_buffer_size(64 * 1024));
        }
        return any_stream(std::move(ours), nullptr);
    }

    // Waits (bounded) until the peer's reset has reached our end of the connection.
    static bool wait_for_reset(any_stream& stream) {
        pollfd p{stream.tcp_layer().socket().native_handle(), POLLIN, 0};
        return ::poll(&p, 1, 10000) == 1 && (p.revents & (POLLERR | POLLHUP | POLLIN));
    }

    net::io_context io_;
    tcp::socket peer_{io_};
};

// read_until

struct read_outcome {
    bool done = false;
    error_code ec;
    std::size_t read = 0;
};

awaitable<void> read_head_into(any_stream* stream, beast::flat_buffer* buffer,
                               bhttp::response_parser<bhttp::string_body>* parser, read_outcome* out) {
    auto [ec, n] = co_await read_until(*stream, *buffer, *parser, header_done);
    out->ec = ec;
    out->read = n;
    out->done = true;
}

class ReadUntil : public WriteAll {  // the same loopback pair
protected:
    // The peer sends `sent` and closes its side; reads a response head from our end.
    read_outcome read_head_after_peer_closes(std::string_view sent, bhttp::response_parser<bhttp::string_body>& parser) {
        any_stream stream = connect(false);
        if (!sent.empty()) net::write(peer_, net::buffer(sent));
        peer_.shutdown(tcp::socket::shutdown_send);
        beast::flat_buffer buffer;
        read_outcome out;
        net::co_spawn(io_, read_head_into(&stream, &buffer, &parser, &out), rethrow);
        io_.run_for(10s);
        return out;
    }
};

TEST_F(ReadUntil, ReadsUntilEnoughAndLeavesTheRestBuffered) {
    any_stream stream = connect(false);
    beast::flat_buffer buffer;
    append(buffer, "HTTP/1.1 200 OK\r\n");  // part of the head already buffered
    const std::string rest = "Content-Length: 5\r\n\r\nhello";
    net::write(peer_, net::buffer(rest));
    bhttp::response_parser<bhttp::string_body> parser;
    read_outcome out;
    net::co_spawn(io_, read_head_into(&stream, &buffer, &parser, &out), rethrow);
    io_.run_for(10s);
    ASSERT_TRUE(out.done);
    EXPECT_FALSE(out.ec) << out.ec.message();
    EXPECT_EQ(out.read, rest.size());
    EXPECT_TRUE(parser.is_header_done());
    EXPECT_EQ(parser.get().result_int(), 200u);
    EXPECT_EQ(beast::buffers_to_string(buffer.data()), "hello");  // the body is not parsed here
}

// A kept-alive connection the upstream had closed: end_of_stream, which the proxy takes for a
// stale connection and retries on a fresh one.
TEST_F(ReadUntil, PeerClosingBeforeAnyByteIsEndOfStream) {
    bhttp::response_parser<bhttp::string_body> parser;
    const read_outcome out = read_head_after_peer_closes("", parser);
    ASSERT_TRUE(out.done);
    EXPECT_EQ(out.ec, bhttp::error::end_of_stream) << out.ec.message();
    EXPECT_EQ(out.read, 0u);
}

TEST_F(ReadUntil, PeerClosingInsideTheHeadIsPartialMessage) {
    bhttp::response_parser<bhttp::string_body> parser;
    const read_outcome out = read_head_after_peer_closes("HTTP/1.1 200 OK\r\nContent-Le", parser);
    ASSERT_TRUE(out.done);
    EXPECT_EQ(out.ec, bhttp::error::partial_message) << out.ec.message();
    EXPECT_FALSE(parser.is_header_done());
}

TEST_F(WriteAll, SmallAnswerReachesThePeerWhole) {
    any_stream stream = connect(false);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    const std::string body = numbered_bytes(1000);
    write_outcome out;
    net::co_spawn(io_, write_all_into(&stream, std::array{net::buffer(head), net::buffer(body)}, &out), rethrow);
    std::string received;
    net::co_spawn(io_, read_exactly(&peer_, head.size() + body.size(), &received), rethrow);
    io_.run_for(10s);
    ASSERT_TRUE(out.done);
    EXPECT_FALSE(out.ec) << out.ec.message();
    EXPECT_EQ(out.written, head.size() + body.size());
    EXPECT_EQ(received, head + body);
}

// 8 MiB cannot go into the socket at once: the first write takes part, the rest waits for the
// peer to read (the asynchronous fallback), and every byte arrives in order, across the
// boundaries of the buffer sequence.
TEST_F(WriteAll, AnswerLargerThanTheSocketBuffersIsWrittenWhole) {
    any_stream stream = connect(true);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\n\r\n";
    const std::string body = numbered_bytes(8 * 1024 * 1024);
    const std::string_view first = std::string_view(body).substr(0, 5 * 1024 * 1024 + 3);
    const std::string_view rest = std::string_view(body).substr(first.size());
    const std::size_t total = head.size() + body.size();
    write_outcome out;
    net::co_spawn(io_, write_all_into(&stream, std::array{net::buffer(head), net::buffer(first), net::buffer(rest)}, &out),
                  rethrow);
    io_.poll();
    ASSERT_FALSE(out.done) << "the whole answer fit the socket: the asynchronous fallback was not exercised";

    std::string received;
    received.reserve(total);
    net::co_spawn(io_, read_exactly(&peer_, total, &received), rethrow);
    io_.run_for(30s);
    ASSERT_TRUE(out.done);
    EXPECT_FALSE(out.ec) << out.ec.message();
    EXPECT_EQ(out.written, total);
    ASSERT_EQ(received.size(), total);
    EXPECT_TRUE(received == head + body) << "bytes lost, doubled or reordered";
}

TEST_F(WriteAll, PeerGoneBeforeTheWriteIsAnError) {
    any_stream stream = connect(false);
    peer_.set_option(net::socket_base::linger(true, 0));
    peer_.close();  // RST
    ASSERT_TRUE(wait_for_reset(stream));
    const std::string answer = numbered_bytes(1000);
    write_outcome out;
    net::co_spawn(io_, write_all_into(&stream, net::buffer(answer), &out), rethrow);
    io_.run_for(10s);
    ASSERT_TRUE(out.done);
    EXPECT_TRUE(out.ec == net::error::connection_reset || out.ec == net::error::broken_pipe) << out.ec.message();
    EXPECT_EQ(out.written, 0u);
}

// The peer leaves while the rest of a large answer waits for room: the asynchronous part ends
// with the error too, having written only part.
TEST_F(WriteAll, PeerGoneDuringALargeWriteIsAnError) {
    any_stream stream = connect(true);
    const std::string body = numbered_bytes(8 * 1024 * 1024);
    write_outcome out;
    net::co_spawn(io_, write_all_into(&stream, net::buffer(body), &out), rethrow);
    io_.poll();
    ASSERT_FALSE(out.done);
    peer_.close();  // with unread data: the kernel answers with a reset
    io_.run_for(10s);
    ASSERT_TRUE(out.done);
    EXPECT_TRUE(out.ec == net::error::connection_reset || out.ec == net::error::broken_pipe) << out.ec.message();
    EXPECT_GT(out.written, 0u);
    EXPECT_LT(out.written, body.size());
}

// A peer that does not read: the deadline closes the socket and write_all says timeout, not
// operation_aborted.
TEST_F(WriteAll, StalledPeerEndsInTimeout) {
    any_stream stream = connect(true);
    const std::string body = numbered_bytes(8 * 1024 * 1024);
    stream.tcp_layer().expires_after(100ms);
    write_outcome out;
    net::co_spawn(io_, write_all_into(&stream, net::buffer(body), &out), rethrow);
    io_.run_for(10s);
    ASSERT_TRUE(out.done);
    EXPECT_EQ(out.ec, beast::error::timeout) << out.ec.message();
    EXPECT_LT(out.written, body.size());
}

}  // namespace
}  // namespace spillway::http
