#include "proxy/usage_scan.hpp"

#include <charconv>
#include <cstring>

namespace spillway::proxy {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

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

// One forward pass over the usage object's members (nested *_details objects are skipped by
// depth), reading the numbers of the four names that matter.
token_usage find_usage(std::string_view text) {
    token_usage u;
    const std::size_t at = last_usage_key(text);
    if (at == std::string_view::npos) return u;
    std::size_t i = at + 7;
    while (i < text.size() && (is_space(text[i]) || text[i] == ':')) ++i;
    if (i == text.size() || text[i] != '{') return u;  // "usage": null, or not an object
    std::optional<std::uint64_t> prompt, completion, input, output;
    int depth = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == '{' || c == '}') {
            depth += c == '{' ? 1 : -1;
            ++i;
            if (depth == 0) break;  // the end of the usage object
            continue;
        }
        if (c != '"') {
            ++i;
            continue;
        }
        const std::size_t close = text.find('"', i + 1);
        if (close == std::string_view::npos) break;
        const std::string_view name = text.substr(i + 1, close - i - 1);
        i = close + 1;
        if (depth != 1) continue;
        std::size_t v = i;
        while (v < text.size() && is_space(text[v])) ++v;
        if (v == text.size() || text[v] != ':') continue;  // a string value, not a member name
        ++v;
        while (v < text.size() && is_space(text[v])) ++v;
        std::optional<std::uint64_t>* slot = name == "prompt_tokens"       ? &prompt
                                             : name == "completion_tokens" ? &completion
                                             : name == "input_tokens"      ? &input
                                             : name == "output_tokens"     ? &output
                                                                           : nullptr;
        if (!slot) continue;
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(text.data() + v, text.data() + text.size(), n);
        if (ec == std::errc{}) *slot = n;
        i = static_cast<std::size_t>(end - text.data());
    }
    u.prompt = prompt ? prompt : input;
    u.completion = completion ? completion : output;
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
