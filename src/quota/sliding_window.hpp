// A sliding-window counter over fixed slots (default 100 ms): what was admitted within the last
// `span`, updated in O(1) amortised time. It models Azure's per-minute token window and per-10 s
// request window, and spillway's per-client limits. Not thread-safe: the owner locks.
#pragma once

#include "core/clock.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace spillway::quota {

class sliding_window {
public:
    using duration = std::chrono::nanoseconds;
    explicit sliding_window(duration span, duration slot = std::chrono::milliseconds(100));

    // Adds `amount` at `now`; returns the slot it was recorded in (to take it back later).
    std::int64_t add(core::time_point now, std::uint64_t amount);
    // Takes back an amount recorded in `slot` if it is still inside the window (e.g. a 429'd
    // request that Azure did not count).
    void remove(core::time_point now, std::int64_t slot, std::uint64_t amount);
    std::uint64_t total(core::time_point now);
    // When the window's total will have dropped to at most `target` (now if already so).
    core::time_point when_at_most(core::time_point now, std::uint64_t target);
    duration span() const { return span_; }

private:
    std::int64_t slot_of(core::time_point t) const { return t.time_since_epoch() / slot_; }
    void expire(core::time_point now);

    duration span_;
    duration slot_;
    std::vector<std::uint64_t> ring_;
    std::int64_t oldest_ = 0;  // the oldest slot that may still hold an amount
    std::uint64_t total_ = 0;
};

}  // namespace spillway::quota
