// Every error spillway itself answers is in OpenAI's envelope, so SDKs raise their usual
// exception types: {"error": {"message": "...", "type": "...", "code": "..."}}.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace spillway::proxy {

using error_response = boost::beast::http::response<boost::beast::http::string_body>;

error_response make_error(unsigned status, std::string_view type, std::string_view code,
                          std::string_view message, unsigned version = 11);

// A 429/503 that tells SDKs when to come back: retry-after (s, rounded up) and retry-after-ms.
void set_retry_after(error_response& res, std::chrono::milliseconds wait);

// The JSON body alone, e.g. for a `data: {...}` SSE event that ends a broken stream.
std::string error_json(std::string_view type, std::string_view code, std::string_view message);

}  // namespace spillway::proxy
