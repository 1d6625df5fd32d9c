#include "http/hangup_watch.hpp"

#include <cerrno>
#include <sys/socket.h>

namespace spillway::http {

hangup_watch::exchange::exchange(hangup_watch& watch, tcp::socket& client, tcp::socket& upstream)
    : client_(client), upstream_(upstream), since_tick_(watch.tick_) {
    watch.add(*this);
}

hangup_watch::hangup_watch(net::io_context& io, std::chrono::milliseconds period) : timer_(io), period_(period) {}

hangup_watch::~hangup_watch() { exchanges_.clear(); }

void hangup_watch::add(exchange& e) {
    exchanges_.push_back(e);
    added_since_tick_ = true;
    if (ticking_) return;
    ticking_ = true;
    timer_.expires_after(period_);
    timer_.async_wait([this](error_code ec) {
        if (!ec) tick();
    });
}

void hangup_watch::tick() {
    ++tick_;
    for (auto it = exchanges_.begin(); it != exchanges_.end();) {
        exchange& e = *it;
        // Younger than one period: most are answered before they would be looked at.
        if (e.since_tick_ + 1 >= tick_ || !has_hung_up(e.client_)) {
            ++it;
            continue;
        }
        it = exchanges_.erase(it);
        e.client_gone_ = true;
        error_code ignored;
        e.upstream_.cancel(ignored);
    }
    // Keep ticking while there is traffic; stop after one quiet period.
    if (exchanges_.empty() && !added_since_tick_) {
        ticking_ = false;
        return;
    }
    added_since_tick_ = false;
    timer_.expires_after(period_);
    timer_.async_wait([this](error_code ec) {
        if (!ec) tick();
    });
}

bool hangup_watch::has_hung_up(tcp::socket& client) {
    if (!client.is_open()) return true;
    char byte;
    ssize_t n = ::recv(client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;  // orderly end of stream
    if (n > 0) return false;  // a pipelined request or a TLS record: cannot tell, assume present
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset and the like
}

}  // namespace spillway::http
