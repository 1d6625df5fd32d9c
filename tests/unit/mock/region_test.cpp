// A region's decisions without sockets: auth, routing, admission headers, faults, stats.
#include "mock/region.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace spillway::mock {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using request = http::request<http::string_body>;

constexpr const char* chat_path = "/openai/deployments/gpt4o-eastus/chat/completions?api-version=2024-10-21";

region_spec eastus() {
    region_spec r;
    r.name = "eastus";
    r.deployments = {{.name = "gpt4o-eastus", .model = "gpt-4o", .tpm = 1000, .rpm = 600},
                     {.name = "emb-eastus", .model = "text-embedding-3-small"}};
    r.completion_tokens = 4;
    r.default_max_tokens = 100;
    return r;
}

request make_request(http::verb verb, std::string target, std::string body = {}) {
    request req{verb, target, 11};
    req.set("api-key", "mock-key");
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

request chat(std::string extra = {}, std::string target = chat_path) {
    // 8 characters of prompt = 2 tokens; max_tokens 400 -> estimate 402.
    return make_request(http::verb::post, std::move(target),
                        R"({"messages":[{"role":"user","content":"abcdefgh"}],"max_tokens":400)" + extra + "}");
}

std::string header(const action& a, std::string_view name) {
    auto it = a.response.find(name);
    return it == a.response.end() ? std::string{"<absent>"} : std::string{it->value()};
}

json body_json(const action& a) { return json::parse(a.response.body()); }

class region_test : public ::testing::Test {
protected:
    core::manual_clock clock_;
    region region_{eastus(), clock_, 1};
};

TEST_F(region_test, answers_a_chat_request_with_azure_headers) {
    action a = region_.plan(chat());
    ASSERT_EQ(a.what, action::kind::respond);
    EXPECT_EQ(a.response.result_int(), 200u);
    auto j = body_json(a);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_TRUE(j["choices"][0]["message"]["content"].get<std::string>().starts_with("Hello from eastus/gpt4o-eastus"));
    EXPECT_EQ(j["usage"]["prompt_tokens"], 2);
    EXPECT_EQ(j["usage"]["completion_tokens"], 4);
    EXPECT_EQ(header(a, "x-ms-region"), "eastus");
    EXPECT_EQ(header(a, "x-ratelimit-limit-tokens"), "1000");
    EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "598");
    EXPECT_EQ(header(a, "x-ratelimit-limit-requests"), "100");
    EXPECT_EQ(header(a, "x-ratelimit-remaining-requests"), "99");
    EXPECT_NE(header(a, "x-request-id"), "<absent>");
    EXPECT_EQ(header(a, "x-request-id"), header(a, "apim-request-id"));
    EXPECT_EQ(header(a, "Content-Type"), "application/json");
}

TEST_F(region_test, checks_the_key_in_either_header) {
    request bad = chat();
    bad.set("api-key", "wrong");
    action a = region_.plan(bad);
    EXPECT_EQ(a.response.result_int(), 401u);
    EXPECT_EQ(body_json(a)["error"]["code"], "401");
    EXPECT_NE(body_json(a)["error"]["message"].get<std::string>().find("Access denied"), std::string::npos);

    request bearer = chat();
    bearer.erase("api-key");
    bearer.set(http::field::authorization, "Bearer mock-key");
    EXPECT_EQ(region_.plan(bearer).response.result_int(), 200u);
}

TEST_F(region_test, routes_classic_and_v1_forms) {
    EXPECT_EQ(region_.plan(chat({}, "/openai/deployments/nope/chat/completions?api-version=x")).response.result_int(), 404u);
    EXPECT_EQ(body_json(region_.plan(chat({}, "/openai/deployments/nope/chat/completions?api-version=x")))["error"]["code"],
              "DeploymentNotFound");
    // The classic form names deployments, not models.
    EXPECT_EQ(region_.plan(chat({}, "/openai/deployments/gpt-4o/chat/completions?api-version=x")).response.result_int(),
              404u);
    // Without api-version Azure answers 404 Resource not found.
    auto missing = region_.plan(chat({}, "/openai/deployments/gpt4o-eastus/chat/completions"));
    EXPECT_EQ(missing.response.result_int(), 404u);
    EXPECT_EQ(body_json(missing)["error"]["code"], "404");

    // v1: body model may be the deployment name or the model name.
    EXPECT_EQ(region_.plan(chat(R"(,"model":"gpt4o-eastus")", "/openai/v1/chat/completions")).response.result_int(), 200u);
    EXPECT_EQ(region_.plan(chat(R"(,"model":"gpt-4o")", "/v1/chat/completions")).response.result_int(), 200u);
    EXPECT_EQ(region_.plan(chat(R"(,"model":"gpt-5")", "/v1/chat/completions")).response.result_int(), 404u);
    EXPECT_EQ(region_.plan(chat({}, "/v1/chat/completions")).response.result_int(), 400u);  // no model

    auto models = region_.plan(make_request(http::verb::get, "/openai/v1/models"));
    ASSERT_EQ(models.response.result_int(), 200u);
    auto j = body_json(models);
    ASSERT_EQ(j["data"].size(), 2u);
    EXPECT_EQ(j["data"][0]["id"], "gpt4o-eastus");
    EXPECT_EQ(region_.plan(make_request(http::verb::get, "/elsewhere")).response.result_int(), 404u);
}

