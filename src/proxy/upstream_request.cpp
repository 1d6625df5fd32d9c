#include "proxy/upstream_request.hpp"

#include "http/field_name.hpp"
#include "http/wire.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/container/small_vector.hpp>

namespace spillway::proxy {

namespace {

using http::name_is;
using http::name_starts_with;

// Fields that describe one connection, not the message (RFC 9110 §7.6.1), and Host and Expect,
// which spillway answers for itself; by name, sizes first.
bool is_connection_scoped(std::string_view name) {
    switch (name.size()) {
        case 2: return name_is(name, "te");
        case 4: return name_is(name, "host");
        case 6: return name_is(name, "expect");
        case 7: return name_is(name, "trailer") || name_is(name, "upgrade");
        case 10: return name_is(name, "connection") || name_is(name, "keep-alive");
        case 16: return name_is(name, "proxy-connection");
        case 18: return name_is(name, "proxy-authenticate");
        case 19: return name_is(name, "proxy-authorization");
        default: return false;
    }
}

// The body's framing: the relay keeps an answer's, and an upstream request gets its own.
bool is_framing(std::string_view name) {
    return name_is(name, "content-length") || name_is(name, "transfer-encoding");
}

// The client's key, in either form: the upstream gets the region's instead.
bool is_client_credential(std::string_view name) {
    return name_is(name, "api-key") || name_is(name, "authorization");
}

// The options of every Connection field: the fields they name are hop-by-hop too (RFC 9110
// §7.6.1). The parsers refuse a head with more than http::max_connection_options of them, which
// bounds the comparisons per field.
using connection_options = boost::container::small_vector<std::string_view, 4>;

connection_options connection_options_of(std::span<const http::head_field> fields) {
    connection_options options;
    for (const auto& f : fields)
        if (name_is(f.name, "connection")) http::for_each_token(f.value, [&](std::string_view o) { options.push_back(o); });
    return options;
}

bool named_in(const connection_options& options, std::string_view name) {
    for (std::string_view o : options)
        if (o.size() == name.size() && boost::beast::iequals(o, name)) return true;
    return false;
}

}  // namespace

void append_upstream_target(const config::region& region, const config::deployment& dep, operation op,
                            std::string& out) {
    out.append(region.upstream.path_prefix);
    if (region.kind == config::region_kind::openai) {
        out.append("/").append(op_path(op));
    } else if (op == operation::responses) {
        out.append("/openai/v1/responses");
    } else {
        out.append("/openai/deployments/").append(dep.name).append("/").append(op_path(op));
        out.append("?api-version=").append(dep.api_version);
    }
}

std::string upstream_target(const config::region& region, const config::deployment& dep, operation op) {
    std::string t;
    append_upstream_target(region, dep, op, t);
    return t;
}

bool model_in_body(const config::region& region, operation op) {
    return region.kind == config::region_kind::openai || op == operation::responses;
}

void append_upstream_host(const config::endpoint& ep, std::string& out) {
    const bool ipv6_literal = ep.host.find(':') != std::string::npos;
    if (ipv6_literal) out.push_back('[');
    out.append(ep.host);
    if (ipv6_literal) out.push_back(']');
    const bool default_port = (ep.tls && ep.port == 443) || (!ep.tls && ep.port == 80);
    if (!default_port) out.append(":").append(std::to_string(ep.port));
}

std::string upstream_host(const config::endpoint& ep) {
    std::string host;
    append_upstream_host(ep, host);
    return host;
}

void append_forwarded_request_headers(std::span<const http::head_field> from, std::string& out) {
    const connection_options connection = connection_options_of(from);
    for (const auto& f : from) {
        if (is_connection_scoped(f.name) || is_framing(f.name) || is_client_credential(f.name) ||
            name_starts_with(f.name, "x-spillway-"))
            continue;
        if (!connection.empty() && named_in(connection, f.name)) continue;
        http::wire::append_field(f.name, f.value, out);
    }
}

void append_upstream_credentials(const config::region& region, std::string& out) {
    if (region.api_key.empty()) return;
    if (region.kind == config::region_kind::azure) {
        http::wire::append_field("api-key", region.api_key, out);
    } else {
        out.append("Authorization: Bearer ").append(region.api_key).append(http::wire::crlf);
    }
}

upstream_wire make_upstream_wire(const config::region& region, const config::deployment& dep) {
    upstream_wire wire;
    for (std::size_t i = 0; i < operation_count; ++i) {
        std::string& line = wire.request_lines[i];
        line.append("POST ");
        append_upstream_target(region, dep, static_cast<operation>(i), line);
        line.append(" HTTP/1.1").append(http::wire::crlf);
    }
    wire.fixed_fields.append("Host: ");
    append_upstream_host(region.upstream, wire.fixed_fields);
    wire.fixed_fields.append(http::wire::crlf);
    append_upstream_credentials(region, wire.fixed_fields);
    return wire;
}

std::string upstream_request_head(const upstream_wire& wire, operation op, std::span<const http::head_field> client_headers,
                                  std::size_t body_size) {
    std::string head;
    head.reserve(1024);
    head.append(wire.request_lines[static_cast<std::size_t>(op)]);
    append_forwarded_request_headers(client_headers, head);
    head.append(wire.fixed_fields);
    http::wire::append_field("Content-Length", std::to_string(body_size), head);
    head.append(http::wire::crlf);
    return head;
}

void append_client_response_fields(std::span<const http::head_field> upstream,
                                   std::initializer_list<std::string_view> replaced, std::string& out) {
    const connection_options connection = connection_options_of(upstream);
    for (const auto& f : upstream) {
        if (is_connection_scoped(f.name) || name_starts_with(f.name, "x-spillway-")) continue;
        if (!connection.empty() && named_in(connection, f.name)) continue;
        bool is_replaced = false;
        for (std::string_view r : replaced) is_replaced = is_replaced || name_is(f.name, r);
        if (is_replaced) continue;
        http::wire::append_field(f.name, f.value, out);
    }
}

}  // namespace spillway::proxy
