// The data plane end to end: the real spillway binary in front of spillway-mock regions.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

namespace spillway::testing {
namespace {

const header_list client_key = {{"api-key", "sk-test-client"}};
const header_list bearer_key = {{"Authorization", "Bearer sk-test-client"}};
using steady = std::chrono::steady_clock;

json mock_region(const std::string& name, int ttft_ms = 0, int token_ms = 0) {
    return {{"name", name}, {"port", 0}, {"api_key", "upstream-key-" + name}, {"ttft_ms", ttft_ms},
            {"token_ms", token_ms}, {"completion_tokens", 20},
            {"deployments", json::array({{{"name", "gpt4o-" + name}, {"model", "gpt-4o"}},
                                         {{"name", "emb-" + name}, {"model", "text-embedding-3-small"}}})}};
}

json proxy_region(const mock_server& mock, const std::string& name, int priority) {
    return {{"name", name}, {"endpoint", "http://127.0.0.1:" + std::to_string(mock.port(name))},
            {"api_key", "upstream-key-" + name}, {"priority", priority},
            {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "gpt4o-" + name}},
                                         {{"model", "text-embedding-3-small"}, {"name", "emb-" + name}}})}};
}

json chat(const std::string& model = "gpt-4o", bool stream = false) {
    json body = {{"model", model}, {"messages", json::array({{{"role", "user"}, {"content", "Hello there"}}})}};
    if (stream) body["stream"] = true;
    return body;
}

class DataPlane : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        mock_ = new mock_server(json{{"regions", json::array({mock_region("primary"), mock_region("secondary")})}});
    }
    static void TearDownTestSuite() { delete mock_; }
    // A fresh proxy per test: health state (cooldowns, open circuits) must not leak between tests.
    void SetUp() override {
        mock_->reset();
        start_proxy(4096);
    }
    void start_proxy(std::uint64_t max_body_bytes, int header_timeout_ms = 600) {
        json cfg = {{"workers", 1},
                    {"auth", {{"keys", json::array({{{"name", "tests"}, {"key", "sk-test-client"}}})}}},
                    {"limits", {{"max_body_bytes", max_body_bytes}, {"header_timeout_ms", header_timeout_ms}}},
                    {"routing", {{"request_timeout_ms", 5000}, {"connect_timeout_ms", 500}}},
                    {"regions", json::array({proxy_region(*mock_, "primary", 0), proxy_region(*mock_, "secondary", 1)})}};
        proxy_.reset();
        proxy_ = std::make_unique<proxy_server>(cfg);
    }

    static mock_server* mock_;
    std::unique_ptr<proxy_server> proxy_;
};
mock_server* DataPlane::mock_ = nullptr;

