// The live state of one regional deployment, shared by every worker: cooldown, circuit
// breaker, latency EWMAs, quota headroom and counters. Each call takes a short lock and never
// holds it across a co_await; the pure pieces (health/, quota/) do the reasoning.
#pragma once

#include "config/config.hpp"
#include "core/clock.hpp"
#include "health/circuit_breaker.hpp"
#include "health/cooldown.hpp"
#include "health/ewma.hpp"
#include "quota/headroom.hpp"
#include "routing/balanced_router.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace spillway::proxy {

// What an upstream answer told us, as far as health and quota care.
struct upstream_signals {
    std::optional<std::chrono::milliseconds> retry_after;
    std::optional<std::uint64_t> remaining_tokens;
    std::optional<std::uint64_t> remaining_requests;
};

// One row of /status.
struct deployment_report {
    std::string state;  // available | cooling | open | half_open
    std::int64_t cooldown_remaining_ms = 0;
    std::optional<double> latency_ewma_ms;
    std::optional<double> ttfb_ewma_ms;
    std::optional<std::uint64_t> remaining_tokens;
    std::optional<std::uint64_t> remaining_requests;
    std::uint64_t inflight = 0;
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    std::uint64_t requests_last_minute = 0;
    bool available = true;
};

class deployment_state {
public:
    deployment_state(const config::root& cfg, const config::deployment& dep, const core::clock& clock);

    routing::target_status status(std::uint64_t estimated_tokens);

    // About to send: claims the half-open trial if that is the state, and reserves quota.
    // nullopt when it may not go after all (another request holds the trial).
    std::optional<quota::reservation> begin(std::uint64_t estimated_tokens);
    // An answer's headers arrived (any status).
    void on_headers(const upstream_signals& signals, std::chrono::nanoseconds ttfb);
    // The attempt ended. `throttled`: a 429; `failed`: 5xx/408, connect error, timeout or reset.
    void on_throttled(quota::reservation& r, std::optional<std::chrono::milliseconds> retry_after);
    void on_failed(quota::reservation& r, bool before_response);
    void on_succeeded(std::chrono::nanoseconds total);
    void on_abandoned();  // the client went away: no verdict on the upstream

    // What this deployment adds to the model's pooled x-ratelimit-remaining-* headers: its
    // remaining tokens/requests, or nothing while it is cooling down or its circuit is open.
    quota::remaining_estimate pool_contribution();
    deployment_report report();

private:
    std::mutex mutex_;
    const core::clock& clock_;
    health::cooldown cooldown_;
    health::circuit_breaker breaker_;
    health::ewma latency_;
    health::ewma ttfb_;
    quota::headroom headroom_;
    quota::sliding_window recent_{std::chrono::seconds(60)};  // requests sent, for traffic shares
    std::uint64_t inflight_ = 0;
    std::uint64_t requests_ = 0;
    std::uint64_t errors_ = 0;
};

// Hands out deployment states by identity (region, endpoint, deployment, quota), so that a
// reload keeps the health of deployments it did not change and starts changed ones afresh.
class state_registry {
public:
    explicit state_registry(const core::clock& clock) : clock_(clock) {}
    // One state per target of `cat`, in target order.
    std::vector<std::shared_ptr<deployment_state>> bind(const config::root& cfg,
                                                        const std::vector<std::pair<const config::region*, const config::deployment*>>& targets);
    const core::clock& clock() const { return clock_; }

private:
    const core::clock& clock_;
    std::mutex mutex_;
    std::map<std::string, std::weak_ptr<deployment_state>> by_identity_;
};

}  // namespace spillway::proxy
