#include "proxy/upstream_request.hpp"

#include "http/wire.hpp"

#include <boost/beast/core/string.hpp>

namespace spillway::proxy {

namespace bhttp = boost::beast::http;

namespace {

// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and framing.
bool is_hop_by_hop(bhttp::field f) {
    switch (f) {
        case bhttp::field::connection:
        case bhttp::field::keep_alive:
        case bhttp::field::proxy_authenticate:
        case bhttp::field::proxy_authorization:
        case bhttp::field::proxy_connection:
        case bhttp::field::te:
        case bhttp::field::trailer:
        case bhttp::field::transfer_encoding:
        case bhttp::field::upgrade:
        case bhttp::field::content_length:
        case bhttp::field::host:
        case bhttp::field::expect:
            return true;
        default:
            return false;
    }
}

// Every field of every message passes these tests, and nearly all fail them: the sizes and the
// first letter are compared inline before a call to Beast's case-insensitive comparison.
bool first_letter_matches(std::string_view s, std::string_view prefix) {
    return (s[0] | 0x20) == (prefix[0] | 0x20);  // prefix starts with a letter
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && first_letter_matches(s, prefix) &&
           boost::beast::iequals(s.substr(0, prefix.size()), prefix);
}

bool equals_nocase(std::string_view s, std::string_view name) {
    return s.size() == name.size() && !s.empty() && first_letter_matches(s, name) && boost::beast::iequals(s, name);
}

// Whether `name` is one of the comma-separated tokens of the Connection header: such headers
// are hop-by-hop too (RFC 9110 §7.6.1).
bool named_in_connection(std::string_view connection, std::string_view name) {
    while (!connection.empty()) {
        auto comma = connection.find(',');
        std::string_view token = connection.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
        if (!token.empty() && boost::beast::iequals(token, name)) return true;
        if (comma == std::string_view::npos) break;
        connection.remove_prefix(comma + 1);
    }
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

void append_forwarded_request_headers(const http::fields& from, std::string& out) {
    std::string_view connection = from[bhttp::field::connection];
    for (const auto& f : from) {
        bhttp::field id = f.name();
        if (is_hop_by_hop(id) || id == bhttp::field::authorization) continue;
        std::string_view name = f.name_string();
        if (equals_nocase(name, "api-key") || starts_with_nocase(name, "x-spillway-")) continue;
        if (!connection.empty() && named_in_connection(connection, name)) continue;
        http::wire::append_field(name, f.value(), out);
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

std::string upstream_request_head(const upstream_wire& wire, operation op, const http::fields& client_headers,
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

void append_client_response_fields(const http::fields& upstream, std::initializer_list<std::string_view> replaced,
                                   std::string& out) {
    std::string_view connection = upstream[bhttp::field::connection];
    for (const auto& f : upstream) {
        bhttp::field id = f.name();
        bool framing = id == bhttp::field::content_length || id == bhttp::field::transfer_encoding;
        if (is_hop_by_hop(id) && !framing) continue;
        std::string_view name = f.name_string();
        if (starts_with_nocase(name, "x-spillway-")) continue;
        if (!connection.empty() && named_in_connection(connection, name)) continue;
        bool is_replaced = false;
        for (std::string_view r : replaced) is_replaced = is_replaced || equals_nocase(name, r);
        if (is_replaced) continue;
        http::wire::append_field(name, f.value(), out);
    }
}

}  // namespace spillway::proxy
