// Unit tests for proxy/openai_error: the OpenAI error envelope and the retry-after headers.
#include "proxy/openai_error.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace spillway::proxy {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
namespace bhttp = boost::beast::http;

TEST(OpenaiError, EnvelopeShape) {
    std::string s = error_json("invalid_request_error", "model_not_found", "The model `x` does not exist.");
    json j = json::parse(s);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j.size(), 1u);
    ASSERT_TRUE(j["error"].is_object());
    EXPECT_EQ(j["error"]["message"], "The model `x` does not exist.");
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["code"], "model_not_found");
    EXPECT_TRUE(j["error"]["code"].is_string());
}

TEST(OpenaiError, MessageIsJsonEscaped) {
    const std::string msg = "quote \" backslash \\ newline \n tab \t ctl \x01 unicode \xC3\xA9";
    json j = json::parse(error_json("t", "c", msg));
    EXPECT_EQ(j["error"]["message"], msg);
    // One line, so it can be sent as a single SSE `data:` line.
    EXPECT_EQ(error_json("t", "c", msg).find('\n'), std::string::npos);
}

TEST(OpenaiError, MakeErrorStatusContentTypeAndBody) {
    auto res = make_error(404, "invalid_request_error", "model_not_found", "no such model");
    EXPECT_EQ(res.result_int(), 404u);
    EXPECT_EQ(res.version(), 11u);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(res.body().size()));
    EXPECT_EQ(res.body(), error_json("invalid_request_error", "model_not_found", "no such model"));
    json j = json::parse(res.body());
    EXPECT_EQ(j["error"]["code"], "model_not_found");
    EXPECT_EQ(res.count(bhttp::field::transfer_encoding), 0u);
}

TEST(OpenaiError, MakeErrorKeepsTheStatusAndVersionGiven) {
    for (unsigned status : {400u, 401u, 404u, 405u, 413u, 429u, 431u, 500u, 503u, 504u}) {
        auto res = make_error(status, "t", "c", "m", 10);
        EXPECT_EQ(res.result_int(), status);
        EXPECT_EQ(res.version(), 10u);
    }
}

TEST(OpenaiError, NoRetryAfterUnlessAsked) {
    auto res = make_error(503, "service_unavailable", "no_healthy_deployment", "m");
    EXPECT_EQ(res.count("retry-after"), 0u);
    EXPECT_EQ(res.count("retry-after-ms"), 0u);
}

struct retry_case {
    long long ms;
    const char* seconds;
    const char* millis;
};

TEST(SetRetryAfter, SecondsRoundUpMillisecondsExact) {
    for (auto c : {retry_case{0, "0", "0"}, retry_case{1, "1", "1"}, retry_case{999, "1", "999"},
                   retry_case{1000, "1", "1000"}, retry_case{1001, "2", "1001"}, retry_case{1500, "2", "1500"},
                   retry_case{59001, "60", "59001"}, retry_case{60000, "60", "60000"},
                   retry_case{86'400'000, "86400", "86400000"}}) {
        auto res = make_error(429, "rate_limit_exceeded", "429", "throttled");
        set_retry_after(res, milliseconds(c.ms));
        EXPECT_EQ(res["retry-after"], c.seconds) << c.ms;
        EXPECT_EQ(res["retry-after-ms"], c.millis) << c.ms;
    }
}

TEST(SetRetryAfter, NegativeBecomesZero) {
    auto res = make_error(429, "t", "c", "m");
    set_retry_after(res, milliseconds(-5));
    EXPECT_EQ(res["retry-after"], "0");
    EXPECT_EQ(res["retry-after-ms"], "0");
    set_retry_after(res, milliseconds(-100000));
    EXPECT_EQ(res["retry-after"], "0");
    EXPECT_EQ(res["retry-after-ms"], "0");
}

TEST(SetRetryAfter, SettingTwiceReplaces) {
    auto res = make_error(429, "t", "c", "m");
    set_retry_after(res, milliseconds(5000));
    set_retry_after(res, milliseconds(250));
    EXPECT_EQ(res.count("retry-after"), 1u);
    EXPECT_EQ(res.count("retry-after-ms"), 1u);
    EXPECT_EQ(res["retry-after"], "1");
    EXPECT_EQ(res["retry-after-ms"], "250");
}

TEST(SetRetryAfter, LeavesTheBodyAlone) {
    auto res = make_error(429, "t", "c", "m");
    std::string body = res.body();
    set_retry_after(res, milliseconds(1234));
    EXPECT_EQ(res.body(), body);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
}

// Regression: `body.dump()` uses nlohmann's strict UTF-8 handler and throws json::type_error (316)
// when the message is not valid UTF-8. proxy.cpp puts client-controlled text in messages (the
// body's model in 404 model_not_found — request_body does not validate UTF-8 and decodes surrogate
// escapes into CESU-8 — and the request target in 404 unknown_url), so a request like
// {"model":"\xff"} raises an exception on the data path instead of answering 404.
TEST(OpenaiError, InvalidUtf8InTheMessageDoesNotThrow) {
    const std::string bad = "The model `\xff\xfe` does not exist.";
    std::string s;
    EXPECT_NO_THROW(s = error_json("invalid_request_error", "model_not_found", bad));
    EXPECT_TRUE(json::accept(s)) << s;
    EXPECT_NO_THROW((void)make_error(404, "invalid_request_error", "model_not_found", "cesu \xED\xA0\xBD"));
}

}  // namespace
}  // namespace spillway::proxy
