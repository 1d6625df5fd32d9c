#include "proxy/header_scan.hpp"

#include <boost/beast/core/string.hpp>

namespace spillway::proxy {

namespace bhttp = boost::beast::http;

namespace {

// Names Beast has no enum for are compared by length first, which rules out almost every field.
bool named(std::string_view name, std::string_view wanted) {
    return name.size() == wanted.size() && boost::beast::iequals(name, wanted);
}

// A repeated field counts by its first occurrence, as Beast's lookups do. (A value that was
// found is never a null view, even when empty.)
void first(std::string_view& slot, std::string_view value) {
    if (slot.data() == nullptr) slot = value;
}

}  // namespace

request_headers scan_request_headers(const http::fields& fields) {
    request_headers h;
    for (const auto& f : fields) {
        switch (f.name()) {
            case bhttp::field::authorization: first(h.authorization, f.value()); break;
            case bhttp::field::unknown:
                if (named(f.name_string(), "api-key")) first(h.api_key, f.value());
                else if (named(f.name_string(), "x-spillway-data-zone")) first(h.data_zone, f.value());
                break;
            default: break;
        }
    }
    return h;
}

answer_headers scan_answer_headers(const http::fields& fields) {
    answer_headers h;
    for (const auto& f : fields) {
        switch (f.name()) {
            case bhttp::field::content_type: first(h.content_type, f.value()); break;
            case bhttp::field::retry_after: first(h.retry_after, f.value()); break;
            case bhttp::field::unknown: {
                const std::string_view name = f.name_string();
                if (named(name, "retry-after-ms")) first(h.retry_after_ms, f.value());
                else if (named(name, "x-ratelimit-remaining-tokens")) first(h.remaining_tokens, f.value());
                else if (named(name, "x-ratelimit-remaining-requests")) first(h.remaining_requests, f.value());
                break;
            }
            default: break;
        }
    }
    return h;
}

}  // namespace spillway::proxy
