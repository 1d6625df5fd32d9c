// How a client request becomes an upstream request (SPEC §3): the URL for the region's kind,
// the body's model for OpenAI-style upstreams, and the headers — the client's key, hop-by-hop
// and spillway's own headers removed, the region's key added.
#pragma once

#include "config/config.hpp"
#include "proxy/api_route.hpp"

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include <string>
#include <string_view>

namespace spillway::proxy {

// Path and query for the upstream: azure `{prefix}/openai/deployments/{name}/{op}?api-version=V`
// (responses: `{prefix}/openai/v1/responses`, the only form Azure serves it in), openai `{prefix}/{op}`.
std::string upstream_target(const config::region& region, const config::deployment& dep, operation op);

// Whether the upstream finds the deployment in the body's `model` rather than in the URL.
bool model_in_body(const config::region& region, operation op);

// Host header value: the host, with the port unless it is the scheme's default.
std::string upstream_host(const config::endpoint& ep);

// Copies end-to-end request headers; drops hop-by-hop ones, Host, Content-Length, the client's
// credentials (api-key, Authorization) and x-spillway-*; then sets the region's credentials.
void copy_request_headers(const boost::beast::http::fields& from, boost::beast::http::fields& to);
void set_upstream_credentials(const config::region& region, boost::beast::http::fields& to);

// Turns an upstream response header into the client's, in place (no copy of the fields):
// removes connection-scoped headers (Connection and what it names, Keep-Alive, Proxy-*, TE,
// Trailer, Upgrade). Content-Length and Transfer-Encoding stay: the relay keeps the upstream's
// framing, so they still describe the body the client receives.
void strip_response_hop_by_hop(boost::beast::http::fields& fields);

}  // namespace spillway::proxy
