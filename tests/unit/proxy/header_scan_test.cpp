// Unit tests for proxy/header_scan: the one-pass lookups of the header values spillway acts on.
#include "proxy/header_scan.hpp"

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

#include <string>

namespace spillway::proxy {
namespace {

// A head parsed as spillway parses it: a client's request or an upstream's answer.
template <class Parser>
struct parsed {
    parsed(const std::string& start_line, const std::string& lines) {
        const std::string head = start_line + "\r\n" + lines + "\r\n";
        boost::system::error_code ec;
        parser.put(boost::asio::buffer(head), ec);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_TRUE(parser.is_header_done());
    }
    Parser parser;
};
using request = parsed<http::request_parser>;
using answer = parsed<http::answer_parser>;

TEST(ScanRequestHeaders, FindsKeyFormsAndDataZoneInAnyCase) {
    request req("POST /v1/chat/completions HTTP/1.1",
                            "Host: a\r\nAPI-Key: k1\r\nauthorization: Bearer k2\r\nX-Spillway-Data-Zone: eu\r\n");
    auto h = scan_request_headers(req.parser.fields());
    EXPECT_EQ(h.api_key, "k1");
    EXPECT_EQ(h.authorization, "Bearer k2");
    EXPECT_EQ(h.data_zone, "eu");
}

TEST(ScanRequestHeaders, AbsentFieldsAreEmptyAndLookalikesAreNotTaken) {
    request req("POST / HTTP/1.1", "api-keys: no\r\nx-api-key: no\r\nx-spillway-data-zon: no\r\n");
    auto h = scan_request_headers(req.parser.fields());
    EXPECT_TRUE(h.api_key.empty());
    EXPECT_TRUE(h.authorization.empty());
    EXPECT_TRUE(h.data_zone.empty());
}

TEST(ScanRequestHeaders, ARepeatedFieldCountsByItsFirstOccurrence) {
    request req("POST / HTTP/1.1", "api-key: first\r\napi-key: second\r\nx-spillway-data-zone: \r\n"
                                               "x-spillway-data-zone: later\r\n");
    auto h = scan_request_headers(req.parser.fields());
    EXPECT_EQ(h.api_key, "first");
    EXPECT_EQ(h.api_key, req.parser["api-key"]);  // what a by-name lookup answers
    EXPECT_EQ(h.data_zone, "");           // the first one, empty as it is
}

TEST(ScanAnswerHeaders, FindsAzureSignalsAndContentType) {
    answer res("HTTP/1.1 429 Too Many Requests",
               "Content-Type: application/json\r\nRetry-After: 3\r\nretry-after-ms: 2500\r\n"
               "x-ratelimit-remaining-tokens: 1200\r\nX-RateLimit-Remaining-Requests: 7\r\n"
               "x-ratelimit-limit-tokens: 150000\r\nRetry-After: 9\r\n");
    auto h = scan_answer_headers(res.parser.fields());
    EXPECT_EQ(h.content_type, "application/json");
    EXPECT_EQ(h.retry_after, "3") << "a repeated field counts by its first occurrence";
    EXPECT_EQ(h.retry_after_ms, "2500");
    EXPECT_EQ(h.remaining_tokens, "1200");
    EXPECT_EQ(h.remaining_requests, "7");
}

TEST(ScanAnswerHeaders, AnAnswerWithoutSignalsHasNone) {
    answer res("HTTP/1.1 200 OK", "Content-Type: text/event-stream\r\nx-request-id: r\r\n");
    auto h = scan_answer_headers(res.parser.fields());
    EXPECT_EQ(h.content_type, "text/event-stream");
    EXPECT_TRUE(h.retry_after.empty() && h.retry_after_ms.empty());
    EXPECT_TRUE(h.remaining_tokens.empty() && h.remaining_requests.empty());
}

}  // namespace
}  // namespace spillway::proxy
