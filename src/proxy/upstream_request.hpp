// How a client request becomes an upstream request (SPEC §3): the URL for the region's kind,
// the body's model for OpenAI-style upstreams, and the headers — the client's key, hop-by-hop
// and spillway's own headers removed, the region's key added.
#pragma once

#include "config/config.hpp"
#include "http/message_parser.hpp"
#include "proxy/api_route.hpp"

#include <array>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace spillway::proxy {

// Path and query for the upstream: azure `{prefix}/openai/deployments/{name}/{op}?api-version=V`
// (responses: `{prefix}/openai/v1/responses`, the only form Azure serves it in), openai `{prefix}/{op}`.
std::string upstream_target(const config::region& region, const config::deployment& dep, operation op);
void append_upstream_target(const config::region& region, const config::deployment& dep, operation op,
                            std::string& out);

// Whether the upstream finds the deployment in the body's `model` rather than in the URL.
bool model_in_body(const config::region& region, operation op);

// Host header value: the host, with the port unless it is the scheme's default.
std::string upstream_host(const config::endpoint& ep);
void append_upstream_host(const config::endpoint& ep, std::string& out);

// Appends the client's end-to-end request headers as "Name: value\r\n" lines; drops hop-by-hop
// ones (and those named in Connection), Host, Content-Length, the client's credentials
// (api-key, Authorization) and x-spillway-*.
void append_forwarded_request_headers(std::span<const http::head_field> from, std::string& out);
// The region's credentials: `api-key` for azure, `Authorization: Bearer` for openai; none when
// the region has no key.
void append_upstream_credentials(const config::region& region, std::string& out);

// What the upstream request head of one deployment holds for every request, written once per
// config snapshot rather than per request: the request line of each operation, and Host with
// the region's credentials.
struct upstream_wire {
    std::array<std::string, operation_count> request_lines;  // "POST {target} HTTP/1.1\r\n"
    std::string fixed_fields;                                 // "Host: ...\r\n" and the credentials
};
upstream_wire make_upstream_wire(const config::region& region, const config::deployment& dep);

// The complete head of the upstream request — request line, forwarded headers, Host, the
// region's credentials, Content-Length and the blank line — ready to be written before the body.
std::string upstream_request_head(const upstream_wire& wire, operation op, std::span<const http::head_field> client_headers,
                                  std::size_t body_size);

// Appends the upstream response's fields for the client as "Name: value\r\n" lines, in one pass
// with no change to the parsed message: without connection-scoped headers (Connection and what
// it names, Keep-Alive, Proxy-*, TE, Trailer, Upgrade), without x-spillway-* (spillway writes
// its own), and without the names in `replaced` (lowercase). Content-Length and
// Transfer-Encoding stay unless replaced: the relay keeps the upstream's framing, so they
// still describe the body.
void append_client_response_fields(std::span<const http::head_field> upstream,
                                   std::initializer_list<std::string_view> replaced, std::string& out);

}  // namespace spillway::proxy
