// The HTTP/1.1 server side: one listener per worker thread (SO_REUSEPORT), one coroutine per
// connection, keep-alive, and every read bounded by the limits from config. What a request
// means is the handler's business; this file only turns bytes into requests and back.
#pragma once

#include "core/clock.hpp"
#include "core/net.hpp"
#include "http/any_stream.hpp"
#include "http/message_parser.hpp"
#include "http/read_buffer.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace spillway::http {

namespace bhttp = boost::beast::http;

// A request as the server read it: its head, in the parser that read it, and its whole body.
struct request {
    request_parser head;
    std::string body;
};
using string_response = bhttp::response<bhttp::string_body>;

struct server_limits {
    std::uint64_t max_body_bytes = 32 << 20;
    std::uint32_t max_header_bytes = 64 << 10;
    std::chrono::milliseconds header_timeout{10000};
    std::chrono::milliseconds idle_timeout{120000};
    std::uint32_t max_connections = 20000;
};

// Why a request could not be read; the handler turns it into an answer (or none).
enum class read_failure { malformed, header_too_large, body_too_large };

// Per-connection facts a handler may need.
struct connection_info {
    core::time_point request_started;  // when the request's first byte was seen
    bool keep_alive = true;            // the client lets the connection serve again (its Connection header)
};

class request_handler {
public:
    virtual ~request_handler() = default;
    // Serves one complete request on `client`. Returns false when the connection must close
    // (the handler wrote a response that ends it, or the client went away).
    virtual awaitable<bool> serve(request& req, any_stream& client, const connection_info& info) = 0;
    // The answer to a request that could not be read; the connection closes after it.
    virtual string_response reject(read_failure why, unsigned version) = 0;
    // Looks at a request whose head has arrived but not all of its body: an answer here is sent
    // at once, and the body is then dropped as it arrives, never held (or, when the client waits
    // for 100 Continue, not waited for: the connection closes). A request let through is read
    // whole and given to serve(), which decides anew.
    virtual std::optional<string_response> screen(const request_parser&, const connection_info&) { return std::nullopt; }
};

// Shared by all workers: counts open client connections against `max_connections`, and tells
// sessions to stop taking new requests when the process drains.
struct connection_gate {
    std::atomic<std::uint32_t> open{0};
    std::atomic<std::uint32_t> in_flight{0};  // requests being read or served
    std::atomic<bool> draining{false};
};

// Accepts on one io_context. Several listeners (one per worker) bind the same port.
class listener {
public:
    listener(net::io_context& io, tcp::endpoint at, bool reuse_port, server_limits limits,
             ssl::context* tls, request_handler& handler, connection_gate& gate, core::clock& clock);

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    void start();  // spawns the accept loop on the io_context
    void stop();   // closes the acceptor; open connections finish their current request

private:
    awaitable<void> accept_loop();
    awaitable<void> session(tcp::socket socket);
    awaitable<bool> serve_request(any_stream& stream, read_buffer& buffer);  // false: close the connection
    awaitable<void> drain_before_close(any_stream& stream);
    enum class early_answer { none, refused, closed };
    awaitable<early_answer> refuse_early(any_stream& stream, const request_parser& parser, const connection_info& info,
                                         bool waits_for_continue);

    net::io_context& io_;
    tcp::acceptor acceptor_;
    server_limits limits_;
    ssl::context* tls_;
    request_handler& handler_;
    connection_gate& gate_;
    core::clock& clock_;
};

// Writes a complete response; returns false if the write failed.
awaitable<bool> write_response(any_stream& stream, string_response& res);

}  // namespace spillway::http
