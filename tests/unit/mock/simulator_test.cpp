// The simulator over real loopback sockets (port 0) with a Beast client: data plane, quota with a
// manual clock, streaming order, and the control plane's faults. Zero latency everywhere, so no
// test waits on time except the one asserting that `hang` never answers.
#include "mock/simulator.hpp"

#include "core/net.hpp"

#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>

namespace spillway::mock {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace http = beast::http;

constexpr const char* chat_path = "/openai/deployments/gpt4o-eastus/chat/completions?api-version=2024-10-21";
constexpr const char* chat_body = R"({"messages":[{"role":"user","content":"abcdefgh"}],"max_tokens":400})";

struct reply {
    error_code ec;
    bool timed_out = false;
    http::response<http::string_body> res;
    std::string header(std::string_view name) const {
        auto it = res.find(name);
        return it == res.end() ? std::string{"<absent>"} : std::string{it->value()};
    }
};

// Writes synchronously; reads with a deadline so a broken simulator fails a test instead of hanging it.
class client {
public:
    explicit client(std::uint16_t port) { ec_ = connect(port); }

    error_code connect(std::uint16_t port) {
        error_code ec;
        sock_.close(ec);
        sock_.connect({net::ip::make_address("127.0.0.1"), port}, ec);
        buffer_.clear();
        return ec;
    }
    const error_code& connect_error() const { return ec_; }

    reply send(http::verb verb, std::string target, std::string body = {}, std::string key = "mock-key",
               std::chrono::milliseconds deadline = 10s) {
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, "127.0.0.1");
        if (!key.empty()) req.set("api-key", key);
        if (!body.empty()) req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
        reply r;
        http::write(sock_, req, r.ec);
        if (r.ec) return r;
        return read(deadline);
    }

    reply read(std::chrono::milliseconds deadline) {
        reply r;
        http::response_parser<http::string_body> parser;
        bool done = false;
        http::async_read(sock_, buffer_, parser, [&](error_code ec, std::size_t) {
            r.ec = ec;
            done = true;
        });
        io_.restart();
        io_.run_for(deadline);
        if (!done) {
            r.timed_out = true;
            error_code ignored;
            sock_.cancel(ignored);
            io_.restart();
            io_.run();
        }
        r.res = parser.release();  // partial body on error: what arrived before the cut
        return r;
    }

private:
    net::io_context io_;
    tcp::socket sock_{io_};
    beast::flat_buffer buffer_;
    error_code ec_;
};

mock_config two_regions() {
    mock_config cfg;
    cfg.threads = 2;
    cfg.seed = 7;
    for (const char* name : {"eastus", "westus"}) {
        region_spec r;
        r.name = name;
        r.deployments = {{.name = std::string{"gpt4o-"} + name, .model = "gpt-4o", .tpm = 1000, .rpm = 600}};
        r.completion_tokens = 5;
        cfg.regions.push_back(r);
    }
    return cfg;
}

std::vector<std::string> split_events(const std::string& body) {
    std::vector<std::string> events;
    std::size_t pos = 0;
    for (std::size_t end; (end = body.find("\n\n", pos)) != std::string::npos; pos = end + 2)
        events.push_back(body.substr(pos, end - pos));
    return events;
}

class simulator_test : public ::testing::Test {
protected:
    void SetUp() override { sim_.start(); }

    std::uint16_t eastus() const { return sim_.region_port("eastus"); }

    json control(http::verb verb, std::string target, std::string body = {}, unsigned expected = 200) {
        client c{sim_.control_port()};
        reply r = c.send(verb, std::move(target), std::move(body), "");
        EXPECT_FALSE(r.ec) << r.ec.message();
        EXPECT_EQ(r.res.result_int(), expected) << r.res.body();
        return json::parse(r.res.body(), nullptr, false);
    }
    json stats(std::string_view region) { return control(http::verb::get, "/regions/" + std::string{region} + "/stats"); }

    core::manual_clock clock_;
    simulator sim_{two_regions(), clock_};
};