TEST_F(region_test, malformed_json_is_400) {
    auto a = region_.plan(make_request(http::verb::post, chat_path, "{nope"));
    EXPECT_EQ(a.response.result_int(), 400u);
    EXPECT_EQ(body_json(a)["error"]["type"], "invalid_request_error");
}

TEST_F(region_test, throttles_when_the_token_window_is_full_with_exact_retry_after) {
    ASSERT_EQ(region_.plan(chat()).response.result_int(), 200u);  // t = 0, 402
    clock_.advance(20s);
    ASSERT_EQ(region_.plan(chat()).response.result_int(), 200u);  // t = 20 s, 804
    clock_.advance(10'500ms);                                       // t = 30.5 s
    action a = region_.plan(chat());
    ASSERT_EQ(a.response.result_int(), 429u);
    EXPECT_EQ(header(a, "retry-after-ms"), "29500");  // the first entry leaves at 60 s
    EXPECT_EQ(header(a, "retry-after"), "30");
    EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "196");
    auto msg = body_json(a)["error"]["message"].get<std::string>();
    EXPECT_NE(msg.find("ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded "
                       "token rate limit"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("retry after 30 seconds"), std::string::npos) << msg;

    clock_.advance(29'500ms);
    EXPECT_EQ(region_.plan(chat()).response.result_int(), 200u);
}

TEST_F(region_test, embeddings_use_the_prompt_only_and_honour_base64) {
    auto a = region_.plan(make_request(http::verb::post, "/openai/deployments/emb-eastus/embeddings?api-version=x",
                                       R"({"input":["abcd","efgh"],"encoding_format":"base64"})"));
    ASSERT_EQ(a.response.result_int(), 200u);
    auto j = body_json(a);
    ASSERT_EQ(j["data"].size(), 2u);
    EXPECT_TRUE(j["data"][1]["embedding"].is_string());
    EXPECT_EQ(j["usage"]["prompt_tokens"], 2);
    EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "<absent>");  // unlimited deployment
}

TEST_F(region_test, latency_delays_non_streaming_answers_by_ttft_plus_tokens) {
    region_.set_latency({150ms, 20ms});
    action a = region_.plan(chat());
    EXPECT_EQ(a.delay, 150ms + 4 * 20ms);
    a = region_.plan(make_request(http::verb::post, chat_path,
                                  R"({"messages":[{"role":"user","content":"abcdefgh"}],"max_tokens":2})"));
    // Cut by max_tokens: 2 tokens and finish_reason length.
    EXPECT_EQ(a.delay, 150ms + 2 * 20ms);
    EXPECT_EQ(body_json(a)["choices"][0]["finish_reason"], "length");
}

TEST_F(region_test, streams_as_an_event_list_with_pacing) {
    region_.set_latency({100ms, 10ms});
    action a = region_.plan(chat(R"(,"stream":true,"stream_options":{"include_usage":true})"));
    ASSERT_EQ(a.what, action::kind::stream);
    EXPECT_EQ(header(a, "Content-Type"), "text/event-stream; charset=utf-8");
    EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "598");
    EXPECT_EQ(a.delay, 100ms);
    EXPECT_EQ(a.per_token, 10ms);
    ASSERT_EQ(a.events.size(), 9u);
    EXPECT_EQ(a.events.back().bytes, "data: [DONE]\n\n");
    EXPECT_FALSE(a.reset_after);
}

TEST_F(region_test, throttle_fault_answers_429_with_or_without_retry_headers) {
    region_.set_fault({.mode = fault_mode::throttle, .retry_after_ms = 2500});
    action a = region_.plan(chat());
    EXPECT_EQ(a.response.result_int(), 429u);
    EXPECT_EQ(header(a, "retry-after-ms"), "2500");
    EXPECT_EQ(header(a, "retry-after"), "3");
    EXPECT_EQ(body_json(a)["error"]["code"], "429");
    EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "1000");  // a fault consumes no quota

    region_.set_fault({.mode = fault_mode::throttle, .retry_after_header = false});
    a = region_.plan(chat());
    EXPECT_EQ(a.response.result_int(), 429u);
    EXPECT_EQ(header(a, "retry-after-ms"), "<absent>");
    EXPECT_EQ(header(a, "retry-after"), "<absent>");
}

TEST_F(region_test, error_fault_fires_with_its_rate) {
    region_.set_fault({.mode = fault_mode::error, .status = 503, .rate = 1.0});
    action a = region_.plan(chat());
    EXPECT_EQ(a.response.result_int(), 503u);
    EXPECT_EQ(body_json(a)["error"]["code"], "ServiceUnavailable");
    region_.set_fault({.mode = fault_mode::error, .status = 500, .rate = 0.0});
    EXPECT_EQ(region_.plan(chat()).response.result_int(), 200u);
}

