// Case-insensitive comparison of a received header name (or a token from a header value) with
// a lowercase name spillway knows, eight bytes at a time.
//
// Why OR-ing 0x20 into every byte is the whole of the case folding: the parsers let no control
// character other than HTAB into a head, and the known names hold only a-z, 0-9 and '-'. For
// such a byte w, the bytes c with c | 0x20 == w are w itself, its uppercase letter, and one
// control character (w - 0x20 for a digit or '-'), which cannot occur. Beast's iequals folds
// both sides byte by byte, which showed in the proxy's profile (bench/RESULTS.md).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace spillway::http {

namespace detail {
inline bool folded_equal(const char* received, const char* lower, std::size_t n) noexcept {
    constexpr std::uint64_t fold = 0x2020202020202020ull;
    if (n >= 8) {
        std::uint64_t a, b;
        for (std::size_t i = 0; i + 8 <= n; i += 8) {
            std::memcpy(&a, received + i, 8);
            std::memcpy(&b, lower + i, 8);
            if ((a | fold) != b) return false;
        }
        std::memcpy(&a, received + n - 8, 8);  // the last eight bytes, overlapping the loop's
        std::memcpy(&b, lower + n - 8, 8);
        return (a | fold) == b;
    }
    for (std::size_t i = 0; i < n; ++i)
        if ((received[i] | 0x20) != lower[i]) return false;
    return true;
}
}  // namespace detail

// `lower`: only a-z, 0-9 and '-'.
inline bool name_is(std::string_view received, std::string_view lower) noexcept {
    return received.size() == lower.size() && detail::folded_equal(received.data(), lower.data(), lower.size());
}

inline bool name_starts_with(std::string_view received, std::string_view lower) noexcept {
    return received.size() >= lower.size() && detail::folded_equal(received.data(), lower.data(), lower.size());
}

}  // namespace spillway::http
