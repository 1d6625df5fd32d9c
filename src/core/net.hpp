// Asio/Beast aliases and the completion token the data path uses: errors come back as values.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace spillway {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Every coroutine runs on an io_context, and its type says so: the awaitable machinery then
// carries the concrete executor (one pointer) rather than the type-erased any_io_executor,
// whose copies showed in the hot path's profile.
using coro_executor = net::io_context::executor_type;

template <class T>
using awaitable = net::awaitable<T, coro_executor>;

inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable_t<coro_executor>{});

}  // namespace spillway