TEST_F(region_test, hang_and_reset_faults) {
    region_.set_fault({.mode = fault_mode::hang});
    EXPECT_EQ(region_.plan(chat()).what, action::kind::hang);
    region_.set_fault({.mode = fault_mode::reset, .after_chunks = 2});
    EXPECT_EQ(region_.plan(chat()).what, action::kind::reset);
    action s = region_.plan(chat(R"(,"stream":true)"));
    ASSERT_EQ(s.what, action::kind::stream);
    EXPECT_EQ(s.reset_after, 2u);
}

TEST_F(region_test, stall_fault_starts_the_answer_then_stops) {
    region_.set_fault({.mode = fault_mode::stall, .after_chunks = 2});
    action s = region_.plan(chat(R"(,"stream":true)"));
    ASSERT_EQ(s.what, action::kind::stream);
    EXPECT_EQ(s.stall_after, 2u);
    EXPECT_FALSE(s.reset_after);
    action a = region_.plan(chat());
    ASSERT_EQ(a.what, action::kind::respond);
    EXPECT_EQ(a.response.result_int(), 200u);
    EXPECT_EQ(a.stall_after, a.response.body().size() / 2);
    EXPECT_GT(*a.stall_after, 0u);
    region_.set_fault({});
    EXPECT_FALSE(region_.plan(chat()).stall_after);
}

TEST_F(region_test, stats_record_the_last_request_and_statuses) {
    request req = chat();
    req.set("x-custom", "yes");
    region_.plan(req);
    request bad = chat();
    bad.set("api-key", "wrong");
    region_.plan(bad);
    region_.count_connection();
    auto s = json::parse(region_.stats_json());
    EXPECT_EQ(s["requests"], 2);
    EXPECT_EQ(s["by_status"]["200"], 1);
    EXPECT_EQ(s["by_status"]["401"], 1);
    EXPECT_EQ(s["connections_accepted"], 1);
    EXPECT_EQ(s["last_request"]["method"], "POST");
    EXPECT_EQ(s["last_request"]["target"], chat_path);
    EXPECT_EQ(s["last_request"]["headers"]["api-key"], "wrong");
    EXPECT_EQ(s["last_request"]["body"], bad.body());

    region_.reset();
    s = json::parse(region_.stats_json());
    EXPECT_EQ(s["requests"], 0);
    EXPECT_TRUE(s["last_request"].is_null());
}

TEST_F(region_test, reset_restores_quota_fault_and_latency) {
    region_.set_fault({.mode = fault_mode::hang});
    region_.set_latency({1s, 1s});
    region_.reset();
    EXPECT_EQ(region_.fault().mode, fault_mode::none);
    EXPECT_EQ(region_.latency().ttft, 0ms);
    ASSERT_EQ(region_.plan(chat()).response.result_int(), 200u);
    ASSERT_EQ(region_.plan(chat()).response.result_int(), 200u);
    ASSERT_EQ(region_.plan(chat()).response.result_int(), 429u);
    region_.reset();
    EXPECT_EQ(region_.plan(chat()).response.result_int(), 200u);
}

TEST(region_fault, parses_control_bodies) {
    fault_spec f;
    ASSERT_TRUE(parse_fault(R"({"mode":"error","status":503,"rate":0.5})", f).empty());
    EXPECT_EQ(f.mode, fault_mode::error);
    EXPECT_EQ(f.status, 503u);
    EXPECT_DOUBLE_EQ(f.rate, 0.5);
    ASSERT_TRUE(parse_fault(R"({"mode":"throttle","retry_after_ms":100,"retry_after_header":false})", f).empty());
    EXPECT_FALSE(f.retry_after_header);
    EXPECT_EQ(f.retry_after_ms, 100u);
    ASSERT_TRUE(parse_fault(R"({"mode":"stall","after_chunks":0})", f).empty());
    EXPECT_EQ(f.mode, fault_mode::stall);
    EXPECT_EQ(f.after_chunks, 0u);
    EXPECT_EQ(parse_fault(R"({"mode":"explode"})", f).size(), 1u);
    EXPECT_EQ(parse_fault(R"({"status":500,"colour":1})", f).size(), 2u);  // unknown key + missing mode
    EXPECT_EQ(parse_fault(R"({"mode":"error","rate":2})", f).size(), 1u);

    latency_spec l{5ms, 6ms};
    ASSERT_TRUE(parse_latency(R"({"ttft_ms":100})", l).empty());
    EXPECT_EQ(l.ttft, 100ms);
    EXPECT_EQ(l.per_token, 6ms);
    EXPECT_EQ(parse_latency(R"({"ttft":100})", l).size(), 1u);
}

}  // namespace
}  // namespace spillway::mock