TEST_F(DataPlane, ChatOnEveryUrlForm) {
    for (std::string target : {"/v1/chat/completions", "/openai/v1/chat/completions",
                               "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                               "/openai/deployments/gpt4o-secondary/chat/completions?api-version=2024-10-21"}) {
        auto r = post_json(proxy_->port(), target, chat(), client_key);
        ASSERT_EQ(r.status, 200) << target << ": " << r.body;
        EXPECT_EQ(r.header("x-spillway-region"), "primary") << target;
        EXPECT_EQ(r.header("x-spillway-deployment"), "gpt4o-primary") << target;
        EXPECT_EQ(r.header("x-spillway-attempts"), "1");
        EXPECT_FALSE(r.header("x-request-id").empty()) << "upstream correlation id passed back";
        auto body = r.json_body();
        EXPECT_EQ(body["object"], "chat.completion");
        EXPECT_GT(body["usage"]["total_tokens"].get<int>(), 0);
    }
}

TEST_F(DataPlane, UpstreamSeesRegionKeyAndDeploymentUrlNeverClientKey) {
    auto r = post_json(proxy_->port(), "/v1/chat/completions", chat(), bearer_key);
    ASSERT_EQ(r.status, 200) << r.body;
    auto last = mock_->stats("primary")["last_request"];
    EXPECT_EQ(last["target"], "/openai/deployments/gpt4o-primary/chat/completions?api-version=2024-10-21");
    const auto& headers = last["headers"];
    std::string all = headers.dump();
    EXPECT_EQ(all.find("sk-test-client"), std::string::npos) << all;
    bool has_region_key = false;
    for (auto it = headers.begin(); it != headers.end(); ++it) {
        std::string name = it.key();
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        EXPECT_NE(name, "authorization");
        if (name == "api-key") has_region_key = it.value() == "upstream-key-primary";
    }
    EXPECT_TRUE(has_region_key) << all;
}

TEST_F(DataPlane, Embeddings) {
    auto r = post_json(proxy_->port(), "/v1/embeddings", {{"model", "text-embedding-3-small"}, {"input", "hi"}}, client_key);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-spillway-deployment"), "emb-primary");
    EXPECT_EQ(r.json_body()["data"][0]["object"], "embedding");
}

TEST_F(DataPlane, ModelsListedLocally) {
    auto r = http_call(proxy_->port(), "GET", "/v1/models", "", client_key);
    ASSERT_EQ(r.status, 200);
    std::vector<std::string> ids;
    json body = r.json_body();
    for (const auto& m : body["data"]) ids.push_back(m["id"]);
    EXPECT_EQ(ids, (std::vector<std::string>{"gpt-4o", "text-embedding-3-small"}));
    EXPECT_EQ(http_call(proxy_->port(), "GET", "/openai/v1/models", "", client_key).status, 200);
    EXPECT_EQ(mock_->stats("primary")["requests"], 0) << "answered without an upstream";
}

TEST_F(DataPlane, StreamingEndsWithDoneAndKeepsAzureQuirks) {
    auto r = stream_call(proxy_->port(), "/v1/chat/completions", chat("gpt-4o", true), client_key);
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(r.headers["content-type"].starts_with("text/event-stream"));
    EXPECT_TRUE(r.clean_end);
    std::string body = r.body();
    EXPECT_NE(body.find("prompt_filter_results"), std::string::npos);
    EXPECT_NE(body.find("data: [DONE]"), std::string::npos);
}

TEST_F(DataPlane, ErrorsUseTheOpenAIEnvelope) {
    struct case_t {
        std::string what;
        http_reply reply;
        int status;
        std::string code;
    };
    std::vector<case_t> cases = {
        {"no key", post_json(proxy_->port(), "/v1/chat/completions", chat(), {}), 401, "invalid_api_key"},
        {"wrong key", post_json(proxy_->port(), "/v1/chat/completions", chat(), {{"api-key", "sk-wrong"}}), 401,
         "invalid_api_key"},
        {"unknown model", post_json(proxy_->port(), "/v1/chat/completions", chat("gpt-9"), client_key), 404,
         "model_not_found"},
        {"bad json", http_call(proxy_->port(), "POST", "/v1/chat/completions", "{\"model\": ", client_key), 400,
         "invalid_json"},
        {"missing model", post_json(proxy_->port(), "/v1/chat/completions", {{"messages", json::array()}}, client_key),
         400, "missing_model"},
        {"too large", http_call(proxy_->port(), "POST", "/v1/chat/completions", std::string(5000, ' '), client_key), 413,
         "request_too_large"},
        {"unknown url", post_json(proxy_->port(), "/v2/whatever", chat(), client_key), 404, "unknown_url"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(c.reply.status, c.status) << c.what << ": " << c.reply.body;
        auto body = json::parse(c.reply.body, nullptr, false);
        ASSERT_TRUE(body.contains("error")) << c.what << ": " << c.reply.body;
        EXPECT_EQ(body["error"]["code"], c.code) << c.what;
        EXPECT_TRUE(body["error"]["message"].is_string()) << c.what;
        EXPECT_TRUE(body["error"]["type"].is_string()) << c.what;
    }
    EXPECT_EQ(mock_->stats("primary")["requests"], 0) << "no rejected request reaches an upstream";
    EXPECT_EQ(post_json(proxy_->port(), "/v1/chat/completions", chat(), client_key).status, 200) << "still serving";
}

TEST_F(DataPlane, ContentLengthWithTransferEncodingIsRefusedOnce) {
    std::string body = R"({"model":"gpt-4o","messages":[]})";
    std::string smuggle = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\nTransfer-Encoding: chunked\r\n\r\n" + body +
                          "GET /v1/models HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n\r\n";
    auto r = raw_exchange(proxy_->port(), smuggle);
    EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 400")) << r.bytes;
    EXPECT_EQ(count_status_lines(r.bytes), 1) << "no second response: " << r.bytes;
    EXPECT_TRUE(r.closed_by_server);
    EXPECT_EQ(mock_->stats("primary")["requests"], 0);
}

// A chunked request body reaches the upstream whole, with a Content-Length of its own; one that
// grows past max_body_bytes (4096 here) is refused with a 413, like a declared length would be.
TEST_F(DataPlane, AChunkedRequestBodyIsForwardedWholeAndBoundedByTheLimit) {
    const std::string body = chat().dump();
    auto chunks = [](const std::string& data, std::size_t piece) {
        std::string out;
        for (std::size_t at = 0; at < data.size(); at += piece) {
            const std::string part = data.substr(at, piece);
            char size[16];
            std::snprintf(size, sizeof size, "%zx", part.size());
            out += std::string(size) + ";ext=1\r\n" + part + "\r\n";
        }
        return out;
    };
    const std::string last_chunk = "0\r\nx-trailer: t\r\n\r\n";
    const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    auto ok = raw_exchange(proxy_->port(), head + chunks(body, 7) + last_chunk);
    EXPECT_TRUE(ok.bytes.starts_with("HTTP/1.1 200")) << ok.bytes.substr(0, 300);
    auto last = mock_->stats("primary")["last_request"];
    EXPECT_EQ(last["body"], body);
    bool has_length = false;
    for (auto it = last["headers"].begin(); it != last["headers"].end(); ++it) {
        std::string name = it.key();
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        EXPECT_NE(name, "transfer-encoding");
        EXPECT_NE(name, "x-trailer");
        if (name == "content-length") has_length = it.value() == std::to_string(body.size());
    }
    EXPECT_TRUE(has_length) << last["headers"].dump();

    const auto requests_before = mock_->stats("primary")["requests"].get<int>();
    auto big = raw_exchange(proxy_->port(), head + chunks(std::string(5000, ' '), 1000) + last_chunk);
    EXPECT_TRUE(big.bytes.starts_with("HTTP/1.1 413")) << big.bytes.substr(0, 300);
    EXPECT_NE(big.bytes.find("request_too_large"), std::string::npos) << big.bytes;
    EXPECT_TRUE(big.closed_by_server);
    EXPECT_EQ(mock_->stats("primary")["requests"].get<int>(), requests_before);

    // Exactly the limit, its last chunk arriving later: not over the limit (the body is not JSON).
    auto exact = trickle(proxy_->port(), {head + chunks(std::string(4096, ' '), 4096), last_chunk}, 200ms, 5s);
    EXPECT_TRUE(exact.bytes.starts_with("HTTP/1.1 400")) << exact.bytes.substr(0, 300);
    EXPECT_NE(exact.bytes.find("invalid_json"), std::string::npos) << exact.bytes;
    // One byte over, its last chunk in the same write: over the limit all the same.
    auto one_over = raw_exchange(proxy_->port(), head + chunks(std::string(4097, ' '), 4097) + last_chunk);
    EXPECT_TRUE(one_over.bytes.starts_with("HTTP/1.1 413")) << one_over.bytes.substr(0, 300);

    auto gzip = raw_exchange(proxy_->port(), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                                             "Transfer-Encoding: gzip\r\n\r\nzz");
    EXPECT_TRUE(gzip.bytes.starts_with("HTTP/1.1 400")) << "a request's length must be known: " << gzip.bytes;
    EXPECT_TRUE(gzip.closed_by_server);
}

// A body larger than the server's first 16 KiB of room arrives whole, declared or chunked, and
// however it is split into writes.
TEST_F(DataPlane, ABodyLargerThanTheFirstWindowArrivesWhole) {
    start_proxy(1 << 20);
    json large = chat();
    large["messages"][0]["content"] = std::string(200000, 'a');
    const std::string body = large.dump();
    const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                             "Content-Type: application/json\r\nConnection: close\r\n";
    std::vector<std::string> declared{head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"};
    std::vector<std::string> chunked{head + "Transfer-Encoding: chunked\r\n\r\n"};
    for (std::size_t at = 0; at < body.size(); at += 50000) {
        const std::string part = body.substr(at, 50000);
        declared.push_back(part);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        chunked.push_back(size + part + "\r\n");
    }
    chunked.push_back("0\r\n\r\n");
    for (const auto& writes : {declared, chunked}) {
        auto r = trickle(proxy_->port(), writes, 20ms, 5s);
        EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 200")) << r.bytes.substr(0, 300);
        EXPECT_EQ(mock_->stats("primary")["last_request"]["body"], body);
    }
}

// curl sends `Expect: 100-continue` with larger bodies and waits up to a second for the go-ahead.
TEST_F(DataPlane, AClientThatExpectsContinueIsToldToGoOn) {
    const std::string body = chat().dump();
    const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                             "Content-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\n"
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    auto r = trickle(proxy_->port(), {head, body}, 300ms, 5s);
    EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")) << r.bytes.substr(0, 300);
}

// A request with a wrong key, or to a URL spillway does not serve, is answered as soon as its
// head is read, before its body comes; the body is then read and dropped, and the connection
// serves again.
TEST_F(DataPlane, ARequestItsHeadRefusesIsAnsweredBeforeItsBodyComes) {
    const std::string body(4000, ' ');
    const std::string models = "GET /v1/models HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\nConnection: close\r\n\r\n";
    struct case_t {
        std::string what, target, key;
        int status;
        std::string code;
    } cases[] = {
        {"wrong key", "POST /v1/chat/completions", "api-key: sk-wrong\r\n", 401, "invalid_api_key"},
        {"no key", "POST /v1/chat/completions", "", 401, "invalid_api_key"},
        {"unknown url", "POST /v1/nothing/here", "api-key: sk-test-client\r\n", 404, "unknown_url"},
        {"wrong method", "PUT /v1/chat/completions", "api-key: sk-test-client\r\n", 405, "method_not_allowed"},
    };
    for (const auto& c : cases) {
        raw_client client(proxy_->port());
        ASSERT_TRUE(client.send(c.target + " HTTP/1.1\r\nHost: x\r\n" + c.key +
                                "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"));
        const auto answer = client.receive(steady::now() + 3s, holds_whole_response);
        EXPECT_TRUE(answer.starts_with("HTTP/1.1 " + std::to_string(c.status) + " ")) << c.what << ": " << answer;
        EXPECT_NE(answer.find("\"code\":\"" + c.code + "\""), std::string::npos) << c.what << ": " << answer;
        EXPECT_NE(answer.find("x-spillway-request-id: "), std::string::npos) << c.what << ": " << answer;
        EXPECT_EQ(answer.find("Connection: close"), std::string::npos) << c.what << ": the connection serves again";
        // The body comes after the answer, and the next request on the connection is served.
        ASSERT_TRUE(client.send(body + models)) << c.what;
        const auto next = client.receive(steady::now() + 5s);
        EXPECT_TRUE(next.starts_with("HTTP/1.1 200 OK\r\n")) << c.what << ": " << next.substr(0, 300);
        EXPECT_NE(next.find("\"object\":\"list\""), std::string::npos) << c.what << ": " << next;
        EXPECT_TRUE(client.closed_by_server()) << c.what;
    }

    // A client that waits for 100 Continue is told no instead, and sends no body: the connection closes.
    raw_client waiting(proxy_->port());
    ASSERT_TRUE(waiting.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Expect: 100-continue\r\nContent-Length: 4000\r\n\r\n"));
    const auto no = waiting.receive(steady::now() + 3s);
    EXPECT_TRUE(no.starts_with("HTTP/1.1 401 ")) << no;
    EXPECT_EQ(count_status_lines(no), 1) << "no 100 Continue first: " << no;
    EXPECT_NE(no.find("Connection: close"), std::string::npos) << no;
    EXPECT_TRUE(waiting.closed_by_server());

    // A dropped body is still bounded by max_body_bytes (4096 here): over it, the connection
    // closes after the refusal, and what follows is not read as a request.
    auto over = raw_exchange(proxy_->port(),
                             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-wrong\r\n"
                             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "1389\r\n" + std::string(5001, ' ') + "\r\n0\r\n\r\n" + models);
    EXPECT_TRUE(over.bytes.starts_with("HTTP/1.1 401 ")) << over.bytes;
    EXPECT_EQ(count_occurrences(over.bytes, "HTTP/1.1 "), 1) << over.bytes;
    EXPECT_TRUE(over.closed_by_server);

    // Counted like any other refusal.
    const std::string text = http_call(proxy_->admin_port(), "GET", "/metrics").body;
    EXPECT_EQ(metric(text, "spillway_requests_total", {"code=\"401\""}).value_or(0), 4) << series_of(text, "spillway_requests_total");
    EXPECT_EQ(metric(text, "spillway_requests_total", {"code=\"404\""}).value_or(0), 1) << series_of(text, "spillway_requests_total");
    EXPECT_EQ(metric(text, "spillway_requests_total", {"code=\"405\""}).value_or(0), 1) << series_of(text, "spillway_requests_total");
    EXPECT_EQ(mock_->stats("primary")["requests"], 0);
}

// A refused request's body is read only so that the client can read its answer: all of it must
// come within header_timeout (600 ms here) of the refusal, however steadily it trickles in
// (each piece well within idle_timeout, 120 s, of the last).
TEST_F(DataPlane, ARefusedRequestsBodyMustComeWithinTheHeaderTimeout) {
    raw_client client(proxy_->port());
    ASSERT_TRUE(client.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-wrong\r\n"
                            "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"));
    const auto answer = client.receive(steady::now() + 3s, holds_whole_response);
    ASSERT_TRUE(answer.starts_with("HTTP/1.1 401 ")) << answer;
    const auto refused_at = steady::now();
    // 10 bytes every 100 ms: 300 of the 4000 in the 3 s the test waits.
    while (!client.closed_by_server() && steady::now() - refused_at < 3s) {
        if (!client.send(std::string(10, ' '))) break;
        client.receive(steady::now() + 100ms);
    }
    const auto open_for = steady::now() - refused_at;
    EXPECT_TRUE(client.closed_by_server() || open_for < 3s) << "still open after 3 s";
    EXPECT_GE(open_for, 400ms) << "the body had its header_timeout";
    EXPECT_LT(open_for, 2s) << "closed about header_timeout after the refusal";
}

// A client that sends all of a large body before it reads still gets the refusal (closing with
// the body unread would make the kernel reset the connection), and so does one whose chunked
// body came whole; both connections serve again.
TEST_F(DataPlane, ARefusedRequestsBodyIsReadAndDropped) {
    start_proxy(8 << 20, 5000);  // time for 8 MiB bodies in a sanitizer build too
    const std::string models = "GET /v1/models HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\nConnection: close\r\n\r\n";
    const std::string large(6 << 20, ' ');
    auto r = raw_exchange(proxy_->port(),
                          "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-wrong\r\n"
                          "Content-Type: application/json\r\nContent-Length: " + std::to_string(large.size()) +
                              "\r\n\r\n" + large + models,
                          10s);
    EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 401 ")) << r.bytes.substr(0, 300);
    // (Answers follow each other without a line break: a JSON body does not end with one.)
    EXPECT_EQ(count_occurrences(r.bytes, "HTTP/1.1 "), 2) << r.bytes.substr(0, 600);
    EXPECT_NE(r.bytes.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << r.bytes.substr(0, 600);

    auto chunked = raw_exchange(proxy_->port(),
                                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-wrong\r\n"
                                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n" + models);
    EXPECT_TRUE(chunked.bytes.starts_with("HTTP/1.1 401 ")) << chunked.bytes.substr(0, 300);
    EXPECT_EQ(count_occurrences(chunked.bytes, "HTTP/1.1 "), 2) << chunked.bytes.substr(0, 600);
    EXPECT_NE(chunked.bytes.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << chunked.bytes.substr(0, 600);

    // The limit (8 MiB) holds to the byte for a dropped chunked body too: exactly the limit is
    // read and the connection serves again; one byte more and it closes after the refusal.
    auto chunked_of = [&](std::size_t bytes) {
        std::string out = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-wrong\r\n"
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (std::size_t left = bytes; left > 0;) {
            const std::size_t n = std::min<std::size_t>(left, 1 << 20);
            char size_line[32];
            std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
            out += size_line + std::string(n, ' ') + "\r\n";
            left -= n;
        }
        return out + "0\r\n\r\n" + models;
    };
    auto exact = raw_exchange(proxy_->port(), chunked_of(8 << 20), 10s);
    EXPECT_TRUE(exact.bytes.starts_with("HTTP/1.1 401 ")) << exact.bytes.substr(0, 300);
    EXPECT_EQ(count_occurrences(exact.bytes, "HTTP/1.1 "), 2) << exact.bytes.substr(0, 600);
    auto over = raw_exchange(proxy_->port(), chunked_of((8 << 20) + 1), 10s);
    EXPECT_TRUE(over.bytes.starts_with("HTTP/1.1 401 ")) << over.bytes.substr(0, 300);
    EXPECT_EQ(count_occurrences(over.bytes, "HTTP/1.1 "), 1) << over.bytes.substr(0, 600);
    EXPECT_TRUE(over.closed_by_server);
}

// Whether the connection serves again is the client's to say (its Connection header, or HTTP/1.0's
// default), for proxied answers and for spillway's own.
TEST_F(DataPlane, TheClientsConnectionHeaderDecidesWhetherTheConnectionStaysOpen) {
    const std::string body = chat().dump();
    auto request = [&](const std::string& version, const std::string& connection) {
        return "POST /v1/chat/completions " + version + "\r\nHost: x\r\napi-key: sk-test-client\r\n" + connection +
               "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    };
    // (Answers follow each other without a line break: a JSON body does not end with one.)
    const std::string models = "GET /v1/models HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n\r\n";

    auto kept = raw_exchange(proxy_->port(), request("HTTP/1.1", "") + models, 1s);
    EXPECT_EQ(count_occurrences(kept.bytes, "HTTP/1.1 200 OK"), 2) << kept.bytes;
    EXPECT_FALSE(kept.closed_by_server) << "HTTP/1.1 stays open by default";

    auto closed = raw_exchange(proxy_->port(), request("HTTP/1.1", "Connection: close\r\n") + models, 5s);
    EXPECT_TRUE(closed.bytes.starts_with("HTTP/1.1 200")) << closed.bytes;
    EXPECT_EQ(count_occurrences(closed.bytes, "HTTP/1.1 200 OK"), 1) << "nothing after the closing request is served: " << closed.bytes;
    EXPECT_NE(closed.bytes.find("Connection: close"), std::string::npos) << closed.bytes;
    EXPECT_TRUE(closed.closed_by_server);

    auto old = raw_exchange(proxy_->port(), request("HTTP/1.0", ""), 5s);
    EXPECT_TRUE(old.bytes.starts_with("HTTP/1.0 200")) << old.bytes;
    EXPECT_TRUE(old.closed_by_server) << "HTTP/1.0 closes unless asked to keep alive";

    auto own = raw_exchange(proxy_->port(), "GET /v1/models HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                                            "Connection: close\r\n\r\n" + models, 5s);
    EXPECT_EQ(count_occurrences(own.bytes, "HTTP/1.1 200 OK"), 1) << own.bytes;
    EXPECT_TRUE(own.closed_by_server);
}

// Some clients send an empty line after a body; the next request on the connection still counts.
TEST_F(DataPlane, AnEmptyLineBetweenRequestsIsIgnored) {
    const std::string body = chat().dump();
    const std::string chat_request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                                     "Content-Type: application/json\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body;
    const std::string models = "GET /v1/models HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\nConnection: close\r\n\r\n";
    auto r = raw_exchange(proxy_->port(), chat_request + "\r\n" + models, 5s);
    EXPECT_EQ(count_occurrences(r.bytes, "HTTP/1.1 200 OK"), 2) << r.bytes;
    EXPECT_TRUE(r.closed_by_server);
}

// A client that sends a whole large body before reading must still get the 413, not a reset:
// the server reads away what is in flight before it closes.
TEST_F(DataPlane, AnOversizedUploadStillReadsIts413) {
    std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: sk-test-client\r\n"
                       "Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
    auto r = raw_exchange(proxy_->port(), head + std::string(1048576, ' '), 5s);
    EXPECT_TRUE(r.bytes.starts_with("HTTP/1.1 413")) << r.bytes.substr(0, 200);
    EXPECT_NE(r.bytes.find("request_too_large"), std::string::npos);
}

TEST_F(DataPlane, SlowHeadersAreCutOffAtHeaderTimeout) {
    std::vector<std::string> lines = {"POST /v1/chat/completions HTTP/1.1\r\n"};
    for (int i = 0; i < 20; ++i) lines.push_back("x-slow-" + std::to_string(i) + ": 1\r\n");
    auto r = trickle(proxy_->port(), lines, 100ms, 5s);
    EXPECT_TRUE(r.closed_by_server);
    EXPECT_EQ(r.bytes.find("200 OK"), std::string::npos);
    EXPECT_GE(r.elapsed, 500ms);
    EXPECT_LT(r.elapsed, 1500ms) << "header_timeout_ms is 600";
    EXPECT_EQ(post_json(proxy_->port(), "/v1/chat/completions", chat(), client_key).status, 200) << "still serving";
}

TEST_F(DataPlane, FailsOverWhenThePrimaryRefusesConnections) {
    mock_->fault("primary", {{"mode", "down"}});
    auto r = post_json(proxy_->port(), "/v1/chat/completions", chat(), client_key);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-spillway-region"), "secondary");
    EXPECT_EQ(r.header("x-spillway-attempts"), "2");
    mock_->fault("primary", {{"mode", "none"}});
}

TEST_F(DataPlane, FailsOverOnRetryableStatuses) {
    for (json fault : {json{{"mode", "error"}, {"status", 503}}, json{{"mode", "throttle"}, {"retry_after_ms", 3000}}}) {
        mock_->fault("primary", fault);
        auto r = post_json(proxy_->port(), "/v1/chat/completions", chat(), client_key);
        ASSERT_EQ(r.status, 200) << fault.dump() << ": " << r.body;
        EXPECT_EQ(r.header("x-spillway-region"), "secondary") << fault.dump();
        EXPECT_EQ(r.header("x-spillway-attempts"), "2");
        mock_->fault("primary", {{"mode", "none"}});
    }
}

TEST_F(DataPlane, NonRetryableUpstreamAnswerPassesThroughUnchanged) {
    mock_->fault("primary", {{"mode", "error"}, {"status", 400}});
    auto r = post_json(proxy_->port(), "/v1/chat/completions", chat(), client_key);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.header("x-spillway-region"), "primary");
    EXPECT_EQ(mock_->stats("secondary")["requests"], 0);
    mock_->fault("primary", {{"mode", "none"}});
}

TEST_F(DataPlane, BrokenStreamEndsWithAnErrorEvent) {
    mock_->fault("primary", {{"mode", "reset"}, {"after_chunks", 3}});
    auto r = stream_call(proxy_->port(), "/v1/chat/completions", chat("gpt-4o", true), client_key);
    EXPECT_EQ(r.status, 200);
    std::string body = r.body();
    EXPECT_NE(body.find("data: {\"error\""), std::string::npos) << body;
    EXPECT_EQ(body.find("[DONE]"), std::string::npos);
    EXPECT_TRUE(r.clean_end) << "the chunked stream is terminated properly";
    mock_->fault("primary", {{"mode", "none"}});
}

// A streamed answer is relayed as the upstream produces it: 20 chunks 50 ms apart must reach
// the client spread out, the first soon after the upstream's first byte.
TEST(Streaming, EventsArriveAsTheUpstreamSendsThem) {
    mock_server mock(json{{"regions", json::array({mock_region("paced", 200, 50)})}});
    json cfg = {{"workers", 1}, {"auth", {{"mode", "none"}}},
                {"regions", json::array({proxy_region(mock, "paced", 0)})}};
    proxy_server proxy(cfg);
    auto r = stream_call(proxy.port(), "/v1/chat/completions", chat("gpt-4o", true), {});
    ASSERT_EQ(r.status, 200);
    ASSERT_GE(r.pieces.size(), 15u) << "events were batched instead of relayed one by one";
    auto first = r.pieces.front().at - r.sent_at;
    auto spread = r.pieces.back().at - r.pieces.front().at;
    // The mock sends its first byte at ttft = 200 ms.
    EXPECT_LT(first, 300ms);
    EXPECT_GT(spread, 19 * 50ms * 8 / 10);
}

TEST(ClientLimits, AKeyOverItsRpmGets429WhileOtherKeysAreServed) {
    mock_server mock(json{{"regions", json::array({mock_region("r")})}});
    proxy_server proxy({{"workers", 1},
                        {"auth", {{"keys", json::array({{{"name", "batch"}, {"key", "sk-batch"}, {"rpm", 2}},
                                                        {{"name", "web"}, {"key", "sk-web"}}})}}},
                        {"regions", json::array({proxy_region(mock, "r", 0)})}});
    const header_list batch = {{"api-key", "sk-batch"}}, web = {{"api-key", "sk-web"}};
    EXPECT_EQ(post_json(proxy.port(), "/v1/chat/completions", chat(), batch).status, 200);
    EXPECT_EQ(post_json(proxy.port(), "/v1/chat/completions", chat(), batch).status, 200);
    auto refused = post_json(proxy.port(), "/v1/chat/completions", chat(), batch);
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.json_body()["error"]["code"], "client_rate_limit_exceeded");
    int retry_ms = std::stoi(refused.header("retry-after-ms"));
    EXPECT_GT(retry_ms, 55000);  // the first of the two requests leaves the minute window
    EXPECT_LE(retry_ms, 60100);
    EXPECT_EQ(post_json(proxy.port(), "/v1/chat/completions", chat(), web).status, 200) << "other keys unaffected";
    EXPECT_EQ(mock.stats("r")["requests"], 3) << "the refused request never reached an upstream";
}

// Azure sends a non-streaming answer's headers only when the generation is done: a client that
// hangs up meanwhile must cancel the upstream request instead of letting it run (and bill) on.
TEST(ClientDisconnect, CancelsTheUpstreamRequestWhileItGenerates) {
    mock_server mock(json{{"regions", json::array({mock_region("slow", 3000, 0)})}});
    proxy_server proxy({{"workers", 1}, {"auth", {{"mode", "none"}}}, {"regions", json::array({proxy_region(mock, "slow", 0)})}});
    auto inflight = [&] {
        auto status = http_call(proxy.admin_port(), "GET", "/status").json_body();
        return status["deployments"][0]["inflight"].get<int>();
    };
    std::string body = chat().dump();
    std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    auto sent = std::chrono::steady_clock::now();
    auto r = raw_exchange(proxy.port(), request, 300ms);  // gives up after 300 ms and closes
    EXPECT_TRUE(r.bytes.empty()) << "no answer yet: the upstream takes 3 s; got: " << r.bytes << " admin port " << proxy.admin_port() << " data " << proxy.port();
    int seen = 1;
    while (std::chrono::steady_clock::now() - sent < 2500ms && (seen = inflight()) != 0) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(seen, 0) << "the upstream request was still in flight after the client left";
    EXPECT_LT(std::chrono::steady_clock::now() - sent, 1500ms);
}

TEST(Lifecycle, SigtermExitsZeroAndRefusesNewConnections) {
    mock_server mock(json{{"regions", json::array({mock_region("r")})}});
    proxy_server proxy({{"workers", 2}, {"auth", {{"mode", "none"}}}, {"regions", json::array({proxy_region(mock, "r", 0)})}});
    ASSERT_EQ(post_json(proxy.port(), "/v1/chat/completions", chat(), {}).status, 200);
    proxy.process().signal(SIGTERM);
    EXPECT_EQ(proxy.process().wait_exit(10s), 0);
    EXPECT_THROW(http_call(proxy.port(), "GET", "/v1/models"), std::exception);
}

}  // namespace
}  // namespace spillway::testing