TEST_F(simulator_test, answers_chat_on_a_kept_alive_connection) {
    client c{eastus()};
    ASSERT_FALSE(c.connect_error());
    for (int i = 0; i < 2; ++i) {
        reply r = c.send(http::verb::post, chat_path, chat_body);
        ASSERT_FALSE(r.ec) << r.ec.message();
        ASSERT_EQ(r.res.result_int(), 200u);
        EXPECT_TRUE(r.res.keep_alive());
        auto j = json::parse(r.res.body());
        EXPECT_TRUE(j["choices"][0]["message"]["content"].get<std::string>().starts_with("Hello from eastus/gpt4o-eastus"));
        EXPECT_EQ(j["usage"]["completion_tokens"], 5);
        EXPECT_EQ(r.header("x-ms-region"), "eastus");
        EXPECT_EQ(r.header("x-ratelimit-remaining-tokens"), i == 0 ? "598" : "196");
    }
    auto s = stats("eastus");
    EXPECT_EQ(s["connections_accepted"], 1);
    EXPECT_EQ(s["requests"], 2);
    EXPECT_EQ(s["by_status"]["200"], 2);
    EXPECT_EQ(stats("westus")["requests"], 0);

    // The v1 form on the other region, deployment picked by model name.
    client w{sim_.region_port("westus")};
    reply r = w.send(http::verb::post, "/openai/v1/chat/completions",
                     R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":10})");
    ASSERT_EQ(r.res.result_int(), 200u);
    EXPECT_NE(r.res.body().find("westus/gpt4o-westus"), std::string::npos);
}

