// Unit tests for proxy/upstream_request: the upstream URL per region kind, where the deployment
// goes, the Host header, and which headers cross the proxy in each direction.
#include "proxy/upstream_request.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace spillway::proxy {
namespace {

namespace bhttp = boost::beast::http;

// The forwarding rules write header lines into the upstream head; read them back with Beast's
// parser, as the upstream would.
bhttp::fields parse_header_lines(const std::string& lines) {
    std::string head = "POST / HTTP/1.1\r\n" + lines + "\r\n";
    bhttp::request_parser<bhttp::empty_body> parser;
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(head), ec);
    EXPECT_FALSE(ec) << ec.message() << "\n" << head;
    return parser.get().base();
}

// Fields as a parsed head lists them, viewing `fields` (which must outlive them). Built
// directly rather than parsed, so that any set of fields can be tried, framing included.
std::vector<http::head_field> head_fields(const bhttp::fields& fields) {
    std::vector<http::head_field> out;
    for (const auto& f : fields) out.push_back({f.name_string(), f.value()});
    return out;
}

bhttp::fields forwarded_fields(const bhttp::fields& from) {
    std::string lines;
    append_forwarded_request_headers(head_fields(from), lines);
    return parse_header_lines(lines);
}

void add_credentials(const config::region& region, bhttp::fields& to) {
    std::string lines;
    append_upstream_credentials(region, lines);
    for (const auto& f : parse_header_lines(lines)) to.insert(f.name_string(), f.value());
}

config::region azure_region(std::string prefix = "") {
    config::region r;
    r.name = "eastus";
    r.kind = config::region_kind::azure;
    r.upstream = {true, "contoso-eastus.openai.azure.com", 443, std::move(prefix)};
    r.api_key = "region-key-east";
    return r;
}

config::region openai_region(std::string prefix = "/v1") {
    config::region r;
    r.name = "openai";
    r.kind = config::region_kind::openai;
    r.upstream = {true, "api.openai.com", 443, std::move(prefix)};
    r.api_key = "sk-region";
    return r;
}

config::deployment gpt4o() {
    config::deployment d;
    d.model = "gpt-4o";
    d.name = "gpt4o-deployment";
    d.api_version = "2024-10-21";
    return d;
}

std::vector<std::string> values(const bhttp::fields& f, std::string_view name) {
    std::vector<std::string> out;
    auto [b, e] = f.equal_range(name);
    for (auto it = b; it != e; ++it) out.emplace_back(it->value());
    return out;
}

std::size_t field_count(const bhttp::fields& f) { return static_cast<std::size_t>(std::distance(f.begin(), f.end())); }

// ---------------------------------------------------------------------------------------------
// upstream_target / model_in_body

TEST(UpstreamTarget, AzureClassicUrlForEachOperation) {
    auto region = azure_region();
    auto dep = gpt4o();
    EXPECT_EQ(upstream_target(region, dep, operation::chat_completions),
              "/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21");
    EXPECT_EQ(upstream_target(region, dep, operation::completions),
              "/openai/deployments/gpt4o-deployment/completions?api-version=2024-10-21");
    EXPECT_EQ(upstream_target(region, dep, operation::embeddings),
              "/openai/deployments/gpt4o-deployment/embeddings?api-version=2024-10-21");
}

TEST(UpstreamTarget, AzureUsesTheDeploymentsOwnApiVersion) {
    auto region = azure_region();
    auto dep = gpt4o();
    dep.name = "emb-small";
    dep.api_version = "2024-08-01-preview";
    EXPECT_EQ(upstream_target(region, dep, operation::embeddings),
              "/openai/deployments/emb-small/embeddings?api-version=2024-08-01-preview");
}

TEST(UpstreamTarget, AzurePathPrefixIsPreserved) {
    auto region = azure_region("/apim/aoai-east");
    EXPECT_EQ(upstream_target(region, gpt4o(), operation::chat_completions),
              "/apim/aoai-east/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21");
    EXPECT_EQ(upstream_target(region, gpt4o(), operation::responses), "/apim/aoai-east/openai/v1/responses");
}

TEST(UpstreamTarget, AzureResponsesUsesTheV1Form) {
    EXPECT_EQ(upstream_target(azure_region(), gpt4o(), operation::responses), "/openai/v1/responses");
}

