// Feeds a Beast parser what is already buffered, without I/O. Most messages arrive whole in one
// read, and an asynchronous read that completes at once from the buffer still costs a trip
// through the event loop (Beast posts such completions); the asynchronous read is needed only
// when parsing here stops short of `enough`.
#pragma once

#include "core/net.hpp"

#include <boost/beast/http/error.hpp>

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

}  // namespace spillway::http
