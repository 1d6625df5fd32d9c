#include "proxy/header_scan.hpp"

#include "http/field_name.hpp"

namespace spillway::proxy {

namespace {

using http::name_is;

// A repeated field counts by its first occurrence, as Beast's lookups do. (A value that was
// found is never a null view, even when empty.)
void first(std::string_view& slot, std::string_view value) {
    if (slot.data() == nullptr) slot = value;
}

}  // namespace

request_headers scan_request_headers(std::span<const http::head_field> fields) {
    request_headers h;
    for (const auto& f : fields) {
        // By length first: it rules out nearly every field before a byte is compared.
        switch (f.name.size()) {
            case 7: if (name_is(f.name, "api-key")) first(h.api_key, f.value); break;
            case 13: if (name_is(f.name, "authorization")) first(h.authorization, f.value); break;
            case 20: if (name_is(f.name, "x-spillway-data-zone")) first(h.data_zone, f.value); break;
            default: break;
        }
    }
    return h;
}

answer_headers scan_answer_headers(std::span<const http::head_field> fields) {
    answer_headers h;
    for (const auto& f : fields) {
        // By length first: it rules out nearly every field before a byte is compared.
        switch (f.name.size()) {
            case 11: if (name_is(f.name, "retry-after")) first(h.retry_after, f.value); break;
            case 12: if (name_is(f.name, "content-type")) first(h.content_type, f.value); break;
            case 14: if (name_is(f.name, "retry-after-ms")) first(h.retry_after_ms, f.value); break;
            case 28: if (name_is(f.name, "x-ratelimit-remaining-tokens")) first(h.remaining_tokens, f.value); break;
            case 30: if (name_is(f.name, "x-ratelimit-remaining-requests")) first(h.remaining_requests, f.value); break;
            default: break;
        }
    }
    return h;
}

}  // namespace spillway::proxy