TEST(UpstreamTarget, OpenaiKindAppendsTheOperationToThePrefix) {
    auto region = openai_region("/v1");
    auto dep = gpt4o();
    EXPECT_EQ(upstream_target(region, dep, operation::chat_completions), "/v1/chat/completions");
    EXPECT_EQ(upstream_target(region, dep, operation::completions), "/v1/completions");
    EXPECT_EQ(upstream_target(region, dep, operation::embeddings), "/v1/embeddings");
    EXPECT_EQ(upstream_target(region, dep, operation::responses), "/v1/responses");
    EXPECT_EQ(upstream_target(openai_region(""), dep, operation::chat_completions), "/chat/completions");
    EXPECT_EQ(upstream_target(openai_region("/openai/v1"), dep, operation::embeddings), "/openai/v1/embeddings");
    // No deployment name or api-version in an OpenAI-style URL.
    EXPECT_EQ(upstream_target(region, dep, operation::chat_completions).find("gpt4o"), std::string::npos);
    EXPECT_EQ(upstream_target(region, dep, operation::chat_completions).find('?'), std::string::npos);
}

TEST(ModelInBody, OpenaiAlwaysAzureOnlyForResponses) {
    for (operation op : {operation::chat_completions, operation::completions, operation::embeddings, operation::responses})
        EXPECT_TRUE(model_in_body(openai_region(), op)) << op_path(op);
    EXPECT_FALSE(model_in_body(azure_region(), operation::chat_completions));
    EXPECT_FALSE(model_in_body(azure_region(), operation::completions));
    EXPECT_FALSE(model_in_body(azure_region(), operation::embeddings));
    EXPECT_TRUE(model_in_body(azure_region(), operation::responses));
}

// ---------------------------------------------------------------------------------------------
// upstream_host

TEST(UpstreamHost, DefaultPortsAreOmitted) {
    EXPECT_EQ(upstream_host({true, "contoso.openai.azure.com", 443, ""}), "contoso.openai.azure.com");
    EXPECT_EQ(upstream_host({false, "mock.local", 80, ""}), "mock.local");
}

TEST(UpstreamHost, OtherPortsAreKept) {
    EXPECT_EQ(upstream_host({true, "contoso.openai.azure.com", 8443, ""}), "contoso.openai.azure.com:8443");
    EXPECT_EQ(upstream_host({false, "127.0.0.1", 8080, "/prefix"}), "127.0.0.1:8080");
    // The default of the *other* scheme is not a default here.
    EXPECT_EQ(upstream_host({true, "h", 80, ""}), "h:80");
    EXPECT_EQ(upstream_host({false, "h", 443, ""}), "h:443");
}

// Regression: The config loader stores an IPv6 host without its brackets (src/config/loader.cpp,
// `host = authority.substr(1, close - 1)`), and upstream_host() writes it back bare, so an endpoint
// of http://[::1]:8080 gets `Host: ::1:8080`, which is not a valid Host header (RFC 9110 §7.2 / RFC
// 3986 IP-literal).
TEST(UpstreamHost, Ipv6HostsAreBracketed) {
    EXPECT_EQ(upstream_host({false, "::1", 8080, ""}), "[::1]:8080");
    EXPECT_EQ(upstream_host({true, "2001:db8::5", 443, ""}), "[2001:db8::5]");
}

// ---------------------------------------------------------------------------------------------
// copy_request_headers / set_upstream_credentials

bhttp::fields client_headers() {
    bhttp::fields f;
    f.set("Host", "spillway.internal:8080");
    f.set("Content-Type", "application/json");
    f.set("Content-Length", "123");
    f.set("User-Agent", "AzureOpenAI/Python 1.40.0");
    f.set("Accept", "application/json");
    f.set("api-key", "client-secret-1");
    f.set("Authorization", "Bearer client-secret-2");
    f.set("Connection", "keep-alive");
    f.set("Keep-Alive", "timeout=5");
    f.set("Transfer-Encoding", "chunked");
    f.set("TE", "trailers");
    f.set("Trailer", "x-checksum");
    f.set("Upgrade", "h2c");
    f.set("Proxy-Authorization", "Basic Zm9vOmJhcg==");
    f.set("Proxy-Connection", "keep-alive");
    f.set("Proxy-Authenticate", "Basic");
    f.set("Expect", "100-continue");
    f.set("x-spillway-data-zone", "eu");
    f.set("X-Spillway-Debug", "1");
    f.set("x-ms-client-request-id", "6b1e0c2a-7f0b-4f7e-9d3a-1c2b3d4e5f60");
    f.set("x-stainless-lang", "python");
    f.set("X-Stainless-Retry-Count", "0");
    f.set("OpenAI-Organization", "org-123");
    return f;
}

