// Unit tests for http/message_parser: an upstream answer's head and a client request's, their
// framing (length, chunked, the connection's end), the body window, and every malformed form
// they refuse.
#include "http/message_parser.hpp"

#include "http/parse_buffered.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace spillway::http {
namespace {

using boost::beast::http::error;
using namespace std::string_literals;

// What reading one answer gave: the error that stopped it, its body, and whether it ended.
struct read_result {
    error_code ec;
    std::string body;
    bool done = false;
};

// Reads `wire` as the relay does: arriving `piece` bytes at a time into a flat buffer, parsed
// with parse_buffered into a body window of `window` bytes; the connection ends after the last
// byte when `then_eof`.
read_result read_in_pieces(message_parser& parser, std::string_view wire, std::size_t piece, std::size_t window,
                           bool then_eof = false) {
    read_result r;
    boost::beast::flat_buffer buffer;
    std::string block(window, '\0');
    std::size_t fed = 0;
    for (;;) {
        parser.body() = {block.data(), block.size()};
        r.ec = parse_buffered(parser, buffer, [&](const auto& p) {
            return p.is_done() || (p.is_header_done() && p.body().size == 0);
        });
        if (r.ec == error::need_buffer) r.ec = {};
        r.body.append(block.data(), block.size() - parser.body().size);
        if (r.ec || parser.is_done()) break;
        if (parser.is_header_done() && parser.body().size == 0) continue;  // window full: a new one
        if (fed == wire.size()) {
            if (then_eof) parser.put_eof(r.ec);
            break;
        }
        const std::size_t n = std::min(piece, wire.size() - fed);
        buffer.commit(boost::asio::buffer_copy(buffer.prepare(n), boost::asio::buffer(wire.data() + fed, n)));
        fed += n;
    }
    r.done = parser.is_done();
    return r;
}

// Parses a head alone (followed by nothing) and returns the error.
template <class Parser = answer_parser>
error_code head_error(const std::string& head) {
    Parser parser;
    error_code ec;
    parser.put(boost::asio::buffer(head), ec);
    return ec;
}

struct refused_head {
    std::string head;
    error expected;
};

constexpr std::string_view json_answer =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "x-ratelimit-remaining-tokens:   149212  \r\n"
    "Empty:\r\n"
    "Content-Length: 11\r\n"
    "\r\n"
    "{\"ok\":true}";

TEST(AnswerParser, ReadsTheHeadAndALengthDelimitedBody) {
    answer_parser parser;
    auto r = read_in_pieces(parser, json_answer, 4096, 4096);
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.body, "{\"ok\":true}");
    EXPECT_EQ(parser.status(), 200u);
    EXPECT_EQ(parser.reason(), "OK");
    EXPECT_EQ(parser.version(), 11u);
    ASSERT_EQ(parser.fields().size(), 4u);
    EXPECT_EQ(parser.fields()[0].name, "Content-Type");
    EXPECT_EQ(parser.fields()[0].value, "application/json");
    EXPECT_EQ(parser.fields()[1].value, "149212") << "whitespace around a value is not part of it";
    EXPECT_EQ(parser.fields()[2].value, "");
    EXPECT_EQ(parser["CONTENT-length"], "11") << "lookups ignore case";
    EXPECT_EQ(parser["missing"], "");
    EXPECT_EQ(parser.content_length(), 11u);
    EXPECT_FALSE(parser.chunked());
    EXPECT_TRUE(parser.keep_alive());
}

TEST(AnswerParser, TheHeadEndsAPutAndIsKeptInTheParsersOwnMemory) {
    answer_parser parser;
    std::string wire(json_answer);
    error_code ec;
    const std::size_t used = parser.put(boost::asio::buffer(wire), ec);
    ASSERT_FALSE(ec);
    EXPECT_EQ(wire.substr(used), "{\"ok\":true}") << "the body is left for the next put";
    wire.assign(wire.size(), 'x');  // the read buffer is reused: the fields must not point into it
    EXPECT_EQ(parser["content-type"], "application/json");
    EXPECT_EQ(parser.reason(), "OK");
}

