// A socket read that tells Asio's reactor when it has emptied the socket, so that the next read
// waits for the kernel's readiness event instead of first trying a recv that finds nothing.
//
// Why: Asio's epoll reactor (Boost 1.81) registers sockets edge-triggered and tries every read at
// once ("speculatively") unless the previous read said the socket was exhausted, which its own
// read says only after a read of 0 bytes (the end of the stream). A proxy's reads are mostly
// answered by the other side only after it writes: the next request after an answer, the answer
// after a request. So nearly every read began with a recv that failed with EAGAIN, about one per
// proxied request, and a system call costs about 1 us on the virtual machines spillway is
// measured on (bench/RESULTS.md).
//
// When a read has taken everything there is, it reports `done_and_exhausted`: the reactor stops
// trying reads on that socket at once, and the next readiness event turns trying back on. The
// reactor decides under the descriptor's lock at the moment of the recv, so an event that comes
// after it is not lost. But an event that came *before* it and was already collected is never
// repeated (edge-triggered), so "everything there is" must include what that event announced:
// - the bytes still queued: the kernel says how many after each recv (TCP_INQ); 0 is required.
//   It also counts a received end of stream (FIN) as 1 byte left, so that read comes next;
// - a reset or error (EPOLLHUP, EPOLLERR), which TCP_INQ does not count: the reactor's last
//   collected events for the descriptor must show neither. A reset that comes after the
//   collection wakes the reactor again.
// A recv that returned less than its buffer is *not* enough: the FIN or RST that came with the
// data would be lost, and the connection would hang until a timeout.
//
// Waiting first (async_wait) instead is not safe for the same reason: an event that came while
// no operation was queued is kept only in the reactor's try-at-once flag.
//
// The operation is Asio's reactive_socket_recv_op with that one rule changed (and a single
// buffer). It uses Asio's detail interfaces, which change between Boost versions, so it is built
// only with the one it was written against (Debian 12's 1.81, epoll, not io_uring); with any
// other, SPILLWAY_HAS_EDGE_READ is 0 and deadline_socket reads with Asio's own read. It reads the
// reactor's collected events without a lock, so the socket's io_context must be run by one
// thread (every spillway io_context is). Without TCP_INQ on the socket (enable_edge_reads), a read
// is never taken for exhausted, which is Asio's own behaviour.
#pragma once

#include "core/net.hpp"

#include <boost/version.hpp>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define SPILLWAY_HAS_EDGE_READ 1

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace spillway::http {

namespace edge_read_detail {

namespace asio_detail = boost::asio::detail;
using reactor = asio_detail::reactor;
using reactor_op_status = asio_detail::reactor_op::status;

// The protected implementation of a tcp::socket: its descriptor, state and reactor registration.
struct socket_access : tcp::socket {
    static auto& implementation(tcp::socket& s) { return (s.*&socket_access::impl_).get_implementation(); }
};

// The readiness events the reactor last collected for a descriptor, which it keeps in the
// descriptor's operation base until it performs them (and afterwards, until the next collection).
struct operation_access : asio_detail::scheduler_operation {
    static unsigned collected_events(reactor::per_descriptor_data descriptor) {
        // descriptor_state derives privately from scheduler_operation; a C-style cast may convert
        // to a private base.
        const auto* op = (const asio_detail::scheduler_operation*)descriptor;  // NOLINT
        return op->*&operation_access::task_result_;
    }
};

// One recvmsg into `buffer`: not_done if nothing was there (wait for readiness); else done, or
// done_and_exhausted when nothing is left to report until the reactor's next event.
inline reactor_op_status receive(asio_detail::socket_type socket, reactor::per_descriptor_data descriptor,
                                 net::mutable_buffer buffer, error_code& ec, std::size_t& bytes) {
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(socket, &msg, 0);
        if (n > 0) {
            ec = {};
            bytes = static_cast<std::size_t>(n);
            int left = -1;  // unknown without TCP_INQ
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) std::memcpy(&left, CMSG_DATA(c), sizeof left);
            const bool hung_up = (operation_access::collected_events(descriptor) & (EPOLLHUP | EPOLLERR)) != 0;
            return left == 0 && !hung_up ? reactor_op_status::done_and_exhausted : reactor_op_status::done;
        }
        bytes = 0;
        if (n == 0) {
            ec = net::error::eof;
            return reactor_op_status::done_and_exhausted;  // as Asio's read: nothing follows the end
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return reactor_op_status::not_done;
        ec = error_code(errno, net::error::get_system_category());
        return reactor_op_status::done_and_exhausted;
    }
}

template <class Handler, class IoExecutor>
class read_op : public asio_detail::reactor_op {
public:
    BOOST_ASIO_DEFINE_HANDLER_PTR(read_op);

    read_op(asio_detail::socket_type socket, reactor::per_descriptor_data descriptor, net::mutable_buffer buffer,
            Handler& handler, const IoExecutor& io_ex)
        : reactor_op(error_code(), &read_op::do_perform, &read_op::do_complete),
          socket_(socket),
          descriptor_(descriptor),
          buffer_(buffer),
          handler_(std::move(handler)),
          work_(handler_, io_ex) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<read_op*>(base);
        return receive(o->socket_, o->descriptor_, o->buffer_, o->ec_, o->bytes_transferred_);
    }

    // As Asio's own operations complete (reactive_socket_recv_op::do_complete).
    static void do_complete(void* owner, asio_detail::operation* base, const error_code&, std::size_t) {
        auto* o = static_cast<read_op*>(base);
        ptr p = {std::addressof(o->handler_), o, o};
        asio_detail::handler_work<Handler, IoExecutor> work(std::move(o->work_));
        // The handler is moved out before the operation's memory is freed: it may own that memory.
        asio_detail::binder2<Handler, error_code, std::size_t> handler(o->handler_, o->ec_, o->bytes_transferred_);
        p.h = std::addressof(handler.handler_);
        p.reset();
        if (owner) {
            asio_detail::fenced_block b(asio_detail::fenced_block::half);
            work.complete(handler, handler.handler_);
        }
    }

private:
    asio_detail::socket_type socket_;
    reactor::per_descriptor_data descriptor_;
    net::mutable_buffer buffer_;
    Handler handler_;
    asio_detail::handler_work<Handler, IoExecutor> work_;
};

