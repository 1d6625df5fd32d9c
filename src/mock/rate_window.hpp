// Azure's standard (pay-as-you-go) admission for one deployment: a sliding 60 s window of admitted
// token estimates (TPM) and a sliding 10 s window of requests (RPM enforced as rpm/6 per 10 s).
// Pure: no I/O, time comes from the injected clock. Not thread-safe; the owner serialises calls.
#pragma once

#include "core/clock.hpp"

#include <cstdint>
#include <deque>

namespace spillway::mock {

struct rate_limits {
    std::uint64_t tokens_per_minute = 0;        // 0 = unlimited
    std::uint64_t requests_per_minute = 0;      // 0 = unlimited; enforced per 10 s as rpm/6
    // The per-10 s request allowance Azure reports as x-ratelimit-limit-requests (>= 1 when limited).
    std::uint64_t requests_per_window() const noexcept;
};

enum class limit_kind { none, tokens, requests };

struct admission {
    bool admitted = false;
    limit_kind exceeded = limit_kind::none;  // which limit refused it (tokens wins if both)
    core::clock_duration retry_after{0};     // exact time until this request would be admitted
    // What is left in the windows after this decision (UINT64_MAX when that limit is unlimited).
    std::uint64_t remaining_tokens = 0;
    std::uint64_t remaining_requests = 0;
};

class rate_window {
public:
    static constexpr core::clock_duration token_window = std::chrono::seconds{60};
    static constexpr core::clock_duration request_window = std::chrono::seconds{10};

    rate_window(rate_limits limits, const core::clock& clock) : limits_(limits), clock_(clock) {}

    // Admits (and records) the request if used + estimate <= tpm and the 10 s request count is
    // below its limit; otherwise records nothing and says how long until it would fit.
    admission try_admit(std::uint64_t estimate);

    std::uint64_t remaining_tokens();
    std::uint64_t remaining_requests();
    const rate_limits& limits() const noexcept { return limits_; }
    bool tokens_limited() const noexcept { return limits_.tokens_per_minute != 0; }
    bool requests_limited() const noexcept { return limits_.requests_per_minute != 0; }

    void reset();

private:
    struct token_entry {
        core::time_point at;
        std::uint64_t tokens;
    };

    void expire(core::time_point now);

    rate_limits limits_;
    const core::clock& clock_;
    std::deque<token_entry> tokens_;         // admitted estimates, oldest first
    std::uint64_t tokens_used_ = 0;          // sum of tokens_
    std::deque<core::time_point> requests_;  // admitted requests, oldest first
};

}  // namespace spillway::mock
