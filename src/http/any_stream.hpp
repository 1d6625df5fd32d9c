// A TCP stream that is either plain or TLS, chosen at run time. It models Asio's
// AsyncReadStream/AsyncWriteStream, so Beast's HTTP algorithms are instantiated once for it
// instead of once per stream type, and sessions/upstream code need no templates. It stays where
// it was built (its socket is registered with the io_context's deadline watchdog).
#pragma once

#include "core/net.hpp"
#include "http/deadline_socket.hpp"

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <tuple>
#include <variant>

namespace spillway::http {

namespace ssl = net::ssl;
using tls_stream = beast::ssl_stream<deadline_socket>;

class any_stream {
public:
    using executor_type = deadline_socket::executor_type;

    // TLS when `tls` is given.
    any_stream(tcp::socket s, ssl::context* tls) : stream_(make(std::move(s), tls)) {}
    any_stream(const any_stream&) = delete;
    any_stream& operator=(const any_stream&) = delete;

    executor_type get_executor() noexcept { return tcp_layer().get_executor(); }

    // The TCP layer: the deadline (expires_after/expires_at), socket options, close.
    deadline_socket& tcp_layer() noexcept {
        if (auto* p = std::get_if<deadline_socket>(&stream_)) return *p;
        return std::get<tls_stream>(stream_).next_layer();
    }
    tls_stream* tls() noexcept { return std::get_if<tls_stream>(&stream_); }
    bool is_tls() const noexcept { return std::holds_alternative<tls_stream>(stream_); }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        if (auto* p = std::get_if<deadline_socket>(&stream_)) return p->async_read_some(buffers, std::forward<Token>(token));
        return std::get<tls_stream>(stream_).async_read_some(buffers, std::forward<Token>(token));
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        if (auto* p = std::get_if<deadline_socket>(&stream_)) return p->async_write_some(buffers, std::forward<Token>(token));
        return std::get<tls_stream>(stream_).async_write_some(buffers, std::forward<Token>(token));
    }

private:
    using variant = std::variant<deadline_socket, tls_stream>;
    static variant make(tcp::socket s, ssl::context* tls) {
        if (tls) return variant(std::in_place_type<tls_stream>, std::move(s), *tls);
        return variant(std::in_place_type<deadline_socket>, std::move(s));
    }
    variant stream_;
};

// Writes all of `buffers` (taken by value: the caller's may be gone by the time this runs).
// On a plain socket it first writes without waiting, as much as the kernel takes: an answer
// that fits the socket buffer, the usual case, then needs no asynchronous operation, whose
// completion would cost one more trip through the event loop.
template <class ConstBuffers>
awaitable<std::tuple<error_code, std::size_t>> write_all(any_stream& stream, ConstBuffers buffers) {
    std::size_t written = 0;
    if (!stream.is_tls()) {
        error_code ec;
        written = stream.tcp_layer().write_now(buffers, ec);
        if (!ec && written == net::buffer_size(buffers)) co_return std::tuple{ec, written};
        if (ec && ec != net::error::would_block) co_return std::tuple{stream.tcp_layer().explain(ec), written};
    }
    beast::buffers_suffix<ConstBuffers> rest(buffers);
    rest.consume(written);
    auto [ec, n] = co_await net::async_write(stream, rest, use_nothrow);
    co_return std::tuple{stream.tcp_layer().explain(ec), written + n};
}

}  // namespace spillway::http
