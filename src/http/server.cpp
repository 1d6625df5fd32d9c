#include "http/server.hpp"

#include "http/field_name.hpp"
#include "http/parse_buffered.hpp"
#include "http/read_buffer.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <tuple>

namespace spillway::http {

namespace {

constexpr std::size_t idle_read_bytes = 1024;
constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";

// RFC 9110 §10.1.1: an HTTP/1.1 client that sent `Expect: 100-continue` waits (for a while)
// before it sends the body, unless it is told to go on. Sent only when the limits let the body
// in and none of it has arrived yet.
bool expects_continue(const request_parser& p) {
    return p.version() == 11 && name_is(p["expect"], "100-continue");
}

// Whether all of a declared body came with the head (most requests): then nothing is spared by
// refusing the request before its body is read.
bool body_buffered(const request_parser& p, const read_buffer& buffer) {
    return p.content_length() && buffer.size() >= *p.content_length();
}

// The request body's string, given to the parser as its window. It grows by doubling from
// 16 KiB as the body arrives, so memory follows what was received, not what a Content-Length
// announced; a declared length over the limit is refused before a byte of the body is read.
// A chunked body's window holds one byte more than the limit: a body that fills it is over the
// limit, and one of exactly the limit still gets its last chunk parsed.
class body_space {
public:
    body_space(std::string& body, std::uint64_t limit) : body_(body), limit_(limit) {}

    static bool full_or_done(const request_parser& p) { return p.is_done() || p.body().size == 0; }

    error_code open(request_parser& p) {
        const auto length = p.content_length();
        if (length && *length > limit_) return bhttp::error::body_limit;
        most_ = length ? *length : std::max(limit_, limit_ + 1);  // (the limit may be the largest number)
        return resize(p, 0, std::min<std::uint64_t>(16 * 1024, most_));
    }
    // From now on the body is dropped as it arrives: the window is used again from its start.
    void drop() { dropping_ = true; }
    // The window is full and the body goes on.
    error_code grow(request_parser& p) {
        const std::size_t filled = body_.size();
        if (dropping_) {
            // The window shrinks to what the limit still allows, so the limit holds exactly.
            dropped_ += filled;
            if (dropped_ >= most_) return bhttp::error::body_limit;
            return resize(p, 0, std::min<std::uint64_t>(filled, most_ - dropped_));
        }
        if (filled >= most_) return bhttp::error::body_limit;
        return resize(p, filled, std::min<std::uint64_t>(2 * static_cast<std::uint64_t>(filled), most_));
    }
    // Whether more than the limit arrived. A chunked body can fill the window's last byte (the
    // limit and one) and end in the same read, its last chunk with it: grow() never sees that.
    bool over_limit(const request_parser& p) const {
        return p.body().data && dropped_ + static_cast<std::uint64_t>(p.body().data - body_.data()) > limit_;
    }
    // Only what was received stays.
    void close(const request_parser& p) {
        if (p.body().data) body_.resize(static_cast<std::size_t>(p.body().data - body_.data()));
    }

private:
    error_code resize(request_parser& p, std::size_t filled, std::uint64_t size) {
        body_.resize(static_cast<std::size_t>(size));
        p.body() = {body_.data() + filled, body_.size() - filled};
        return {};
    }

    std::string& body_;
    std::uint64_t limit_;
    std::uint64_t most_ = 0;  // the window's largest size: the declared length, or the limit and one
    bool dropping_ = false;
    std::uint64_t dropped_ = 0;  // bytes of windows used again
};

void log_escaped(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        spdlog::error("connection task ended by an exception: {}", ex.what());
    }
}

read_failure classify(const error_code& ec) {
    if (ec == bhttp::error::header_limit) return read_failure::header_too_large;
    if (ec == bhttp::error::body_limit) return read_failure::body_too_large;
    return read_failure::malformed;
}

// Errors that mean the peer went away or was too slow: nothing to answer.
bool is_disconnect(const error_code& ec) {
    return ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
           ec == beast::error::timeout || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::operation_aborted ||
           ec == net::error::broken_pipe || ec == net::ssl::error::stream_truncated;
}

}  // namespace

