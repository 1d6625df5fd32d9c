// A client that hangs up while its non-streaming request waits for a slow upstream: spillway must
// cancel the upstream exchange (close that connection, so the generation and its tokens stop)
// instead of waiting for an answer nobody will read, and go on serving. A client that leaves is
// no verdict on the deployment, in the metrics or in its health, also in the middle of a stream.
//
// The client leaves only once the request has reached the upstream, so the test does not depend
// on how fast spillway forwards it; every wait below is for a condition, with a generous bound.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <sys/socket.h>
#include <sys/time.h>

namespace spillway::testing {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

json chat() { return {{"model", "gpt-4o"}, {"messages", json::array({{{"role", "user"}, {"content", "Hello there"}}})}}; }

std::string raw_chat_request(bool stream = false) {
    json j = chat();
    if (stream) j["stream"] = true;
    std::string body = j.dump();
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Polls `done` every 20 ms until it holds or `bound` passes; true if it held.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds bound) {
    const auto until = steady::now() + bound;
    for (;;) {
        if (done()) return true;
        if (steady::now() >= until) return false;
        std::this_thread::sleep_for(20ms);
    }
}

// A client connection that sends a request and leaves when told to.
class leaving_client {
public:
    leaving_client(std::uint16_t port, const std::string& request) : socket_(io_) {
        socket_.connect({net::ip::make_address("127.0.0.1"), port});
        net::write(socket_, net::buffer(request));
    }
    // Reads until `needle` has arrived; false if the connection ended or `bound` passed first.
    bool read_until(const std::string& needle, std::chrono::milliseconds bound) {
        timeval tv{static_cast<time_t>(bound.count() / 1000), static_cast<suseconds_t>(bound.count() % 1000 * 1000)};
        ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const auto until = steady::now() + bound;
        char buf[4096];
        while (received_.find(needle) == std::string::npos && steady::now() < until) {
            // Plain recv: Asio's synchronous read would wait without a timeout.
            ssize_t n = ::recv(socket_.native_handle(), buf, sizeof buf, 0);
            if (n <= 0) return false;
            received_.append(buf, static_cast<std::size_t>(n));
        }
        return received_.find(needle) != std::string::npos;
    }
    // An orderly close (FIN), as a client that gives up does.
    void leave() { socket_.close(); }

private:
    net::io_context io_;
    tcp::socket socket_;
    std::string received_;
};

// With spillway-mock: the region takes 3 s to answer; the client leaves once the mock has the
// request. What proves the exchange was cancelled is visible in spillway's admin API: the
// attempt ends (inflight back to 0) long before the 3 s, with no upstream answer recorded.
TEST(ClientHangup, SlowUpstreamExchangeEndsWhenTheClientLeavesAndTheNextRequestIsServed) {
    const std::string deployment = "gpt4o-slow";
    mock_server mock(json{{"regions", json::array({{{"name", "slow"}, {"port", 0}, {"api_key", "k"}, {"ttft_ms", 3000},
                                                    {"deployments", json::array({{{"name", deployment}, {"model", "gpt-4o"}}})}}})}});
    proxy_server proxy({{"workers", 1},
                        {"auth", {{"mode", "none"}}},
                        {"routing", {{"request_timeout_ms", 20000}}},
                        {"regions", json::array({{{"name", "slow"},
                                                  {"endpoint", "http://127.0.0.1:" + std::to_string(mock.port("slow"))},
                                                  {"api_key", "k"},
                                                  {"deployments", json::array({{{"model", "gpt-4o"}, {"name", deployment}}})}}})}});
    auto metrics = [&] { return http_call(proxy.admin_port(), "GET", "/metrics").body; };
    const std::vector<std::string> series = {"region=\"slow\"", "deployment=\"" + deployment + "\""};
    auto inflight = [&] { return metric(metrics(), "spillway_deployment_inflight", series).value_or(-1); };

    leaving_client client(proxy.port(), raw_chat_request());
    ASSERT_TRUE(eventually([&] { return mock.stats("slow")["requests"] == 1; }, 10s)) << "the request never reached the mock";
    ASSERT_EQ(inflight(), 1);
    const auto left_at = steady::now();
    client.leave();

    ASSERT_TRUE(eventually([&] { return inflight() == 0; }, 2500ms))
        << "the upstream exchange was still in flight 2.5 s after the client left";
    EXPECT_LT(steady::now() - left_at, 1500ms) << "the mock answers 3 s after the request: the cancellation came too late";

    const std::string text = metrics();
    EXPECT_EQ(metric(text, "spillway_upstream_requests_total", series).value_or(0), 1) << "one attempt, counted once:\n" << series_of(text, "spillway_upstream_requests_total");
    std::vector<std::string> answered = series;
    answered.push_back("code=\"200\"");
    EXPECT_FALSE(metric(text, "spillway_upstream_requests_total", answered)) << "no upstream answer was relayed:\n" << series_of(text, "spillway_upstream_requests_total");
    EXPECT_EQ(metric(text, "spillway_upstream_latency_seconds_count", series).value_or(0), 0)
        << "an abandoned attempt is not a completed one";
    EXPECT_EQ(metric(text, "spillway_deployment_available", series).value_or(0), 1)
        << "a client leaving says nothing about the deployment's health";

    // The abandoned connection was closed, not pooled: the next request opens a new one.
    mock.latency("slow", 0, 0);
    auto next = post_json(proxy.port(), "/v1/chat/completions", chat(), {});
    EXPECT_EQ(next.status, 200) << next.body;
    EXPECT_EQ(next.header("x-spillway-region"), "slow");
    EXPECT_EQ(mock.stats("slow")["connections_accepted"], 2);
}

// spillway_upstream_requests_total{code} tells answers and failures apart; a cancelled exchange
// is neither, and must not be counted as a success ("ok" is what an answered attempt without a
// status would be).
TEST(ClientHangup, AbandonedAttemptIsNotCountedAsOk) {
    mock_server mock(json{{"regions", json::array({{{"name", "slow"}, {"port", 0}, {"api_key", "k"}, {"ttft_ms", 3000},
                                                    {"deployments", json::array({{{"name", "gpt4o"}, {"model", "gpt-4o"}}})}}})}});
    proxy_server proxy({{"workers", 1},
                        {"auth", {{"mode", "none"}}},
                        {"regions", json::array({{{"name", "slow"},
                                                  {"endpoint", "http://127.0.0.1:" + std::to_string(mock.port("slow"))},
                                                  {"api_key", "k"},
                                                  {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "gpt4o"}}})}}})}});
    auto metrics = [&] { return http_call(proxy.admin_port(), "GET", "/metrics").body; };
    const std::vector<std::string> series = {"region=\"slow\""};

    leaving_client client(proxy.port(), raw_chat_request());
    ASSERT_TRUE(eventually([&] { return mock.stats("slow")["requests"] == 1; }, 10s));
    client.leave();
    ASSERT_TRUE(eventually([&] { return metric(metrics(), "spillway_upstream_requests_total", series).has_value(); }, 2500ms));

    const std::string text = metrics();
    std::vector<std::string> ok = series;
    ok.push_back("code=\"ok\"");
    EXPECT_FALSE(metric(text, "spillway_upstream_requests_total", ok)) << series_of(text, "spillway_upstream_requests_total");
    std::vector<std::string> gone = series;
    gone.push_back("code=\"client_gone\"");
    EXPECT_EQ(metric(text, "spillway_upstream_requests_total", gone).value_or(0), 1)
        << series_of(text, "spillway_upstream_requests_total");
    // The request itself got no answer: counted as 499, "client closed request".
    ASSERT_TRUE(eventually([&] { return metric(metrics(), "spillway_requests_total", {"code=\"499\""}).has_value(); }, 2500ms))
        << series_of(metrics(), "spillway_requests_total");
    EXPECT_EQ(metric(metrics(), "spillway_requests_total", {"model=\"gpt-4o\"", "code=\"499\""}).value_or(0), 1);
}

