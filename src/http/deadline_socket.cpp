#include "http/deadline_socket.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

#include <algorithm>

namespace spillway::http {

namespace {

deadline_watchdog& watchdog_of(tcp::socket& socket) {
    auto& context = net::query(socket.get_executor(), net::execution::context);
    return net::use_service<deadline_watchdog>(context);
}

}  // namespace

deadline_socket::deadline_socket(tcp::socket socket) : socket_(std::move(socket)), watchdog_(watchdog_of(socket_)) {}

deadline_socket::~deadline_socket() = default;  // the auto-unlink hook leaves the watchdog's list

void deadline_socket::expires_at(clock_type::time_point at) {
    deadline_ = at;
    timed_out_ = false;
    watchdog_.arm(*this);
}

void deadline_socket::expires_never() {
    deadline_ = clock_type::time_point::max();
    timed_out_ = false;
    armed_.unlink();
}

error_code deadline_socket::explain(error_code ec) const {
    if (timed_out_ && (ec == net::error::operation_aborted || ec == net::error::bad_descriptor))
        return beast::error::timeout;
    return ec;
}

net::execution_context::id deadline_watchdog::id;

deadline_watchdog::deadline_watchdog(net::execution_context& context)
    // Every socket spillway makes runs on an io_context.
    : net::execution_context::service(context),
#if SPILLWAY_HAS_EDGE_READ
      reactor_(reactor_of(context)),
#endif
      timer_(static_cast<net::io_context&>(context)) {}

void deadline_watchdog::shutdown() {
    armed_.clear();
    timer_.cancel();
}

void deadline_watchdog::arm(deadline_socket& s) {
    if (!s.armed_.is_linked()) armed_.push_back(s);
    // Only a deadline earlier than the next wake moves the timer; the usual case, a deadline
    // pushed later on a busy connection, costs nothing here.
    if (!waiting_ || s.deadline_ < next_wake_) wake_at(s.deadline_);
}

void deadline_watchdog::wake_at(deadline_socket::clock_type::time_point at) {
    next_wake_ = at;
    waiting_ = true;
    timer_.expires_at(at);  // cancels the earlier wait, whose handler then sees operation_aborted
    timer_.async_wait([this](error_code ec) {
        if (ec) return;  // replaced by a newer wait, or shutting down
        waiting_ = false;
        on_tick();
    });
}

void deadline_watchdog::on_tick() {
    const auto now = deadline_socket::clock_type::now();
    auto earliest = deadline_socket::clock_type::time_point::max();
    for (auto it = armed_.begin(); it != armed_.end();) {
        deadline_socket& s = *it;
        if (s.deadline_ > now) {
            earliest = std::min(earliest, s.deadline_);
            ++it;
            continue;
        }
        it = armed_.erase(it);
        s.deadline_ = deadline_socket::clock_type::time_point::max();
        s.timed_out_ = true;
        error_code ignored;
        s.socket_.close(ignored);  // pending operations end with operation_aborted
    }
    if (earliest != deadline_socket::clock_type::time_point::max()) wake_at(std::max(earliest, now + granularity));
}

}  // namespace spillway::http
