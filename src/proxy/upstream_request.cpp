#include "proxy/upstream_request.hpp"

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

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && boost::beast::iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

std::string upstream_target(const config::region& region, const config::deployment& dep, operation op) {
    std::string t = region.upstream.path_prefix;
    if (region.kind == config::region_kind::openai) {
        t.append("/").append(op_path(op));
    } else if (op == operation::responses) {
        t.append("/openai/v1/responses");
    } else {
        t.append("/openai/deployments/").append(dep.name).append("/").append(op_path(op));
        t.append("?api-version=").append(dep.api_version);
    }
    return t;
}

bool model_in_body(const config::region& region, operation op) {
    return region.kind == config::region_kind::openai || op == operation::responses;
}

std::string upstream_host(const config::endpoint& ep) {
    bool default_port = (ep.tls && ep.port == 443) || (!ep.tls && ep.port == 80);
    if (default_port) return ep.host;
    return ep.host + ":" + std::to_string(ep.port);
}

void copy_request_headers(const bhttp::fields& from, bhttp::fields& to) {
    for (const auto& f : from) {
        bhttp::field id = f.name();
        if (is_hop_by_hop(id) || id == bhttp::field::authorization) continue;
        std::string_view name = f.name_string();
        if (boost::beast::iequals(name, "api-key") || starts_with_nocase(name, "x-spillway-")) continue;
        to.insert(name, f.value());
    }
}

void set_upstream_credentials(const config::region& region, bhttp::fields& to) {
    if (region.api_key.empty()) return;
    if (region.kind == config::region_kind::azure)
        to.set("api-key", region.api_key);
    else
        to.set(bhttp::field::authorization, "Bearer " + region.api_key);
}

void copy_response_headers(const bhttp::fields& from, bhttp::fields& to) {
    for (const auto& f : from) {
        if (is_hop_by_hop(f.name())) continue;
        to.insert(f.name_string(), f.value());
    }
}

}  // namespace spillway::proxy
