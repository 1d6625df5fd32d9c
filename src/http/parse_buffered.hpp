// Feeds a Beast parser what is already buffered, without I/O, and reads more (read_until) only
// when that stops short of `enough`. Most messages arrive whole in one read, and an asynchronous
// read that completes at once from the buffer still costs a trip through the event loop (Beast
// posts such completions).
#pragma once

#include "core/net.hpp"

#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>

#include <tuple>

namespace spillway::http {

// Stops when enough(parser) holds, when the buffer runs dry, or at an error, which it returns
// (need_more is not an error here; need_buffer, the body buffer being full, is returned).
template <class Parser, class DynamicBuffer, class Enough>
error_code parse_buffered(Parser& parser, DynamicBuffer& buffer, Enough enough) {
    error_code ec;
    while (!enough(parser) && buffer.size() > 0) {
        const std::size_t used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == boost::beast::http::error::need_more) return {};
        if (ec) return ec;
        if (used == 0) break;
    }
    return {};
}

// Parses from `buffer` and reads from `stream` into it until enough(parser) holds; returns the
// error and the bytes read. The errors are Beast's: end_of_stream when the peer closed before
// a byte of the message, partial_message when it closed in the middle. Beast's async_read_header
// does the same through composed operations that track work on the socket's type-erased
// executor, which cost more than the read itself on the hot path.
template <class Stream, class Parser, class DynamicBuffer, class Enough>
awaitable<std::tuple<error_code, std::size_t>> read_until(Stream& stream, DynamicBuffer& buffer, Parser& parser,
                                                         Enough enough) {
    std::size_t total = 0;
    for (;;) {
        error_code ec = parse_buffered(parser, buffer, enough);
        if (ec || enough(parser)) co_return std::tuple{ec, total};
        auto [rec, n] = co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, 65536)), use_nothrow);
        buffer.commit(n);
        total += n;
        if (rec == net::error::eof) {
            if (!parser.got_some()) co_return std::tuple{error_code{boost::beast::http::error::end_of_stream}, total};
            parser.put_eof(ec);
            if (!ec && !enough(parser)) ec = boost::beast::http::error::partial_message;
            co_return std::tuple{ec, total};
        }
        if (rec) co_return std::tuple{rec, total};
    }
}

}  // namespace spillway::http
