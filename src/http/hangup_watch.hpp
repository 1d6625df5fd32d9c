// Notices clients that hang up while their request waits for an upstream's answer, so that the
// upstream exchange (and the tokens it spends) can be cancelled. A non-streaming answer's head
// comes only after the whole generation, often seconds.
//
// Every `period` the watch peeks at the client sockets of the exchanges that were already
// waiting at its previous look. A request answered within one period costs no syscall, and no
// timer is armed per request: the timer ticks while there is traffic and stops when there is none.
// (A TLS client's close_notify is data, not an end of stream: it cannot be told from a live client.)
#pragma once

#include "core/net.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <chrono>
#include <cstdint>

namespace spillway::http {

class hangup_watch {
public:
    using hook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

    // One exchange being watched, for as long as it lives (it unlinks itself when destroyed).
    class exchange : public hook {
    public:
        exchange(hangup_watch& watch, tcp::socket& client, tcp::socket& upstream);
        exchange(const exchange&) = delete;
        exchange& operator=(const exchange&) = delete;
        // The client left; the upstream socket's pending operations were cancelled.
        bool client_gone() const noexcept { return client_gone_; }

    private:
        friend class hangup_watch;
        tcp::socket& client_;
        tcp::socket& upstream_;
        std::uint64_t since_tick_;
        bool client_gone_ = false;
    };

    explicit hangup_watch(net::io_context& io, std::chrono::milliseconds period = std::chrono::milliseconds(100));
    ~hangup_watch();

    std::size_t watched() const noexcept { return exchanges_.size(); }

private:
    using exchange_list = boost::intrusive::list<exchange, boost::intrusive::constant_time_size<false>>;

    void add(exchange& e);
    void tick();
    static bool has_hung_up(tcp::socket& client);

    net::steady_timer timer_;
    std::chrono::milliseconds period_;
    exchange_list exchanges_;
    std::uint64_t tick_ = 0;
    bool ticking_ = false;
    bool added_since_tick_ = false;
};

}  // namespace spillway::http
