// A throttled deployment rests until Azure says it may come back: retry-after-ms, else
// retry-after, else the default, capped. A new 429 can only extend the rest, never shorten it
// (a late answer carrying a small retry-after must not reopen a deployment still throttled).
#pragma once

#include "core/clock.hpp"

#include <chrono>
#include <optional>

namespace spillway::health {

using std::chrono::milliseconds;

struct cooldown_policy {
    milliseconds default_cooldown{10000};
    milliseconds max_cooldown{300000};
};

class cooldown {
public:
    cooldown(cooldown_policy policy, const core::clock& clock) : policy_(policy), clock_(clock) {}

    // `hint`: the wait the upstream asked for, if it said (already parsed from the headers).
    void on_throttle(std::optional<milliseconds> hint) {
        milliseconds wait = std::min(hint.value_or(policy_.default_cooldown), policy_.max_cooldown);
        until_ = std::max(until_, clock_.now() + wait);
    }
    bool active() const { return clock_.now() < until_; }
    core::time_point until() const { return until_; }
    core::clock_duration remaining() const {
        auto left = until_ - clock_.now();
        return left > core::clock_duration::zero() ? left : core::clock_duration::zero();
    }

private:
    cooldown_policy policy_;
    const core::clock& clock_;
    core::time_point until_{};
};

}  // namespace spillway::health