TEST_F(simulator_test, streams_azure_events_in_order_ending_with_done) {
    client c{eastus()};
    reply r = c.send(http::verb::post, chat_path,
                     R"({"messages":[{"role":"user","content":"abcdefgh"}],"max_tokens":400,"stream":true,)"
                     R"("stream_options":{"include_usage":true}})");
    ASSERT_FALSE(r.ec) << r.ec.message();
    ASSERT_EQ(r.res.result_int(), 200u);
    EXPECT_TRUE(r.res.chunked());
    EXPECT_EQ(r.header("Content-Type"), "text/event-stream; charset=utf-8");
    EXPECT_EQ(r.header("x-ratelimit-remaining-tokens"), "598");
    auto events = split_events(r.res.body());
    ASSERT_EQ(events.size(), 10u);  // filter, role, 5 tokens, finish, usage, [DONE]
    auto first = json::parse(events[0].substr(6));
    EXPECT_TRUE(first["choices"].empty());
    EXPECT_TRUE(first.contains("prompt_filter_results"));
    EXPECT_EQ(json::parse(events[1].substr(6))["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(json::parse(events[2].substr(6))["choices"][0]["delta"]["content"], "Hello");
    EXPECT_EQ(json::parse(events[7].substr(6))["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(json::parse(events[8].substr(6))["usage"]["total_tokens"], 7);
    EXPECT_EQ(events[9], "data: [DONE]");

    // The connection stays usable after a stream.
    reply again = c.send(http::verb::post, chat_path, chat_body);
    EXPECT_EQ(again.res.result_int(), 200u);
}

TEST_F(simulator_test, rejects_bad_keys_unknown_deployments_and_bad_json) {
    client c{eastus()};
    reply r = c.send(http::verb::post, chat_path, chat_body, "wrong-key");
    EXPECT_EQ(r.res.result_int(), 401u);
    EXPECT_EQ(json::parse(r.res.body())["error"]["code"], "401");
    r = c.send(http::verb::post, "/openai/deployments/gpt4o-nowhere/chat/completions?api-version=2024-10-21", chat_body);
    EXPECT_EQ(r.res.result_int(), 404u);
    EXPECT_EQ(json::parse(r.res.body())["error"]["code"], "DeploymentNotFound");
    r = c.send(http::verb::post, chat_path, "{\"messages\":");
    EXPECT_EQ(r.res.result_int(), 400u);
    auto s = stats("eastus");
    EXPECT_EQ(s["by_status"]["401"], 1);
    EXPECT_EQ(s["by_status"]["404"], 1);
    EXPECT_EQ(s["by_status"]["400"], 1);
}

TEST_F(simulator_test, throttles_once_the_quota_is_used_until_the_window_slides) {
    client c{eastus()};
    ASSERT_EQ(c.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);  // 402 of 1000
    clock_.advance(15s);
    ASSERT_EQ(c.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);  // 804
    reply r = c.send(http::verb::post, chat_path, chat_body);
    ASSERT_EQ(r.res.result_int(), 429u);
    EXPECT_EQ(r.header("retry-after-ms"), "45000");
    EXPECT_EQ(r.header("retry-after"), "45");
    EXPECT_EQ(r.header("x-ratelimit-remaining-tokens"), "196");
    EXPECT_EQ(json::parse(r.res.body())["error"]["code"], "429");

    // Another region has its own quota.
    client w{sim_.region_port("westus")};
    EXPECT_EQ(w.send(http::verb::post, "/openai/deployments/gpt4o-westus/chat/completions?api-version=1", chat_body)
                  .res.result_int(),
              200u);

    clock_.advance(45s);
    EXPECT_EQ(c.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);
}

TEST_F(simulator_test, down_refuses_connections_and_comes_back_on_the_same_port) {
    const std::uint16_t port = eastus();
    client idle{port};
    ASSERT_EQ(idle.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);

    auto state = control(http::verb::post, "/regions/eastus/fault", R"({"mode":"down"})");
    EXPECT_EQ(state["listening"], false);
    EXPECT_EQ(state["fault"]["mode"], "down");

    // The kept-alive connection is closed by the simulator...
    reply cut = idle.read(10s);
    EXPECT_TRUE(cut.ec);
    EXPECT_FALSE(cut.timed_out);
    // ...and new ones are refused.
    client refused{port};
    EXPECT_EQ(refused.connect_error(), net::error::connection_refused);
    // The other region is unaffected.
    client w{sim_.region_port("westus")};
    EXPECT_FALSE(w.connect_error());

    state = control(http::verb::post, "/regions/eastus/fault", R"({"mode":"none"})");
    EXPECT_EQ(state["listening"], true);
    EXPECT_EQ(state["port"], port);
    EXPECT_EQ(sim_.region_port("eastus"), port);
    client back{port};
    ASSERT_FALSE(back.connect_error());
    EXPECT_EQ(back.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);
}

TEST_F(simulator_test, error_and_throttle_faults_are_switchable_at_run_time) {
    client c{eastus()};
    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"error","status":503})");
    reply r = c.send(http::verb::post, chat_path, chat_body);
    EXPECT_EQ(r.res.result_int(), 503u);
    EXPECT_EQ(json::parse(r.res.body())["error"]["code"], "ServiceUnavailable");

    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"throttle","retry_after_ms":1500})");
    r = c.send(http::verb::post, chat_path, chat_body);
    EXPECT_EQ(r.res.result_int(), 429u);
    EXPECT_EQ(r.header("retry-after-ms"), "1500");
    EXPECT_EQ(r.header("retry-after"), "2");

    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"throttle","retry_after_header":false})");
    r = c.send(http::verb::post, chat_path, chat_body);
    EXPECT_EQ(r.res.result_int(), 429u);
    EXPECT_EQ(r.header("retry-after-ms"), "<absent>");

    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"none"})");
    EXPECT_EQ(c.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);
}

TEST_F(simulator_test, reset_fault_closes_without_answer_or_cuts_a_stream) {
    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"reset","after_chunks":2})");
    client c{eastus()};
    reply r = c.send(http::verb::post, chat_path, chat_body);
    EXPECT_TRUE(r.ec);
    EXPECT_FALSE(r.timed_out);

    client s{eastus()};
    r = s.send(http::verb::post, chat_path,
               R"({"messages":[{"role":"user","content":"abcdefgh"}],"stream":true})");
    EXPECT_TRUE(r.ec);  // the chunked body never completes
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.res.result_int(), 200u);
    auto events = split_events(r.res.body());
    EXPECT_EQ(events.size(), 2u);
    EXPECT_EQ(r.res.body().find("[DONE]"), std::string::npos);
}