// The same answer, split at every size of read and body window, parses to the same body.
TEST(AnswerParser, AnyReadSizeAndAnyWindowGiveTheSameBody) {
    const std::string chunked =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        "19\r\ndata: {\"delta\":\"hello\"}\n\n\r\n"
        "A;name=value;other\r\ndata: [DO]\r\n"
        "3 ;x=\"q\"\r\nNE]\r\n"
        "0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\n";
    const std::string expected = "data: {\"delta\":\"hello\"}\n\ndata: [DO]NE]";
    for (std::size_t piece = 1; piece <= chunked.size(); ++piece) {
        for (std::size_t window : {1u, 3u, 7u, 64u}) {
            answer_parser parser;
            auto r = read_in_pieces(parser, chunked, piece, window);
            ASSERT_FALSE(r.ec) << "piece " << piece << " window " << window << ": " << r.ec.message();
            ASSERT_TRUE(r.done) << "piece " << piece << " window " << window;
            ASSERT_EQ(r.body, expected) << "piece " << piece << " window " << window;
            EXPECT_TRUE(parser.chunked());
            EXPECT_TRUE(parser.keep_alive());
        }
    }
    for (std::size_t piece = 1; piece <= json_answer.size(); ++piece) {
        answer_parser parser;
        auto r = read_in_pieces(parser, json_answer, piece, 5);
        ASSERT_FALSE(r.ec) << piece;
        ASSERT_EQ(r.body, "{\"ok\":true}") << piece;
    }
}

TEST(AnswerParser, AFullWindowAsksForAnotherBuffer) {
    answer_parser parser;
    std::string wire(json_answer);
    error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(wire), ec);
    char small[4];
    parser.body() = {small, sizeof small};
    used += parser.put(boost::asio::buffer(wire.data() + used, wire.size() - used), ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(parser.body().size, 0u);
    EXPECT_EQ(std::string_view(small, 4), "{\"ok");
    parser.put(boost::asio::buffer(wire.data() + used, wire.size() - used), ec);
    EXPECT_EQ(ec, error::need_buffer);
    EXPECT_FALSE(parser.is_done());
}

TEST(AnswerParser, ABodyWithoutLengthEndsWithTheConnection) {
    const std::string wire = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    answer_parser parser;
    auto r = read_in_pieces(parser, wire, 5, 64, /*then_eof=*/true);
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.body, "until the end");
    EXPECT_FALSE(parser.keep_alive()) << "the connection's end was the body's";
    EXPECT_FALSE(parser.content_length());
}

TEST(AnswerParser, ChunkedOnceIsTheOnlyTransferCoding) {
    for (std::string coding : {"gzip", "chunked, gzip", "gzip, chunked", "chunked, chunked", "chunked\r\nTransfer-Encoding: chunked", ""})
        EXPECT_EQ(head_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + "\r\n\r\n"), error::bad_transfer_encoding)
            << coding;

    // HTTP/1.0 has no transfer codings: the answer is read, and its connection not used again.
    answer_parser old;
    auto r = read_in_pieces(old, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "2\r\nzz\r\n0\r\n\r\n", 64, 64);
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.body, "zz");
    EXPECT_FALSE(old.keep_alive());
}

TEST(AnswerParser, AConnectionThatEndsEarlyIsAPartialMessage) {
    for (std::string wire : {std::string(json_answer.substr(0, json_answer.size() - 3)),
                             std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
                             std::string("HTTP/1.1 200 OK\r\nContent-")}) {
        answer_parser parser;
        auto r = read_in_pieces(parser, wire, 4096, 4096, true);
        EXPECT_EQ(r.ec, error::partial_message) << wire;
        EXPECT_FALSE(r.done);
    }
}

