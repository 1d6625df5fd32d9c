// Keep-alive connections to one upstream endpoint, owned by one worker thread (never shared,
// so no locks). A connection is taken for one exchange and given back only if the exchange
// left it reusable.
#pragma once

#include "core/net.hpp"
#include "http/any_stream.hpp"
#include "http/message_parser.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace spillway::http {

struct upstream_target {
    std::string host;
    std::uint16_t port = 0;
    bool tls = false;
    ssl::context* tls_context = nullptr;  // required when tls; verification mode lives in it
    bool verify_host = true;              // check the certificate names `host`
    std::chrono::milliseconds connect_timeout{3000};
    std::size_t max_idle = 256;
};

struct upstream_connection {
    // The buffer starts large: Beast reads at most the buffer's free capacity, and a 512-byte
    // default would take several reads (and syscalls) for one small answer.
    upstream_connection(tcp::socket s, ssl::context* tls) : stream(std::move(s), tls) { buffer.reserve(16 * 1024); }
    any_stream stream;
    beast::flat_buffer buffer;
    // The answer being read, its body relayed piece by piece. It lives here rather than in the
    // proxy's coroutine frame, and keeps its memory from one answer to the next.
    answer_parser parser;
    // True once it has carried an exchange: a failure before the first response byte on such a
    // connection is most likely the server having closed it while idle, not a broken upstream.
    bool reused = false;
};

using connection_ptr = std::unique_ptr<upstream_connection>;

// TCP keep-alive on an upstream connection: after `idle` without traffic the kernel probes the
// peer every `interval` and gives up after `probes` unanswered ones. A non-streaming answer
// comes only after the whole generation, minutes of silence on the wire: the probes keep NAT
// and load-balancer mappings from expiring meanwhile (Azure's SNAT drops idle flows after 4
// minutes), and find a peer that vanished without a FIN long before the request's deadline.
struct tcp_keepalive {
    std::chrono::seconds idle{30};
    std::chrono::seconds interval{10};
    int probes = 3;
};
error_code enable_keepalive(tcp::socket& socket, const tcp_keepalive& settings = {});

class upstream_pool {
public:
    upstream_pool(net::io_context& io, upstream_target target);

    // The most recently released idle connection, or null when none is kept.
    connection_ptr take_idle();
    // A new connection: resolve, connect and TLS handshake, bounded by connect_timeout and by
    // `budget` (what is left of the request deadline).
    awaitable<std::tuple<error_code, connection_ptr>> connect(std::chrono::nanoseconds budget);
    void release(connection_ptr conn);

    std::uint64_t connections_opened() const noexcept { return opened_; }
    std::size_t idle_count() const noexcept { return idle_.size(); }
    const upstream_target& target() const noexcept { return target_; }

private:
    net::io_context& io_;
    upstream_target target_;
    std::vector<connection_ptr> idle_;
    tcp::resolver::results_type resolved_;
    std::uint64_t opened_ = 0;
};

}  // namespace spillway::http