TEST(CopyRequestHeaders, KeepsEndToEndHeaders) {
    bhttp::fields to;
    to = forwarded_fields(client_headers());
    EXPECT_EQ(to["Content-Type"], "application/json");
    EXPECT_EQ(to["User-Agent"], "AzureOpenAI/Python 1.40.0");
    EXPECT_EQ(to["Accept"], "application/json");
    EXPECT_EQ(to["x-ms-client-request-id"], "6b1e0c2a-7f0b-4f7e-9d3a-1c2b3d4e5f60");
    EXPECT_EQ(to["x-stainless-lang"], "python");
    EXPECT_EQ(to["x-stainless-retry-count"], "0");
    EXPECT_EQ(to["OpenAI-Organization"], "org-123");
}

TEST(CopyRequestHeaders, DropsCredentialsHopByHopFramingAndSpillwayHeaders) {
    bhttp::fields to;
    to = forwarded_fields(client_headers());
    for (std::string_view name : {"api-key", "Authorization", "Host", "Content-Length", "Connection", "Keep-Alive",
                                  "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Proxy-Authorization",
                                  "Proxy-Connection", "Proxy-Authenticate", "Expect", "x-spillway-data-zone",
                                  "x-spillway-debug"}) {
        EXPECT_EQ(to.count(name), 0u) << name << " was forwarded";
    }
    EXPECT_EQ(field_count(to), 7u);
}

TEST(CopyRequestHeaders, NameMatchingIsCaseInsensitive) {
    bhttp::fields from;
    from.insert("API-KEY", "k1");
    from.insert("Api-Key", "k2");
    from.insert("AUTHORIZATION", "Bearer k3");
    from.insert("authorization", "Bearer k4");
    from.insert("HOST", "h");
    from.insert("content-length", "1");
    from.insert("CONNECTION", "close");
    from.insert("transfer-encoding", "chunked");
    from.insert("X-SPILLWAY-DATA-ZONE", "eu");
    from.insert("x-SpillWay-anything", "1");
    from.insert("CONTENT-TYPE", "application/json");
    from.insert("X-STAINLESS-OS", "Linux");
    bhttp::fields to;
    to = forwarded_fields(from);
    EXPECT_EQ(field_count(to), 2u);
    EXPECT_EQ(to[bhttp::field::content_type], "application/json");
    EXPECT_EQ(to["x-stainless-os"], "Linux");
}

TEST(CopyRequestHeaders, NearMissNamesAreNotDropped) {
    bhttp::fields from;
    from.insert("x-api-key", "not ours");
    from.insert("api-key-hint", "x");
    from.insert("x-spillway", "no dash after the prefix");
    from.insert("spillway-region", "x");
    from.insert("x-authorization-context", "x");
    bhttp::fields to;
    to = forwarded_fields(from);
    EXPECT_EQ(field_count(to), 5u);
    EXPECT_EQ(to["x-api-key"], "not ours");
    EXPECT_EQ(to["x-spillway"], "no dash after the prefix");
}

