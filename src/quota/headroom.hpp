// How much of one deployment's quota is left, as spillway believes it: its own accounting of
// what it sent (sliding windows exactly like Azure's: tokens per 60 s, requests per 10 s at
// rpm/6), tightened by the upstream's x-ratelimit-remaining-* headers, which also see traffic
// from other clients of the same deployment. Not thread-safe: the owner locks.
#pragma once

#include "core/clock.hpp"
#include "quota/sliding_window.hpp"

#include <cstdint>
#include <optional>

namespace spillway::quota {

struct quota_limits {
    std::optional<std::uint64_t> tpm;
    std::optional<std::uint64_t> rpm;
};

struct reservation {
    std::uint64_t tokens = 0;
    std::int64_t token_slot = 0;
    std::int64_t request_slot = 0;
    std::uint64_t token_generation = 0;    // which header observation it was counted against
    std::uint64_t request_generation = 0;
    bool held = false;
};

struct remaining_estimate {
    std::optional<std::uint64_t> tokens;    // nullopt: unknown (no tpm and no header yet)
    std::optional<std::uint64_t> requests;  // in the current 10 s request window
};

class headroom {
public:
    explicit headroom(quota_limits limits);

    bool fits(core::time_point now, std::uint64_t tokens);
    bool fits(const remaining_estimate& r, std::uint64_t tokens) const;
    // Records a request as sent: it counts against the windows until they slide past it.
    reservation reserve(core::time_point now, std::uint64_t tokens);
    // The upstream did not admit it (429, refused connection): give it back.
    void release(core::time_point now, reservation& r);
    // x-ratelimit-remaining-tokens / -requests as just seen on an answer.
    void observe(core::time_point now, std::optional<std::uint64_t> remaining_tokens,
                 std::optional<std::uint64_t> remaining_requests);

    remaining_estimate remaining(core::time_point now);
    // Share of the capacity left, in [0, 1]; 1 when the capacity is unknown.
    double fraction(core::time_point now);
    double fraction(const remaining_estimate& r) const;
    // The earliest time a request of `tokens` fits by spillway's own accounting.
    core::time_point when_fits(core::time_point now, std::uint64_t tokens);

    std::uint64_t requests_per_window() const { return request_capacity_; }

private:
    struct observation {
        core::time_point at;
        std::uint64_t remaining = 0;
        std::uint64_t sent_since = 0;  // what spillway reserved after it
        std::uint64_t generation = 0;  // tells reservations made before it from those after
    };
    std::optional<std::uint64_t> header_tokens(core::time_point now) const;
    std::optional<std::uint64_t> header_requests(core::time_point now) const;

    quota_limits limits_;
    std::uint64_t request_capacity_ = 0;  // per 10 s window; 0 = unlimited
    sliding_window tokens_;
    sliding_window requests_;
    std::optional<observation> seen_tokens_;
    std::optional<observation> seen_requests_;
    std::uint64_t generations_ = 0;
};

}  // namespace spillway::quota