// Per-operation cancellation (a cancellation slot bound to the handler), as Asio's reads have it.
class cancel_read {
public:
    cancel_read(reactor& r, reactor::per_descriptor_data& data, asio_detail::socket_type socket)
        : reactor_(r), data_(data), socket_(socket) {}
    void operator()(net::cancellation_type_t type) {
        using net::cancellation_type;
        if (!!(type & (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total)))
            reactor_.cancel_ops_by_key(socket_, data_, reactor::read_op, this);
    }

private:
    reactor& reactor_;
    reactor::per_descriptor_data& data_;
    asio_detail::socket_type socket_;
};

// Mirrors reactive_socket_service_base::async_receive and start_op for one buffer, no flags.
template <class Handler>
void start(tcp::socket& socket, reactor& r, net::mutable_buffer buffer, Handler& handler) {
    using io_executor = tcp::socket::executor_type;
    using op = read_op<Handler, io_executor>;
    auto& impl = socket_access::implementation(socket);
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    auto slot = net::get_associated_cancellation_slot(handler);

    typename op::ptr p = {std::addressof(handler), op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) op(impl.socket_, impl.reactor_data_, buffer, handler, socket.get_executor());
    if (slot.is_connected())
        p.p->cancellation_key_ = &slot.template emplace<cancel_read>(r, impl.reactor_data_, impl.socket_);

    op* started = p.p;
    p.v = p.p = nullptr;  // the reactor owns it now
    if (buffer.size() == 0) {  // Asio completes an empty read at once, without a system call
        r.post_immediate_completion(started, is_continuation);
        return;
    }
    if ((impl.state_ & asio_detail::socket_ops::non_blocking) ||
        asio_detail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, started->ec_)) {
        r.start_op(reactor::read_op, impl.socket_, impl.reactor_data_, started, is_continuation, true);
        return;
    }
    r.post_immediate_completion(started, is_continuation);
}

}  // namespace edge_read_detail

// Asks the kernel to tell each read of `socket` how much is left (TCP_INQ), which lets
// async_read_some_edge take a read for exhausted; false if it cannot (not TCP, or not open).
inline bool enable_edge_reads(tcp::socket& socket) {
    const int on = 1;
    return ::setsockopt(socket.native_handle(), SOL_TCP, TCP_INQ, &on, sizeof on) == 0;
}

// The io_context's reactor, for async_read_some_edge (look it up once: use_service searches).
inline edge_read_detail::reactor& reactor_of(net::execution_context& context) {
    return net::use_service<edge_read_detail::reactor>(context);
}

// Like socket.async_read_some(buffer, token); `reactor` is reactor_of(the socket's io_context),
// which one thread runs. Call enable_edge_reads(socket) once the socket is open (before, reads
// work but never skip a recv).
template <class Token>
auto async_read_some_edge(tcp::socket& socket, edge_read_detail::reactor& reactor, net::mutable_buffer buffer,
                          Token&& token) {
    return net::async_initiate<Token, void(error_code, std::size_t)>(
        [](auto handler, tcp::socket* s, edge_read_detail::reactor* r, net::mutable_buffer b) {
            edge_read_detail::start(*s, *r, b, handler);
        },
        token, &socket, &reactor, buffer);
}

}  // namespace spillway::http

#else
#define SPILLWAY_HAS_EDGE_READ 0
#endif
