// A TCP stream that is either plain or TLS, chosen at run time. It models Asio's
// AsyncReadStream/AsyncWriteStream, so Beast's HTTP algorithms are instantiated once for it
// instead of once per stream type, and sessions/upstream code need no templates.
#pragma once

#include "core/net.hpp"

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <variant>

namespace spillway::http {

namespace ssl = net::ssl;
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

class any_stream {
public:
    using executor_type = plain_stream::executor_type;

    explicit any_stream(plain_stream s) : stream_(std::in_place_type<plain_stream>, std::move(s)) {}
    explicit any_stream(tls_stream s) : stream_(std::in_place_type<tls_stream>, std::move(s)) {}
    any_stream(tcp::socket s, ssl::context& ctx)
        : stream_(std::in_place_type<tls_stream>, std::move(s), ctx) {}

    executor_type get_executor() noexcept { return tcp_layer().get_executor(); }

    // The TCP layer: timeouts (expires_after/expires_at), socket options, close.
    plain_stream& tcp_layer() noexcept {
        if (auto* p = std::get_if<plain_stream>(&stream_)) return *p;
        return beast::get_lowest_layer(std::get<tls_stream>(stream_));
    }
    tls_stream* tls() noexcept { return std::get_if<tls_stream>(&stream_); }
    bool is_tls() const noexcept { return std::holds_alternative<tls_stream>(stream_); }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
                std::visit([&](auto& s) { s.async_read_some(b, std::move(handler)); }, stream_);
            },
            token, buffers);
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                std::visit([&](auto& s) { s.async_write_some(b, std::move(handler)); }, stream_);
            },
            token, buffers);
    }

private:
    std::variant<plain_stream, tls_stream> stream_;
};

}  // namespace spillway::http
