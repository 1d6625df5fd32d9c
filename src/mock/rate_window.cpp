// Sliding-window admission. An entry admitted at t counts while now < t + window, so a caller that
// waits exactly retry_after is admitted (tests rely on this to the millisecond).
#include "mock/rate_window.hpp"

#include <algorithm>
#include <limits>

namespace spillway::mock {

namespace {
constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();
}

std::uint64_t rate_limits::requests_per_window() const noexcept {
    if (requests_per_minute == 0) return 0;
    return std::max<std::uint64_t>(1, requests_per_minute / 6);
}

void rate_window::expire(core::time_point now) {
    while (!tokens_.empty() && tokens_.front().at + token_window <= now) {
        tokens_used_ -= tokens_.front().tokens;
        tokens_.pop_front();
    }
    while (!requests_.empty() && requests_.front() + request_window <= now) requests_.pop_front();
}

std::uint64_t rate_window::remaining_tokens() {
    if (!tokens_limited()) return unlimited;
    expire(clock_.now());
    return limits_.tokens_per_minute - std::min(tokens_used_, limits_.tokens_per_minute);
}

std::uint64_t rate_window::remaining_requests() {
    if (!requests_limited()) return unlimited;
    expire(clock_.now());
    std::uint64_t limit = limits_.requests_per_window();
    return limit - std::min<std::uint64_t>(requests_.size(), limit);
}

admission rate_window::try_admit(std::uint64_t estimate) {
    const core::time_point now = clock_.now();
    expire(now);
    admission a;

    core::clock_duration token_wait{0};
    bool tokens_over = false;
    if (tokens_limited()) {
        const std::uint64_t tpm = limits_.tokens_per_minute;
        if (tokens_used_ + estimate > tpm) {
            tokens_over = true;
            if (estimate > tpm) {
                // Never fits (Azure keeps refusing such a request too); advise a full window.
                token_wait = token_window;
            } else {
                // Walk the oldest entries until enough has expired for this estimate to fit.
                std::uint64_t used = tokens_used_;
                for (const auto& e : tokens_) {
                    used -= e.tokens;
                    if (used + estimate <= tpm) {
                        token_wait = e.at + token_window - now;
                        break;
                    }
                }
            }
        }
    }

    core::clock_duration request_wait{0};
    bool requests_over = false;
    if (requests_limited()) {
        const std::uint64_t limit = limits_.requests_per_window();
        if (requests_.size() >= limit) {
            requests_over = true;
            // The (size - limit + 1)th oldest must expire to leave room for one more.
            request_wait = requests_[requests_.size() - limit] + request_window - now;
        }
    }

    if (tokens_over || requests_over) {
        a.admitted = false;
        a.exceeded = tokens_over ? limit_kind::tokens : limit_kind::requests;
        a.retry_after = std::max(token_wait, request_wait);
    } else {
        a.admitted = true;
        if (tokens_limited()) {
            tokens_.push_back({now, estimate});
            tokens_used_ += estimate;
        }
        if (requests_limited()) requests_.push_back(now);
    }
    a.remaining_tokens = remaining_tokens();
    a.remaining_requests = remaining_requests();
    return a;
}

void rate_window::reset() {
    tokens_.clear();
    tokens_used_ = 0;
    requests_.clear();
}

}  // namespace spillway::mock
