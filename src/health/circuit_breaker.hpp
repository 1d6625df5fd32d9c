// Consecutive failures (5xx, refused connections, timeouts) open the circuit for `open_for`;
// after that exactly one trial request is let through (half-open) and its outcome decides:
// success closes the circuit, failure opens it again.
#pragma once

#include "core/clock.hpp"

#include <chrono>

namespace spillway::health {

enum class circuit_state { closed, open, half_open };

struct breaker_policy {
    int failure_threshold = 3;
    std::chrono::milliseconds open_for{15000};
};

class circuit_breaker {
public:
    circuit_breaker(breaker_policy policy, const core::clock& clock) : policy_(policy), clock_(clock) {}

    // May a request go now? In half-open this grants the single trial, so call it only for a
    // request that will actually be sent.
    bool allow() {
        switch (state()) {
            case circuit_state::closed: return true;
            case circuit_state::open: return false;
            case circuit_state::half_open:
                if (trial_in_flight_) return false;
                trial_in_flight_ = true;
                return true;
        }
        return false;
    }
    // Would allow() say yes? (No side effect: for ranking candidates.)
    bool would_allow() const {
        auto s = state();
        return s == circuit_state::closed || (s == circuit_state::half_open && !trial_in_flight_);
    }
    void on_success() {
        failures_ = 0;
        opened_ = false;
        trial_in_flight_ = false;
    }
    void on_failure() {
        trial_in_flight_ = false;
        if (opened_) {  // the half-open trial failed (or a straggler did): open again
            open_until_ = clock_.now() + policy_.open_for;
            return;
        }
        if (++failures_ >= policy_.failure_threshold) {
            opened_ = true;
            open_until_ = clock_.now() + policy_.open_for;
        }
    }
    // A granted trial that ended without a verdict (e.g. the client went away): let another try.
    void on_abandoned() { trial_in_flight_ = false; }

    circuit_state state() const {
        if (!opened_) return circuit_state::closed;
        return clock_.now() < open_until_ ? circuit_state::open : circuit_state::half_open;
    }
    core::time_point open_until() const { return open_until_; }
    int consecutive_failures() const { return failures_; }

private:
    breaker_policy policy_;
    const core::clock& clock_;
    int failures_ = 0;
    bool opened_ = false;
    bool trial_in_flight_ = false;
    core::time_point open_until_{};
};

}  // namespace spillway::health