listener::listener(net::io_context& io, tcp::endpoint at, bool reuse_port, server_limits limits,
                   ssl::context* tls, request_handler& handler, connection_gate& gate,
                   core::clock& clock)
    : io_(io), acceptor_(io), limits_(limits), tls_(tls), handler_(handler), gate_(gate), clock_(clock) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    if (reuse_port) {
        int one = 1;
        ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    acceptor_.bind(at);
    acceptor_.listen(net::socket_base::max_listen_connections);
}

void listener::start() {
    net::co_spawn(io_, accept_loop(), log_escaped);
}

void listener::stop() {
    error_code ignored;
    acceptor_.close(ignored);
}

awaitable<void> listener::accept_loop() {
    while (acceptor_.is_open()) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        if (ec) {
            // EMFILE and friends: back off briefly instead of spinning on the error.
            spdlog::warn("accept failed: {}", ec.message());
            net::steady_timer pause(io_, std::chrono::milliseconds(50));
            co_await pause.async_wait(use_nothrow);
            continue;
        }
        if (gate_.open.fetch_add(1) >= limits_.max_connections) {
            gate_.open.fetch_sub(1);
            socket.close(ec);  // over max_connections: refuse by closing at once
            continue;
        }
        net::co_spawn(io_, session(std::move(socket)), [this](std::exception_ptr e) {
            gate_.open.fetch_sub(1);
            log_escaped(e);
        });
    }
}

// One coroutine frame lives as long as the connection, so it is kept small: what a request
// needs lives in serve_request's frame, which exists only while a request is being served.
awaitable<void> listener::session(tcp::socket socket) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    any_stream stream(std::move(socket), tls_);
    if (auto* tls = stream.tls()) {
        stream.tcp_layer().expires_after(limits_.header_timeout);
        auto [hec] = co_await tls->async_handshake(ssl::stream_base::server, use_nothrow);
        if (hec) co_return;
    }
    read_buffer buffer;
    // An idle keep-alive connection holds no read buffer: the wait for the next request's first
    // bytes reads into this small array, and only then takes a buffer (most requests arrive
    // whole in one read of either).
    std::array<char, idle_read_bytes> first_bytes;
    while (!gate_.draining.load(std::memory_order_relaxed)) {
        // Idle keep-alive wait: bounded by idle_timeout until the next request's first byte.
        if (buffer.size() == 0) {
            stream.tcp_layer().expires_after(limits_.idle_timeout);
            buffer.shrink_to_fit();
            auto [rec, n] = co_await stream.async_read_some(net::buffer(first_bytes), use_nothrow);
            if (rec) break;
            buffer.reserve(read_block_bytes);
            buffer.commit(net::buffer_copy(buffer.prepare(n), net::buffer(first_bytes.data(), n)));
        }
        if (!co_await serve_request(stream, buffer)) break;
    }
    if (auto* tls = stream.tls()) {
        stream.tcp_layer().expires_after(std::chrono::seconds(1));
        co_await tls->async_shutdown(use_nothrow);
    } else {
        stream.tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
    }
}

