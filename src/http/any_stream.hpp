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

// How far a write got without waiting.
struct write_progress {
    error_code ec;
    std::size_t written = 0;
    bool finished = false;  // all written, or failed: nothing is left to wait for
};

// On a plain socket, writes as much as the kernel takes now: an answer that fits the socket
// buffer, the usual case, then needs no asynchronous operation, whose completion would cost one
// more trip through the event loop (and a coroutine frame). A TLS stream writes nothing here.
template <class ConstBuffers>
write_progress write_at_once(any_stream& stream, const ConstBuffers& buffers) {
    write_progress p;
    if (stream.is_tls()) return p;
    p.written = stream.tcp_layer().write_now(buffers, p.ec);
    if (p.ec == net::error::would_block) p.ec = {};
    p.finished = p.ec || p.written == net::buffer_size(buffers);
    if (p.ec) p.ec = stream.tcp_layer().explain(p.ec);
    return p;
}

// Writes what write_at_once left: `buffers` past the first `written` bytes (taken by value: the
// caller's may be gone by the time this runs).
template <class ConstBuffers>
awaitable<std::tuple<error_code, std::size_t>> write_rest(any_stream& stream, ConstBuffers buffers, std::size_t written) {
    beast::buffers_suffix<ConstBuffers> rest(buffers);
    rest.consume(written);
    auto [ec, n] = co_await net::async_write(stream, rest, use_nothrow);
    co_return std::tuple{stream.tcp_layer().explain(ec), written + n};
}

// Writes all of `buffers`: at once where it can, waiting for the socket only for the rest.
// (On the hot path callers use the two steps themselves, which spares this frame.)
template <class ConstBuffers>
awaitable<std::tuple<error_code, std::size_t>> write_all(any_stream& stream, ConstBuffers buffers) {
    const write_progress now = write_at_once(stream, buffers);
    if (now.finished) co_return std::tuple{now.ec, now.written};
    co_return co_await write_rest(stream, buffers, now.written);
}

}  // namespace spillway::http
