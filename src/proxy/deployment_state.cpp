#include "proxy/deployment_state.hpp"

namespace spillway::proxy {

using namespace std::chrono_literals;

namespace {

double to_ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

deployment_state::deployment_state(const config::root& cfg, const config::deployment& dep, const core::clock& clock)
    : clock_(clock),
      cooldown_({cfg.health.default_cooldown, cfg.health.max_cooldown}, clock),
      breaker_({cfg.health.failure_threshold, cfg.health.open}, clock),
      latency_(cfg.health.latency_ewma_alpha),
      ttfb_(cfg.health.latency_ewma_alpha),
      headroom_({dep.tpm, config::root::effective_rpm(dep)}) {}

routing::target_status deployment_state::status(std::uint64_t estimated_tokens) {
    std::lock_guard lock(mutex_);
    const auto now = clock_.now();
    routing::target_status s;
    s.latency_ms = latency_.has_value() ? latency_.value() : 0.0;
    const bool cooling = now < cooldown_.until();
    const bool breaker_allows = breaker_.would_allow();
    if (cooling || !breaker_allows) {
        s.state = cooling ? routing::availability::cooling : routing::availability::open;
        // Available again when both the rest and the open circuit are over. A half-open trial in
        // flight decides soon, but not now: look again shortly rather than spin.
        auto circuit = breaker_allows ? now : std::max(breaker_.open_until(), now + 100ms);
        s.available_at = std::max(cooling ? cooldown_.until() : now, circuit);
        return s;
    }
    auto left = headroom_.remaining(now);
    if (!headroom_.fits(left, estimated_tokens)) {
        s.state = routing::availability::no_headroom;
        s.available_at = headroom_.when_fits(now, estimated_tokens);
        // The header model can refuse where the windows would not: then expect the next refill tick.
        if (s.available_at <= now) s.available_at = now + 1s;
        return s;
    }
    s.headroom_fraction = headroom_.fraction(left);
    return s;
}

std::optional<quota::reservation> deployment_state::begin(std::uint64_t estimated_tokens) {
    std::lock_guard lock(mutex_);
    if (!breaker_.allow()) return std::nullopt;
    ++inflight_;
    ++requests_;
    const auto now = clock_.now();
    recent_.add(now, 1);
    return headroom_.reserve(now, estimated_tokens);
}

void deployment_state::on_headers(const upstream_signals& signals, std::chrono::nanoseconds ttfb) {
    std::lock_guard lock(mutex_);
    headroom_.observe(clock_.now(), signals.remaining_tokens, signals.remaining_requests);
    ttfb_.add(to_ms(ttfb));
}

void deployment_state::on_throttled(quota::reservation& r, std::optional<std::chrono::milliseconds> retry_after) {
    std::lock_guard lock(mutex_);
    cooldown_.on_throttle(retry_after);
    headroom_.release(clock_.now(), r);  // Azure did not admit it
    // A throttle says nothing about brokenness: a half-open trial that got one frees the slot.
    breaker_.on_abandoned();
    --inflight_;
    ++errors_;
}

void deployment_state::on_failed(quota::reservation& r, bool before_response) {
    std::lock_guard lock(mutex_);
    breaker_.on_failure();
    if (before_response) headroom_.release(clock_.now(), r);
    --inflight_;
    ++errors_;
}

void deployment_state::on_succeeded(std::chrono::nanoseconds total) {
    std::lock_guard lock(mutex_);
    breaker_.on_success();
    latency_.add(to_ms(total));
    --inflight_;
}

void deployment_state::on_abandoned() {
    std::lock_guard lock(mutex_);
    breaker_.on_abandoned();
    --inflight_;
}

quota::remaining_estimate deployment_state::pool_contribution() {
    std::lock_guard lock(mutex_);
    const auto now = clock_.now();
    if (now < cooldown_.until() || !breaker_.would_allow()) return {};
    return headroom_.remaining(now);
}

deployment_report deployment_state::report() {
    std::lock_guard lock(mutex_);
    auto now = clock_.now();
    deployment_report r;
    if (cooldown_.active()) {
        r.state = "cooling";
        r.cooldown_remaining_ms = std::chrono::duration_cast<std::chrono::milliseconds>(cooldown_.remaining()).count();
        r.available = false;
    } else {
        switch (breaker_.state()) {
            case health::circuit_state::closed: r.state = "available"; break;
            case health::circuit_state::open: r.state = "open"; r.available = false; break;
            case health::circuit_state::half_open: r.state = "half_open"; break;
        }
    }
    if (latency_.has_value()) r.latency_ewma_ms = latency_.value();
    if (ttfb_.has_value()) r.ttfb_ewma_ms = ttfb_.value();
    auto rem = headroom_.remaining(now);
    r.remaining_tokens = rem.tokens;
    r.remaining_requests = rem.requests;
    r.inflight = inflight_;
    r.requests = requests_;
    r.errors = errors_;
    r.requests_last_minute = recent_.total(now);
    return r;
}

std::vector<std::shared_ptr<deployment_state>> state_registry::bind(
    const config::root& cfg, const std::vector<std::pair<const config::region*, const config::deployment*>>& targets) {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<deployment_state>> states;
    for (const auto& [region, dep] : targets) {
        std::string identity = region->name + '\n' + region->endpoint_url + '\n' + dep->name + '\n' + dep->model + '\n' +
                               std::to_string(dep->tpm.value_or(0)) + '\n' +
                               std::to_string(config::root::effective_rpm(*dep).value_or(0));
        auto& slot = by_identity_[identity];
        auto state = slot.lock();
        if (!state) {
            state = std::make_shared<deployment_state>(cfg, *dep, clock_);
            slot = state;
        }
        states.push_back(std::move(state));
    }
    // Forget identities no snapshot uses any more.
    std::erase_if(by_identity_, [](const auto& kv) { return kv.second.expired(); });
    return states;
}

}  // namespace spillway::proxy