// A client that leaves in the middle of a streamed answer says nothing about the deployment: the
// attempt is abandoned, not failed. The stream's tokens come 1 s apart; the client is noticed
// when the next token's write to it fails (the hang-up watch covers only the wait for the
// answer's head, so it must not cancel the relayed stream and have that look like a reset). Three
// such clients are the default failure_threshold: counted as failures, they would open the
// deployment's circuit.
TEST(ClientHangup, ClientLeavingMidStreamIsNotAFailureOfTheDeployment) {
    mock_server mock(json{{"regions", json::array({{{"name", "paced"}, {"port", 0}, {"api_key", "k"}, {"ttft_ms", 50},
                                                    {"token_ms", 1000}, {"completion_tokens", 10},
                                                    {"deployments", json::array({{{"name", "gpt4o"}, {"model", "gpt-4o"}}})}}})}});
    proxy_server proxy({{"workers", 1},
                        {"auth", {{"mode", "none"}}},
                        {"regions", json::array({{{"name", "paced"},
                                                  {"endpoint", "http://127.0.0.1:" + std::to_string(mock.port("paced"))},
                                                  {"api_key", "k"},
                                                  {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "gpt4o"}}})}}})}});
    auto deployment = [&] { return http_call(proxy.admin_port(), "GET", "/status").json_body()["deployments"][0]; };

    for (int client_number = 1; client_number <= 3; ++client_number) {
        leaving_client client(proxy.port(), raw_chat_request(true));
        ASSERT_TRUE(client.read_until("data: ", 10s)) << "client " << client_number << " got no event";
        client.leave();
        ASSERT_TRUE(eventually([&] { return deployment()["inflight"] == 0; }, 8s)) << "client " << client_number;
    }
    const json d = deployment();
    EXPECT_EQ(d["errors"], 0) << d.dump();
    EXPECT_EQ(d["state"], "available") << d.dump();
    mock.latency("paced", 0, 0);
    auto next = post_json(proxy.port(), "/v1/chat/completions", chat(), {});
    EXPECT_EQ(next.status, 200) << next.body;
}

