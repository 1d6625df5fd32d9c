// TLS on both sides: spillway "edge" serves HTTPS (listen.tls) in front of the mock, and spillway
// "front" reaches it as an https upstream, verifying its certificate (name and chain) against a
// ca_file. Without that CA the verification must fail, and no request may get through.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace spillway::testing {
namespace {

struct self_signed {
    std::string cert, key;
};

// A throwaway certificate for DNS:localhost, made with the openssl command line tool.
self_signed make_certificate() {
    self_signed c{write_temp_file("", ".pem"), write_temp_file("", ".pem")};
    std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                      "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " + c.key + " -out " + c.cert +
                      " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl could not make a test certificate");
    return c;
}

json chat() { return {{"model", "gpt-4o"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}; }

class Tls : public ::testing::Test {
protected:
    void SetUp() override {
        cert_ = make_certificate();
        mock_ = std::make_unique<mock_server>(json{{"regions", json::array({{{"name", "r"}, {"port", 0}, {"api_key", "k"},
            {"deployments", json::array({{{"name", "gpt4o"}, {"model", "gpt-4o"}}})}}})}});
        edge_ = std::make_unique<proxy_server>(json{
            {"listen", {{"address", "127.0.0.1"}, {"port", 0}, {"tls", {{"cert_file", cert_.cert}, {"key_file", cert_.key}}}}},
            {"workers", 1},
            {"auth", {{"keys", json::array({{{"name", "front"}, {"key", "sk-edge"}}})}}},
            {"regions", json::array({{{"name", "r"}, {"endpoint", "http://127.0.0.1:" + std::to_string(mock_->port("r"))},
                                      {"api_key", "k"}, {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "gpt4o"}}})}}})}});
    }

    // A plain-HTTP spillway whose one region is the TLS edge.
    std::unique_ptr<proxy_server> front(json tls_settings) {
        json region = {{"name", "edge"}, {"kind", "openai"}, {"api_key", "sk-edge"},
                       {"endpoint", "https://localhost:" + std::to_string(edge_->port()) + "/v1"},
                       {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "gpt-4o"}}})}};
        region.update(tls_settings);
        return std::make_unique<proxy_server>(json{{"workers", 1}, {"auth", {{"mode", "none"}}},
                                                   {"routing", {{"max_attempts", 1}}},
                                                   {"regions", json::array({region})}});
    }

    self_signed cert_;
    std::unique_ptr<mock_server> mock_;
    std::unique_ptr<proxy_server> edge_;
};

TEST_F(Tls, VerifiedUpstreamTlsAndTlsListenerCarryTheRequest) {
    auto proxy = front({{"ca_file", cert_.cert}});
    auto r = post_json(proxy->port(), "/v1/chat/completions", chat(), {});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-spillway-region"), "edge");
    EXPECT_EQ(r.json_body()["object"], "chat.completion");
    EXPECT_EQ(mock_->stats("r")["requests"], 1) << "the request crossed the TLS hop to the mock";
}

TEST_F(Tls, AnUntrustedCertificateIsRefused) {
    auto proxy = front(json::object());  // system CA store only: the self-signed edge is not trusted
    auto r = post_json(proxy->port(), "/v1/chat/completions", chat(), {});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(mock_->stats("r")["requests"], 0) << "nothing may pass an unverified TLS hop";
}

TEST_F(Tls, VerificationCanBeSwitchedOffExplicitly) {
    auto proxy = front({{"tls_verify", false}});
    EXPECT_EQ(post_json(proxy->port(), "/v1/chat/completions", chat(), {}).status, 200);
}

TEST_F(Tls, PlainHttpToTheTlsListenerGetsNoAnswer) {
    auto r = raw_exchange(edge_->port(), "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 2s);
    EXPECT_EQ(r.bytes.find("HTTP/1.1 200"), std::string::npos);
    EXPECT_TRUE(r.closed_by_server);
}

}  // namespace
}  // namespace spillway::testing
