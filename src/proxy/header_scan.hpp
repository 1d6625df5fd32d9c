// The few header values spillway acts on, found in one pass over a message's fields. Each
// by-name lookup is a case-insensitive search; a request needs three on the way in and an
// answer five on the way out, so they are gathered while walking the list once.
// The views point into the fields and live as long as the message.
#pragma once

#include "http/message_parser.hpp"

#include <span>
#include <string_view>

namespace spillway::proxy {

// A client request's: its key (either form) and its data-zone choice.
struct request_headers {
    std::string_view api_key;        // api-key
    std::string_view authorization;  // Authorization
    std::string_view data_zone;      // x-spillway-data-zone
};
request_headers scan_request_headers(std::span<const http::head_field> fields);

// An upstream answer's: its quota and throttling signals and what the relay needs.
struct answer_headers {
    std::string_view retry_after_ms;      // retry-after-ms (Azure's, in milliseconds)
    std::string_view retry_after;         // Retry-After (seconds)
    std::string_view remaining_tokens;    // x-ratelimit-remaining-tokens
    std::string_view remaining_requests;  // x-ratelimit-remaining-requests
    std::string_view content_type;        // Content-Type
};
answer_headers scan_answer_headers(std::span<const http::head_field> fields);

}  // namespace spillway::proxy