TEST(AnswerParser, KeepAliveFollowsTheVersionAndConnection) {
    struct example {
        std::string head;
        bool keep_alive;
    };
    for (const auto& e : {example{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
                          example{"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n", false},
                          example{"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
                          example{"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true}}) {
        answer_parser parser;
        error_code ec;
        parser.put(boost::asio::buffer(e.head), ec);
        ASSERT_FALSE(ec) << e.head;
        EXPECT_TRUE(parser.is_done()) << e.head;
        EXPECT_EQ(parser.keep_alive(), e.keep_alive) << e.head;
    }
}

TEST(AnswerParser, InterimNoContentAndNotModifiedAnswersHaveNoBody) {
    for (std::string head : {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                             "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
                             "HTTP/1.1 304 Not Modified\r\nContent-Length: 120\r\n\r\n"}) {
        answer_parser parser;
        error_code ec;
        const std::size_t used = parser.put(boost::asio::buffer(head), ec);
        ASSERT_FALSE(ec) << head;
        EXPECT_EQ(used, head.size());
        EXPECT_TRUE(parser.is_done()) << head;
        EXPECT_FALSE(parser.chunked()) << head;
    }
}

TEST(AnswerParser, AStatusLineMayLeaveOutTheReason) {
    for (std::string head : {"HTTP/1.1 429\r\n\r\n", "HTTP/1.1 429 \r\n\r\n"}) {
        answer_parser parser;
        error_code ec;
        parser.put(boost::asio::buffer(head), ec);
        ASSERT_FALSE(ec) << head;
        EXPECT_EQ(parser.status(), 429u);
        EXPECT_EQ(parser.reason(), "");
    }
}

TEST(AnswerParser, ResetReadsTheNextAnswerOnTheSameConnection) {
    const std::string two = std::string(json_answer) + "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno";
    boost::beast::flat_buffer buffer;
    buffer.commit(boost::asio::buffer_copy(buffer.prepare(two.size()), boost::asio::buffer(two)));
    answer_parser parser;
    char block[64];
    parser.body() = {block, sizeof block};
    ASSERT_FALSE(parse_buffered(parser, buffer, [](const auto& p) { return p.is_done(); }));
    ASSERT_TRUE(parser.is_done());
    parser.reset();
    parser.body() = {block, sizeof block};
    ASSERT_FALSE(parse_buffered(parser, buffer, [](const auto& p) { return p.is_done(); }));
    ASSERT_TRUE(parser.is_done());
    EXPECT_EQ(parser.status(), 503u);
    EXPECT_EQ(parser.reason(), "Busy");
    ASSERT_EQ(parser.fields().size(), 1u) << "nothing of the first answer is left";
    EXPECT_EQ(std::string_view(block, 2), "no");
    EXPECT_EQ(buffer.size(), 0u);
}

TEST(AnswerParser, RefusesMalformedHeads) {
    const refused_head examples[] = {
        {"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", error::bad_line_ending},
        {"HTTP/1.1 200 OK\r\n\n", error::bad_line_ending},
        {"\r\n", error::bad_version},
        {"HTTP/2 200 OK\r\n\r\n", error::bad_version},
        {"HTTP/2.0 200 OK\r\n\r\n", error::bad_version},
        {"HTTP/1.1200 OK\r\n\r\n", error::bad_version},
        {"http/1.1 200 OK\r\n\r\n", error::bad_version},
        {"HTTP/1.1 20x OK\r\n\r\n", error::bad_status},
        {"HTTP/1.1 099 Low\r\n\r\n", error::bad_status},
        {"HTTP/1.1 2000 OK\r\n\r\n", error::bad_status},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", error::bad_reason},
        {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", error::bad_field},
        {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", error::bad_field},
        {"HTTP/1.1 200 OK\r\n: no name\r\n\r\n", error::bad_field},
        {"HTTP/1.1 200 OK\r\nName : space before colon\r\n\r\n", error::bad_field},
        {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", error::bad_value},
        {"HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", error::bad_value},
        {"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"s, error::bad_value},
        {"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", error::bad_obs_fold},
        {"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", error::bad_content_length},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", error::bad_content_length},
        {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", error::bad_content_length},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", error::bad_content_length},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", error::multiple_content_length},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", error::bad_transfer_encoding},
    };
    for (const auto& e : examples) EXPECT_EQ(head_error(e.head), e.expected) << e.head;

    // The same length twice is one length.
    EXPECT_FALSE(head_error("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n"));
}

TEST(AnswerParser, RefusesMalformedChunks) {
    struct example {
        std::string body;
        error expected;
    };
    const example examples[] = {
        {"zz\r\n", error::bad_chunk},
        {"\r\n", error::bad_chunk},
        {";ext\r\n", error::bad_chunk},
        {"12345678901234567\r\n", error::bad_chunk},  // more than 64 bits
        {"2\r\nabXY", error::bad_chunk},               // no CRLF after the data
        {"2 x\r\nab\r\n", error::bad_chunk_extension},
        {"2;a\x01\r\nab\r\n", error::bad_chunk_extension},
        {"2\nab\r\n", error::bad_line_ending},
        {std::string(5000, '0'), error::bad_chunk},  // a size line that never ends
        {"0\r\nX: a\0b\r\n\r\n"s, error::bad_value},  // trailer fields are checked like the head's
        {"0\r\n folded\r\n\r\n", error::bad_obs_fold},
        {"0\r\nno-colon\r\n\r\n", error::bad_field},
        {"0\r\n\r\r\n", error::bad_line_ending},
    };
    for (const auto& e : examples) {
        answer_parser parser;
        auto r = read_in_pieces(parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + e.body, 4096, 64);
        EXPECT_EQ(r.ec, e.expected) << e.body.substr(0, 40);
    }
}

TEST(AnswerParser, AHeadOrTrailerOverTheLimitIsRefused) {
    answer_parser parser;
    parser.header_limit(64);
    const std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(80, 'v') + "\r\n\r\n";
    error_code ec;
    parser.put(boost::asio::buffer(big), ec);
    EXPECT_EQ(ec, error::header_limit);

    // Still arriving, already too large: refused without waiting for its end.
    answer_parser waiting;
    waiting.header_limit(64);
    waiting.put(boost::asio::buffer(big.data(), 70), ec);
    EXPECT_EQ(ec, error::header_limit);

    answer_parser trailing;
    trailing.header_limit(64);
    auto r = read_in_pieces(trailing, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + std::string(80, 't') + "\r\n\r\n",
                            4096, 64);
    EXPECT_EQ(r.ec, error::header_limit);
}

TEST(AnswerParser, AHeadArrivingInPiecesIsNotConsumedUntilWhole) {
    answer_parser parser;
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (std::size_t n = 0; n < head.size(); ++n) {
        error_code ec;
        EXPECT_EQ(parser.put(boost::asio::buffer(head.data(), n), ec), 0u);
        EXPECT_EQ(ec, error::need_more) << n;
        EXPECT_FALSE(parser.is_header_done());
    }
    EXPECT_TRUE(parser.got_some());
    error_code ec;
    EXPECT_EQ(parser.put(boost::asio::buffer(head), ec), head.size());
    EXPECT_FALSE(ec);
    EXPECT_TRUE(parser.is_done());
}


// ---------------------------------------------------------------------------------------------
// request_parser

constexpr std::string_view chat_request =
    "POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n"
    "Host: spillway:8080\r\n"
    "api-key: sk-1\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "{\"model\":\"x\"}xx";  // and two bytes of whatever comes next

TEST(RequestParser, ReadsTheRequestLineFieldsAndBody) {
    for (std::size_t piece = 1; piece <= chat_request.size(); ++piece) {
        request_parser parser;
        auto r = read_in_pieces(parser, chat_request, piece, 13);
        ASSERT_FALSE(r.ec) << piece << ": " << r.ec.message();
        ASSERT_TRUE(r.done) << piece;
        EXPECT_EQ(r.body, "{\"model\":\"x\"}") << piece;
        EXPECT_EQ(parser.method(), "POST");
        EXPECT_EQ(parser.target(), "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21");
        EXPECT_EQ(parser.version(), 11u);
        EXPECT_EQ(parser["API-KEY"], "sk-1");
        EXPECT_EQ(parser.fields().size(), 4u);
        EXPECT_TRUE(parser.keep_alive());
    }
}

TEST(RequestParser, ARequestWithoutLengthHasNoBody) {
    const std::string two = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.0\r\n\r\n";
    boost::beast::flat_buffer buffer;
    buffer.commit(boost::asio::buffer_copy(buffer.prepare(two.size()), boost::asio::buffer(two)));
    request_parser first;
    ASSERT_FALSE(parse_buffered(first, buffer, [](const auto& p) { return p.is_done(); }));
    EXPECT_TRUE(first.is_done()) << "done with the head: nothing is waited for";
    EXPECT_EQ(first.target(), "/v1/models");
    request_parser second;  // the pipelined request is still in the buffer, whole
    ASSERT_FALSE(parse_buffered(second, buffer, [](const auto& p) { return p.is_done(); }));
    EXPECT_TRUE(second.is_done());
    EXPECT_EQ(second.method(), "GET");
    EXPECT_EQ(second.target(), "/health");
    EXPECT_EQ(second.version(), 10u);
    EXPECT_FALSE(second.keep_alive()) << "HTTP/1.0 without keep-alive";
    EXPECT_EQ(buffer.size(), 0u);
}

// RFC 9112 §2.2: a server ignores empty lines before a request line (a client may send one
// after a body); they are consumed, and the request after them is read whole.
TEST(RequestParser, EmptyLinesBeforeTheRequestLineAreIgnored) {
    const std::string wire = "\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
        request_parser parser;
        auto r = read_in_pieces(parser, wire, piece, 16);
        ASSERT_FALSE(r.ec) << piece << ": " << r.ec.message();
        ASSERT_TRUE(r.done) << piece;
        EXPECT_EQ(parser.target(), "/v1/models");
        EXPECT_EQ(parser["host"], "x");
    }
}

TEST(RequestParser, AChunkedBodyIsDecoded) {
    const std::string wire = "POST /v1/embeddings HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                             "4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
    for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
        request_parser parser;
        auto r = read_in_pieces(parser, wire, piece, 3);
        ASSERT_FALSE(r.ec) << piece << ": " << r.ec.message();
        ASSERT_TRUE(r.done);
        EXPECT_EQ(r.body, "{\"a\":1}");
        EXPECT_TRUE(parser.chunked());
        EXPECT_FALSE(parser.keep_alive());
    }
}

TEST(RequestParser, RefusesMalformedRequests) {
    const refused_head examples[] = {
        {" GET / HTTP/1.1\r\n\r\n", error::bad_method},
        {"\nGET / HTTP/1.1\r\n\r\n", error::bad_method},
        {"GE(T / HTTP/1.1\r\n\r\n", error::bad_method},
        {"GET\t/ HTTP/1.1\r\n\r\n", error::bad_method},
        {"GET  / HTTP/1.1\r\n\r\n", error::bad_target},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", error::bad_target},
        {"GET /a\x7f HTTP/1.1\r\n\r\n", error::bad_target},
        {"GET /\r\n\r\n", error::bad_target},
        {"GET / HTTP/2.0\r\n\r\n", error::bad_version},
        {"GET / HTTP/1.1 \r\n\r\n", error::bad_version},
        {"GET / HTTP/1.1\n\r\n", error::bad_version},
        {"GET / http/1.1\r\n\r\n", error::bad_version},
        {"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n", error::bad_field},
        {"POST / HTTP/1.1\r\nX: y\r\n folded\r\n\r\n", error::bad_obs_fold},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", error::multiple_content_length},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", error::bad_transfer_encoding},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", error::bad_transfer_encoding},
    };
    for (const auto& e : examples) EXPECT_EQ(head_error<request_parser>(e.head), e.expected) << e.head;
}

TEST(RequestParser, ConnectionMayNameAtMost64Options) {
    std::string options = "close";
    for (int i = 1; i < 64; ++i) options += ", x-" + std::to_string(i);
    EXPECT_FALSE(head_error<request_parser>("GET / HTTP/1.1\r\nConnection: " + options + "\r\n\r\n"));
    EXPECT_EQ(head_error<request_parser>("GET / HTTP/1.1\r\nConnection: " + options + "\r\nConnection: one-more\r\n\r\n"),
              error::bad_value);
}

// Offsets into a head are 32 bits: a larger limit is taken as 16 MiB.
TEST(RequestParser, TheHeaderLimitIsAtMost16MiB) {
    request_parser parser;
    parser.header_limit(std::size_t{1} << 40);
    const std::string head = "POST / HTTP/1.1\r\nX-Padding: " + std::string(16 << 20, 'p');
    error_code ec;
    parser.put(boost::asio::buffer(head), ec);
    EXPECT_EQ(ec, error::header_limit);
}

TEST(RequestParser, AHeadOverTheLimitIsRefusedBeforeItEnds) {
    request_parser parser;
    parser.header_limit(100);
    const std::string head = "POST / HTTP/1.1\r\nX-Padding: " + std::string(200, 'p');
    error_code ec;
    parser.put(boost::asio::buffer(head), ec);
    EXPECT_EQ(ec, error::header_limit);
}

}  // namespace
}  // namespace spillway::http
