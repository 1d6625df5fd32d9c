// A TCP socket with one deadline for whatever I/O is pending on it, enforced by a watchdog that
// each io_context owns. Beast's tcp_stream arms a timer around every read and write, and on a
// quiet connection each of those re-arms the kernel timer (a timerfd_settime per operation);
// here moving a deadline is a store, and the watchdog wakes only when some deadline may be due.
//
// A deadline that passes closes the socket, as Beast's tcp_stream does: pending operations end
// with operation_aborted, and `explain` turns that into beast::error::timeout for callers that
// tell a timeout apart from a reset.
#pragma once

#include "core/net.hpp"
#include "http/edge_read.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <chrono>
#include <type_traits>

namespace spillway::http {

class deadline_watchdog;

class deadline_socket {
public:
    using executor_type = net::any_io_executor;
    using lowest_layer_type = deadline_socket;  // for asio::ssl::stream layered on top
    using clock_type = std::chrono::steady_clock;

    explicit deadline_socket(tcp::socket socket);
    ~deadline_socket();
    deadline_socket(const deadline_socket&) = delete;
    deadline_socket& operator=(const deadline_socket&) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    tcp::socket& socket() noexcept { return socket_; }
    lowest_layer_type& lowest_layer() noexcept { return *this; }

    // The socket is closed if I/O is still going on (or starts) after this point.
    void expires_at(clock_type::time_point at);
    void expires_after(std::chrono::nanoseconds d) { expires_at(clock_type::now() + d); }
    void expires_never();
    bool timed_out() const noexcept { return timed_out_; }
    // `ec` as the caller should see it: an operation cut short by the deadline is a timeout.
    error_code explain(error_code ec) const;

    // Writes what the kernel takes now: would_block instead of waiting (see write_all).
    template <class ConstBuffers>
    std::size_t write_now(const ConstBuffers& buffers, error_code& ec) {
        if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
        return ec ? 0 : socket_.write_some(buffers, ec);
    }

    // A read into one buffer (every read of spillway's, and the TLS layer's) waits for readiness
    // after a read that emptied the socket, rather than trying a recv first (see edge_read.hpp).
    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token);
    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return socket_.async_write_some(buffers, std::forward<Token>(token));
    }

private:
    friend class deadline_watchdog;
    using hook = boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

    tcp::socket socket_;
    deadline_watchdog& watchdog_;
    clock_type::time_point deadline_ = clock_type::time_point::max();
    bool timed_out_ = false;
    bool edge_reads_asked_ = false;  // enable_edge_reads was called (see edge_read.hpp)
    hook armed_;  // linked into the watchdog's list while a deadline is set
};

// One per io_context (an Asio service): the sockets with a deadline, and a timer that fires at
// the earliest deadline it knows of, but not more often than every `granularity`, so that a
// deadline is enforced at most that late.
class deadline_watchdog : public net::execution_context::service {
public:
    using key_type = deadline_watchdog;
    static net::execution_context::id id;
    static constexpr std::chrono::milliseconds granularity{20};

    explicit deadline_watchdog(net::execution_context& context);
#if SPILLWAY_HAS_EDGE_READ
    edge_read_detail::reactor& reactor() noexcept { return reactor_; }
#endif
    void arm(deadline_socket& s);  // s.deadline_ was just set
    std::size_t armed_count() const noexcept { return armed_.size(); }

private:
    using armed_list = boost::intrusive::list<
        deadline_socket, boost::intrusive::member_hook<deadline_socket, deadline_socket::hook, &deadline_socket::armed_>,
        boost::intrusive::constant_time_size<false>>;

    void shutdown() override;
    void wake_at(deadline_socket::clock_type::time_point at);
    void on_tick();

#if SPILLWAY_HAS_EDGE_READ
    edge_read_detail::reactor& reactor_;
#endif
    net::steady_timer timer_;
    armed_list armed_;
    bool waiting_ = false;
    deadline_socket::clock_type::time_point next_wake_ = deadline_socket::clock_type::time_point::max();
};

template <class MutableBuffers, class Token>
auto deadline_socket::async_read_some(const MutableBuffers& buffers, Token&& token) {
#if SPILLWAY_HAS_EDGE_READ
    if constexpr (std::is_convertible_v<const MutableBuffers&, net::mutable_buffer>) {
        // The socket is open by the first read (accepted, or connected by the upstream pool). If
        // the kernel refuses, reads are Asio's, one recv more each.
        if (!edge_reads_asked_) {
            edge_reads_asked_ = true;
            enable_edge_reads(socket_);
        }
        return async_read_some_edge(socket_, watchdog_.reactor(), net::mutable_buffer(buffers), std::forward<Token>(token));
    } else
#endif
        return socket_.async_read_some(buffers, std::forward<Token>(token));
}

}  // namespace spillway::http
