#include "proxy/usage_scan.hpp"

#include <charconv>
#include <cstring>

namespace spillway::proxy {

namespace {

// The unsigned integer following `"key":` within `scope`, if present.
std::optional<std::uint64_t> number_after(std::string_view scope, std::string_view key) {
    for (std::size_t at = scope.find(key); at != std::string_view::npos; at = scope.find(key, at + 1)) {
        // The key must be a whole member name: a quote right before it and after it.
        if (at == 0 || scope[at - 1] != '"' || at + key.size() >= scope.size() || scope[at + key.size()] != '"') continue;
        std::size_t i = at + key.size() + 1;
        while (i < scope.size() && (scope[i] == ' ' || scope[i] == ':' || scope[i] == '\n' || scope[i] == '\t')) ++i;
        std::uint64_t v = 0;
        auto [p, ec] = std::from_chars(scope.data() + i, scope.data() + scope.size(), v);
        if (ec == std::errc{}) return v;
    }
    return std::nullopt;
}

// Where the last `"usage"` starts. A backward scan that tests one byte per position, where
// rfind compares the whole key at each; usage comes near the end, so few positions are seen.
std::size_t last_usage_key(std::string_view text) {
    constexpr std::string_view key = "\"usage\"";
    if (text.size() < key.size()) return std::string_view::npos;
    for (std::size_t i = text.size() - key.size() + 1; i-- > 0;)
        if (text[i] == '"' && text.substr(i, key.size()) == key) return i;
    return std::string_view::npos;
}

}  // namespace

token_usage find_usage(std::string_view text) {
    token_usage u;
    auto at = last_usage_key(text);
    if (at == std::string_view::npos) return u;
    std::string_view scope = text.substr(at + 7);
    auto brace = scope.find('{');
    if (brace == std::string_view::npos || scope.substr(0, brace).find_first_not_of(" \t\n\r:") != std::string_view::npos)
        return u;  // "usage": null, or not an object
    scope.remove_prefix(brace);
    // Only up to the object's end: nested *_details objects are one level deep.
    int depth = 0;
    for (std::size_t i = 0; i < scope.size(); ++i) {
        if (scope[i] == '{') ++depth;
        if (scope[i] == '}' && --depth == 0) {
            scope = scope.substr(0, i + 1);
            break;
        }
    }
    u.prompt = number_after(scope, "prompt_tokens");
    if (!u.prompt) u.prompt = number_after(scope, "input_tokens");
    u.completion = number_after(scope, "completion_tokens");
    if (!u.completion) u.completion = number_after(scope, "output_tokens");
    return u;
}

void tail_buffer::append(std::string_view piece) {
    if (piece.size() >= capacity) {
        std::memcpy(data_.data(), piece.data() + piece.size() - capacity, capacity);
        size_ = capacity;
        return;
    }
    if (size_ + piece.size() > capacity) {
        std::size_t drop = size_ + piece.size() - capacity;
        std::memmove(data_.data(), data_.data() + drop, size_ - drop);
        size_ -= drop;
    }
    std::memcpy(data_.data() + size_, piece.data(), piece.size());
    size_ += piece.size();
}

}  // namespace spillway::proxy