TEST(CopyRequestHeaders, RepeatedHeadersKeepEveryValueInOrder) {
    bhttp::fields from;
    from.insert("x-stainless-custom", "a");
    from.insert("Accept", "text/event-stream");
    from.insert("x-stainless-custom", "b");
    bhttp::fields to;
    to = forwarded_fields(from);
    EXPECT_EQ(values(to, "x-stainless-custom"), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(to["Accept"], "text/event-stream");
}

// Regression: RFC 9110 §7.6.1 requires a proxy to also remove every header named in the Connection
// header (`Connection: close, X-Hop`). They are forwarded today.
TEST(CopyRequestHeaders, HeadersNamedByConnectionAreHopByHop) {
    bhttp::fields from;
    from.insert("Connection", "close, X-Hop-Only");
    from.insert("X-Hop-Only", "1");
    from.insert("Content-Type", "application/json");
    bhttp::fields to;
    to = forwarded_fields(from);
    EXPECT_EQ(to.count("X-Hop-Only"), 0u);
    EXPECT_EQ(to[bhttp::field::content_type], "application/json");

    std::string lines;
    append_client_response_fields(head_fields(from), {}, lines);
    auto response = parse_header_lines(lines);
    EXPECT_EQ(response.count("X-Hop-Only"), 0u);
    EXPECT_EQ(response.count("Connection"), 0u);
    EXPECT_EQ(response[bhttp::field::content_type], "application/json");
}

TEST(CopyRequestHeaders, EveryConnectionFieldNamesHopByHopHeaders) {
    bhttp::fields from;
    from.insert("Connection", "keep-alive");
    from.insert("Connection", "X-First-Hop");
    from.insert("connection", " x-second-hop ,");
    from.insert("X-First-Hop", "1");
    from.insert("X-Second-Hop", "2");
    from.insert("X-Kept", "3");
    auto to = forwarded_fields(from);
    EXPECT_EQ(to.count("X-First-Hop"), 0u);
    EXPECT_EQ(to.count("X-Second-Hop"), 0u);
    EXPECT_EQ(to["X-Kept"], "3");
    EXPECT_EQ(field_count(to), 1u);
}

TEST(SetUpstreamCredentials, AzureUsesApiKey) {
    bhttp::fields to;
    add_credentials(azure_region(), to);
    EXPECT_EQ(to["api-key"], "region-key-east");
    EXPECT_EQ(to.count(bhttp::field::authorization), 0u);
    EXPECT_EQ(field_count(to), 1u);
}

TEST(SetUpstreamCredentials, OpenaiUsesBearer) {
    bhttp::fields to;
    add_credentials(openai_region(), to);
    EXPECT_EQ(to[bhttp::field::authorization], "Bearer sk-region");
    EXPECT_EQ(to.count("api-key"), 0u);
    EXPECT_EQ(field_count(to), 1u);
}

TEST(SetUpstreamCredentials, EmptyKeySetsNothing) {
    for (auto region : {azure_region(), openai_region()}) {
        region.api_key.clear();
        bhttp::fields to;
        to.set("Content-Type", "application/json");
        add_credentials(region, to);
        EXPECT_EQ(to.count("api-key"), 0u);
        EXPECT_EQ(to.count(bhttp::field::authorization), 0u);
        EXPECT_EQ(field_count(to), 1u);
    }
}

// The parts written once per snapshot say what the per-request functions would.
TEST(UpstreamWire, HoldsEachOperationsRequestLineAndTheHostAndCredentials) {
    for (auto region : {azure_region(), openai_region()}) {
        const upstream_wire wire = make_upstream_wire(region, gpt4o());
        for (auto op : {operation::chat_completions, operation::completions, operation::embeddings, operation::responses})
            EXPECT_EQ(wire.request_lines[static_cast<std::size_t>(op)],
                      "POST " + upstream_target(region, gpt4o(), op) + " HTTP/1.1\r\n");
        std::string credentials;
        append_upstream_credentials(region, credentials);
        EXPECT_EQ(wire.fixed_fields, "Host: " + upstream_host(region.upstream) + "\r\n" + credentials);
    }
}

// The head proxy.cpp writes: request line, forwarded headers, Host, the region's key, the
// body's length; the client's key never reaches the upstream, the region's does.
TEST(UpstreamRequestHead, IsACompleteHeadWithTheRegionsKeyInsteadOfTheClients) {
    for (auto region : {azure_region(), openai_region()}) {
        std::string head =
            upstream_request_head(make_upstream_wire(region, gpt4o()), operation::chat_completions,
                                  head_fields(client_headers()), 123);
        EXPECT_EQ(head.find("client-secret"), std::string::npos) << head;
        bhttp::request_parser<bhttp::empty_body> parser;
        parser.skip(true);  // the body would follow
        boost::system::error_code ec;
        parser.put(boost::asio::buffer(head), ec);
        ASSERT_FALSE(ec) << ec.message() << "\n" << head;
        ASSERT_TRUE(parser.is_header_done());
        const auto& req = parser.get();
        EXPECT_EQ(req.method(), bhttp::verb::post);
        EXPECT_EQ(req.target(), upstream_target(region, gpt4o(), operation::chat_completions));
        EXPECT_EQ(req[bhttp::field::host], upstream_host(region.upstream));
        EXPECT_EQ(req[bhttp::field::content_length], "123");
        EXPECT_EQ(req[bhttp::field::content_type], "application/json");
        if (region.kind == config::region_kind::azure) {
            EXPECT_EQ(values(req, "api-key"), (std::vector<std::string>{"region-key-east"}));
            EXPECT_EQ(req.count(bhttp::field::authorization), 0u);
        } else {
            EXPECT_EQ(values(req, "authorization"), (std::vector<std::string>{"Bearer sk-region"}));
            EXPECT_EQ(req.count("api-key"), 0u);
        }
        EXPECT_TRUE(head.ends_with("\r\n\r\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// append_client_response_fields

bhttp::fields client_response(const bhttp::fields& upstream, std::initializer_list<std::string_view> replaced = {}) {
    std::string lines;
    append_client_response_fields(head_fields(upstream), replaced, lines);
    return parse_header_lines(lines);
}

TEST(ClientResponseFields, KeepsCorrelationRateLimitAndFramingHeaders) {
    bhttp::fields u;
    u.set("Content-Type", "application/json");
    u.set("x-request-id", "req-1");
    u.set("apim-request-id", "apim-2");
    u.set("x-ms-client-request-id", "cli-3");
    u.set("x-ratelimit-remaining-requests", "479");
    u.set("x-ratelimit-remaining-tokens", "79000");
    u.set("x-ratelimit-limit-requests", "80");
    u.set("x-ratelimit-limit-tokens", "80000");
    u.set("retry-after", "2");
    u.set("retry-after-ms", "1500");
    u.set("x-ms-region", "East US");
    u.set("azureml-model-session", "d008-20240215231538");
    u.insert("Set-Cookie", "a=1");
    u.insert("Set-Cookie", "b=2");
    u.set("Transfer-Encoding", "chunked");
    u.set("Connection", "keep-alive");
    u.set("Keep-Alive", "timeout=5");
    u.set("Trailer", "x-checksum");
    u.set("Upgrade", "h2c");
    u.set("Proxy-Authenticate", "Basic");
    auto f = client_response(u);

    EXPECT_EQ(f[bhttp::field::content_type], "application/json");
    EXPECT_EQ(f["x-request-id"], "req-1");
    EXPECT_EQ(f["apim-request-id"], "apim-2");
    EXPECT_EQ(f["x-ms-client-request-id"], "cli-3");
    EXPECT_EQ(f["x-ratelimit-remaining-requests"], "479");
    EXPECT_EQ(f["x-ratelimit-remaining-tokens"], "79000");
    EXPECT_EQ(f["x-ratelimit-limit-requests"], "80");
    EXPECT_EQ(f["x-ratelimit-limit-tokens"], "80000");
    EXPECT_EQ(f["retry-after"], "2");
    EXPECT_EQ(f["retry-after-ms"], "1500");
    EXPECT_EQ(f["x-ms-region"], "East US");
    EXPECT_EQ(f["azureml-model-session"], "d008-20240215231538");
    EXPECT_EQ(values(f, "set-cookie"), (std::vector<std::string>{"a=1", "b=2"}));
    EXPECT_EQ(f["Transfer-Encoding"], "chunked") << "framing is kept: the relay preserves it";

    for (std::string_view name : {"Connection", "Keep-Alive", "Trailer", "Upgrade", "Proxy-Authenticate"})
        EXPECT_EQ(f.count(name), 0u) << name << " was kept";
    EXPECT_EQ(field_count(f), 15u);
}

TEST(ClientResponseFields, KeepsContentLength) {
    bhttp::fields u;
    u.set("Content-Length", "42");
    u.set("Keep-Alive", "timeout=5");
    auto f = client_response(u);
    EXPECT_EQ(f["Content-Length"], "42");
    EXPECT_EQ(field_count(f), 1u);
}

TEST(ClientResponseFields, LeavesOutReplacedNamesAndUpstreamSpillwayHeaders) {
    bhttp::fields u;
    u.set("x-ratelimit-remaining-tokens", "5");
    u.set("X-RateLimit-Remaining-Requests", "1");
    u.set("x-spillway-region", "somewhere-else");
    u.set("x-request-id", "r1");
    auto f = client_response(u, {"x-ratelimit-remaining-tokens", "x-ratelimit-remaining-requests"});
    EXPECT_EQ(f.count("x-ratelimit-remaining-tokens"), 0u);
    EXPECT_EQ(f.count("x-ratelimit-remaining-requests"), 0u) << "names compare case-insensitively";
    EXPECT_EQ(f.count("x-spillway-region"), 0u) << "spillway writes its own";
    EXPECT_EQ(f["x-request-id"], "r1");
}

}  // namespace
}  // namespace spillway::proxy