// An upstream on a raw socket that never answers the first connection and records when spillway
// closes it; later connections get an answer at once.
class holding_upstream {
public:
    holding_upstream() : acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
        thread_ = std::thread([this] { serve(); });
    }
    ~holding_upstream() {
        stopping_ = true;
        try {
            tcp::socket wake(io_);
            wake.connect(acceptor_.local_endpoint());
        } catch (const std::exception&) {
        }
        thread_.join();
    }
    holding_upstream(const holding_upstream&) = delete;
    holding_upstream& operator=(const holding_upstream&) = delete;

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    // How the held connection ended.
    enum class ending { open, closed, reset, bytes_after_request };
    struct held {
        bool request_seen = false;
        ending end = ending::open;
        steady::time_point ended_at;
    };
    held wait_held(const std::function<bool(const held&)>& until, std::chrono::milliseconds bound) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, bound, [&] { return until(held_); });
        return held_;
    }
    int answered() const {
        std::lock_guard lock(mutex_);
        return answered_;
    }

private:
    void serve() {
        for (bool first = true;; first = false) {
            tcp::socket peer(io_);
            boost::system::error_code ec;
            acceptor_.accept(peer, ec);
            if (ec || stopping_) return;
            if (first)
                hold(peer);
            else
                answer(peer);
        }
    }

    void hold(tcp::socket& peer) {
        boost::beast::flat_buffer buffer;
        bhttp::request<bhttp::string_body> req;
        boost::system::error_code ec;
        bhttp::read(peer, buffer, req, ec);
        update([&](held& h) { h.request_seen = !ec; });
        // Plain recv with SO_RCVTIMEO: Asio's synchronous read would wait without a timeout.
        timeval tv{20, 0};
        ::setsockopt(peer.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char byte;
        ssize_t n = buffer.size() > 0 ? 1 : ::recv(peer.native_handle(), &byte, 1, 0);
        const auto at = steady::now();
        ending end = n > 0 ? ending::bytes_after_request : n == 0 ? ending::closed : errno == ECONNRESET ? ending::reset : ending::open;
        update([&](held& h) {
            h.end = end;
            h.ended_at = at;
        });
    }

    void answer(tcp::socket& peer) {
        const std::string body = R"({"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"gpt-4o",)"
                                 R"("choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
                                 R"("usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})";
        const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body;
        boost::beast::flat_buffer buffer;
        for (;;) {
            bhttp::request<bhttp::string_body> req;
            boost::system::error_code ec;
            bhttp::read(peer, buffer, req, ec);
            if (ec) return;
            {
                // Counted before the answer leaves: once a client has it, the count includes it.
                std::lock_guard lock(mutex_);
                ++answered_;
            }
            net::write(peer, net::buffer(response), ec);
            if (ec) return;
        }
    }

    template <class Change>
    void update(Change change) {
        std::lock_guard lock(mutex_);
        change(held_);
        changed_.notify_all();
    }

    net::io_context io_;
    tcp::acceptor acceptor_;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    held held_;
    int answered_ = 0;
};

// What the upstream itself sees: the connection carrying the abandoned request is closed soon
// after the client leaves, although no answer ever comes (only the 20 s request deadline would
// end it otherwise), and nothing more is sent on it.
TEST(ClientHangup, UpstreamConnectionIsClosedSoonAfterTheClientLeaves) {
    holding_upstream upstream;
    proxy_server proxy({{"workers", 1},
                        {"auth", {{"mode", "none"}}},
                        {"routing", {{"request_timeout_ms", 20000}}},
                        {"regions", json::array({{{"name", "held"},
                                                  {"endpoint", "http://127.0.0.1:" + std::to_string(upstream.port())},
                                                  {"api_key", "k"},
                                                  {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "gpt4o"}}})}}})}});

    leaving_client client(proxy.port(), raw_chat_request());
    auto seen = upstream.wait_held([](const auto& h) { return h.request_seen; }, 10s);
    ASSERT_TRUE(seen.request_seen) << "the request never reached the upstream";
    const auto left_at = steady::now();
    client.leave();

    auto held = upstream.wait_held([](const auto& h) { return h.end != holding_upstream::ending::open; }, 5s);
    ASSERT_NE(held.end, holding_upstream::ending::open) << "spillway kept the upstream exchange open after the client left";
    EXPECT_NE(held.end, holding_upstream::ending::bytes_after_request) << "closed, not reused for something else";
    EXPECT_LT(held.ended_at - left_at, 1500ms);

    auto next = post_json(proxy.port(), "/v1/chat/completions", chat(), {});
    EXPECT_EQ(next.status, 200) << next.body;
    EXPECT_EQ(next.header("x-spillway-region"), "held");
    EXPECT_EQ(upstream.answered(), 1);
}

}  // namespace
}  // namespace spillway::testing