TEST_F(simulator_test, stall_fault_starts_an_answer_and_leaves_it_open) {
    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"stall","after_chunks":2})");
    client s{eastus()};
    reply r = s.send(http::verb::post, chat_path,
                     R"({"messages":[{"role":"user","content":"abcdefgh"}],"stream":true})", "mock-key", 300ms);
    EXPECT_TRUE(r.timed_out);  // neither the end of the stream nor of the connection came
    EXPECT_EQ(r.res.result_int(), 200u);
    EXPECT_EQ(split_events(r.res.body()).size(), 2u);

    client c{eastus()};
    r = c.send(http::verb::post, chat_path, chat_body, "mock-key", 300ms);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.res.result_int(), 200u);
    const std::size_t announced = std::stoul(r.header("Content-Length"));
    EXPECT_EQ(r.res.body().size(), announced / 2);
    EXPECT_GT(r.res.body().size(), 0u);
}

TEST_F(simulator_test, hang_reads_the_request_and_never_answers) {
    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"hang"})");
    client c{eastus()};
    reply r = c.send(http::verb::post, chat_path, chat_body, "mock-key", 200ms);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(stats("eastus")["requests"], 1);
}

TEST_F(simulator_test, records_the_last_request_for_the_proxy_tests) {
    client c{eastus()};
    c.send(http::verb::post, chat_path, chat_body);
    auto last = stats("eastus")["last_request"];
    EXPECT_EQ(last["method"], "POST");
    EXPECT_EQ(last["target"], chat_path);
    EXPECT_EQ(last["headers"]["api-key"], "mock-key");
    EXPECT_EQ(last["headers"]["Content-Type"], "application/json");
    EXPECT_EQ(last["body"], chat_body);
}

TEST_F(simulator_test, control_plane_lists_regions_sets_latency_and_resets) {
    auto regions = control(http::verb::get, "/regions");
    ASSERT_EQ(regions["regions"].size(), 2u);
    EXPECT_EQ(regions["regions"][0]["name"], "eastus");
    EXPECT_EQ(regions["regions"][0]["port"], eastus());
    EXPECT_EQ(regions["regions"][1]["deployments"][0]["name"], "gpt4o-westus");

    auto state = control(http::verb::post, "/regions/westus/latency", R"({"ttft_ms":250,"token_ms":5})");
    EXPECT_EQ(state["latency"]["ttft_ms"], 250);
    EXPECT_EQ(state["latency"]["token_ms"], 5);

    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"bogus"})", 400);
    control(http::verb::post, "/regions/nowhere/fault", R"({"mode":"none"})", 404);

    client c{eastus()};
    c.send(http::verb::post, chat_path, chat_body);
    c.send(http::verb::post, chat_path, chat_body);
    ASSERT_EQ(c.send(http::verb::post, chat_path, chat_body).res.result_int(), 429u);
    control(http::verb::post, "/regions/eastus/fault", R"({"mode":"down"})");

    control(http::verb::post, "/reset");
    regions = control(http::verb::get, "/regions");
    EXPECT_EQ(regions["regions"][0]["listening"], true);
    EXPECT_EQ(regions["regions"][0]["fault"]["mode"], "none");
    EXPECT_EQ(regions["regions"][0]["stats"]["requests"], 0);
    EXPECT_EQ(regions["regions"][0]["deployments"][0]["remaining_tokens"], 1000);
    EXPECT_EQ(regions["regions"][1]["latency"]["ttft_ms"], 0);
    client after{eastus()};
    EXPECT_EQ(after.send(http::verb::post, chat_path, chat_body).res.result_int(), 200u);
}

TEST(simulator, stop_is_idempotent_and_frees_the_ports) {
    core::manual_clock clock;
    std::uint16_t port = 0;
    {
        simulator sim{two_regions(), clock};
        sim.start();
        port = sim.region_port("eastus");
        client c{port};  // an open connection must not block stop()
        ASSERT_FALSE(c.connect_error());
        sim.stop();
        sim.stop();
        EXPECT_THROW((void)sim.region_port("nowhere"), std::out_of_range);
    }
    client c{port};
    EXPECT_EQ(c.connect_error(), net::error::connection_refused);
}

}  // namespace
}  // namespace spillway::mock