awaitable<bool> listener::serve_request(any_stream& stream, read_buffer& buffer) {
    connection_info info{clock_.now()};
    gate_.in_flight.fetch_add(1);
    struct in_flight_guard {
        std::atomic<std::uint32_t>& n;
        ~in_flight_guard() { n.fetch_sub(1); }
    } guard{gate_.in_flight};

    request req;
    request_parser& parser = req.head;
    parser.header_limit(limits_.max_header_bytes);
    // The head must arrive within header_timeout (slow-loris defence); the body, up to
    // max_body_bytes, within idle_timeout of each read. What is already buffered is parsed
    // without a read: most requests arrive whole with their first bytes.
    auto head_done = [](const request_parser& p) { return p.is_header_done(); };
    error_code ec = parse_buffered(parser, buffer, head_done);
    if (!ec && !parser.is_header_done()) {
        stream.tcp_layer().expires_after(limits_.header_timeout);
        std::tie(ec, std::ignore) = co_await read_until(stream, buffer, parser, head_done);
    }
    body_space body(req.body, limits_.max_body_bytes);
    if (!ec && !parser.is_done()) ec = body.open(parser);
    const bool waits_for_continue = !ec && !parser.is_done() && buffer.size() == 0 && expects_continue(parser);
    bool refused = false;
    // A refused body is read only so that the client gets to read its answer (see refuse_early),
    // and all of it within one header_timeout: a client that showed no valid key cannot hold
    // the connection open with a trickle, one byte per idle_timeout.
    deadline_socket::clock_type::time_point drop_by{};
    if (!ec && !parser.is_done() && !body_buffered(parser, buffer)) {
        switch (co_await refuse_early(stream, parser, info, waits_for_continue)) {
            case early_answer::none: break;
            case early_answer::refused:
                refused = true;
                body.drop();
                drop_by = deadline_socket::clock_type::now() + limits_.header_timeout;
                break;
            case early_answer::closed: co_return false;
        }
    }
    if (waits_for_continue && !refused) {
        // The client waits for this before it sends the body (curl does for larger bodies).
        stream.tcp_layer().expires_after(limits_.header_timeout);
        std::tie(ec, std::ignore) = co_await write_all(stream, std::array{net::buffer(continue_line)});
    }
    while (!ec && !parser.is_done()) {
        ec = parse_buffered(parser, buffer, body_space::full_or_done);
        if (!ec && !body_space::full_or_done(parser)) {
            if (refused)
                stream.tcp_layer().expires_at(drop_by);
            else
                stream.tcp_layer().expires_after(limits_.idle_timeout);
            std::tie(ec, std::ignore) = co_await read_until(stream, buffer, parser, body_space::full_or_done);
        }
        if (ec == bhttp::error::need_buffer) ec = {};
        if (!ec && !parser.is_done()) ec = body.grow(parser);
    }
    if (!ec && body.over_limit(parser)) ec = bhttp::error::body_limit;
    body.close(parser);
    if (ec) {
        if (is_disconnect(ec)) co_return false;
        if (refused) {  // already answered: only the connection is left to close
            co_await drain_before_close(stream);
            co_return false;
        }
        // Malformed or over a limit: answer once, then close, so that nothing the client
        // sent after the bad part can be read as a second request (request smuggling).
        auto res = handler_.reject(classify(ec), parser.is_header_done() ? parser.version() : 11);
        res.keep_alive(false);
        stream.tcp_layer().expires_after(limits_.header_timeout);
        if (co_await write_response(stream, res)) co_await drain_before_close(stream);
        co_return false;
    }
    if (refused) co_return parser.keep_alive();
    stream.tcp_layer().expires_never();
    const bool keep_alive = parser.keep_alive();
    info.keep_alive = keep_alive;
    const bool ok = co_await handler_.serve(req, stream, info);
    co_return ok && keep_alive;
}

// A request whose body has not all come with its head is put to the handler first (its key, its
// URL), so that a refusal spares reading it into memory. The refusal goes out at once; the body
// is then read and dropped, because a client that sends all of it before it reads would meet a
// reset if the connection closed with its body unread (RFC 9110 §10.1.1 lets a server answer
// early if it reads the rest or closes). A client that waits for 100 Continue sends no body
// after a final answer: that connection closes.
awaitable<listener::early_answer> listener::refuse_early(any_stream& stream, const request_parser& parser,
                                                         const connection_info& info, bool waits_for_continue) {
    auto refusal = handler_.screen(parser, info);
    if (!refusal) co_return early_answer::none;
    refusal->keep_alive(!waits_for_continue && parser.keep_alive());
    stream.tcp_layer().expires_after(limits_.header_timeout);
    if (!co_await write_response(stream, *refusal)) co_return early_answer::closed;
    if (!waits_for_continue) co_return early_answer::refused;
    co_await drain_before_close(stream);
    co_return early_answer::closed;
}

// Closing a socket with unread input makes the kernel send a reset, which can destroy the error
// answer before the client reads it (clients usually finish sending a body first). So stop
// sending, then read and discard what is still coming, for a bounded time and amount.
awaitable<void> listener::drain_before_close(any_stream& stream) {
    error_code ec;
    if (stream.is_tls()) co_return;  // a TLS close is a handshake of its own; the session does it
    stream.tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.tcp_layer().expires_after(std::min<std::chrono::milliseconds>(limits_.header_timeout, std::chrono::seconds(2)));
    std::array<char, 16 * 1024> sink;
    std::size_t total = 0;
    while (total < 4 * 1024 * 1024) {
        auto [rec, n] = co_await stream.async_read_some(net::buffer(sink), use_nothrow);
        if (rec) break;
        total += n;
    }
}

awaitable<bool> write_response(any_stream& stream, string_response& res) {
    res.prepare_payload();
    auto [ec, n] = co_await bhttp::async_write(stream, res, use_nothrow);
    co_return !ec;
}

}  // namespace spillway::http
