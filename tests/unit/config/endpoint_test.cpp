// How a region's `endpoint` URL is split into scheme, host, port and path prefix, and which URLs
// are refused.
#include "config_test_support.hpp"

#include <gmock/gmock.h>

using testing::ElementsAre;
using testing::Not;
using testing::HasSubstr;

namespace spillway::config::test {
namespace {

// config_with() already has an endpoint; these tests swap it for the one under test.
std::string with_endpoint(const std::string& url) {
    return replaced(config_with(), "https://eastus.example.com", url);
}

struct url_case {
    std::string url;
    bool tls;
    std::string host;
    std::uint16_t port;
    std::string prefix;
};

TEST(endpoint, valid_urls_are_split_into_parts) {
    const url_case cases[] = {
        {"https://contoso.openai.azure.com", true, "contoso.openai.azure.com", 443, ""},
        {"https://contoso.openai.azure.com/", true, "contoso.openai.azure.com", 443, ""},
        {"http://127.0.0.1:18081", false, "127.0.0.1", 18081, ""},
        {"http://localhost", false, "localhost", 80, ""},
        {"https://gw.example.com:8443/openai-proxy/", true, "gw.example.com", 8443, "/openai-proxy"},
        {"HTTPS://gw.example.com/a/b//", true, "gw.example.com", 443, "/a/b"},
        {"http://[::1]:8080/v1", false, "::1", 8080, "/v1"},
        {"https://[2001:db8::1]", true, "2001:db8::1", 443, ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.url);
        auto cfg = parse_ok(with_endpoint(c.url));
        ASSERT_TRUE(cfg);
        const auto& reg = cfg->regions.at(0);
        EXPECT_EQ(reg.upstream.tls, c.tls);
        EXPECT_EQ(reg.upstream.host, c.host);
        EXPECT_EQ(reg.upstream.port, c.port);
        EXPECT_EQ(reg.upstream.path_prefix, c.prefix);
        EXPECT_EQ(reg.endpoint_url, c.url);  // kept as written, for display
    }
}

TEST(endpoint, invalid_urls_are_refused_with_a_reason) {
    const std::pair<std::string, std::string> cases[] = {
        {"contoso.openai.azure.com", "must be an http:// or https:// URL"},
        {"ftp://contoso.example.com", "unsupported scheme \"ftp\" (use http or https)"},
        {"https://", "has no host"},
        {"https://:443/x", "has no host"},
        {"https://host:0", "has an invalid port (must be 1-65535)"},
        {"https://host:65536", "has an invalid port (must be 1-65535)"},
        {"https://host:", "has an invalid port (must be 1-65535)"},
        {"https://host:44x", "has an invalid port (must be 1-65535)"},
        {"https://host/path?api-version=1", "must not contain a query or fragment"},
        {"https://host/#frag", "must not contain a query or fragment"},
        {"http://::1:8080", "IPv6 addresses must be written in brackets, e.g. http://[::1]:8080"},
        {"http://[::1:8080", "has an unterminated IPv6 address ('[' without ']')"},
        {"http://[::1]8080", "has unexpected text after the IPv6 address"},
        {"https://host/a b", "must not contain spaces or control characters"},
    };
    for (const auto& [url, reason] : cases) {
        SCOPED_TRACE(url);
        EXPECT_THAT(problems_of(with_endpoint(url)), ElementsAre("regions[0].endpoint: " + reason));
    }
}

TEST(endpoint, credentials_in_the_url_are_refused_without_echoing_them) {
    auto problems = problems_of(with_endpoint("https://user:hunter2-password@contoso.example.com"));
    EXPECT_THAT(problems, ElementsAre("regions[0].endpoint: must not contain credentials (user:password@); use api_key_env"));
    for (const auto& p : problems) EXPECT_THAT(p, Not(HasSubstr("hunter2")));
}

TEST(endpoint, empty_endpoint_is_refused) {
    EXPECT_THAT(problems_of(with_endpoint("")), ElementsAre("regions[0].endpoint: must not be empty"));
}

}  // namespace
}  // namespace spillway::config::test
