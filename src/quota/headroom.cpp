#include "quota/headroom.hpp"

#include <algorithm>

namespace spillway::quota {

using namespace std::chrono_literals;

namespace {

constexpr auto token_window = 60s;
constexpr auto request_window = 10s;

// Linear refill since an observation: the window slides at capacity per window length.
std::uint64_t refilled(std::uint64_t remaining, std::uint64_t sent_since, std::uint64_t capacity,
                       core::clock_duration elapsed, core::clock_duration window) {
    double refill = static_cast<double>(capacity) * (static_cast<double>(elapsed.count()) / window.count());
    double left = static_cast<double>(remaining) + refill - static_cast<double>(sent_since);
    return static_cast<std::uint64_t>(std::clamp(left, 0.0, static_cast<double>(capacity)));
}

}  // namespace

headroom::headroom(quota_limits limits) : limits_(limits), tokens_(token_window), requests_(request_window) {
    // Azure enforces RPM over short windows: rpm/6 per 10 s (AZURE.md §3).
    if (limits_.rpm) request_capacity_ = std::max<std::uint64_t>(1, *limits_.rpm / 6);
}

std::optional<std::uint64_t> headroom::header_tokens(core::time_point now) const {
    if (!seen_tokens_) return std::nullopt;
    // Without a configured tpm the refill rate is unknown: trust the header until it is a window old.
    std::uint64_t capacity = limits_.tpm.value_or(0);
    if (capacity == 0) {
        if (now - seen_tokens_->at >= token_window) return std::nullopt;
        return seen_tokens_->remaining > seen_tokens_->sent_since ? seen_tokens_->remaining - seen_tokens_->sent_since : 0;
    }
    return refilled(seen_tokens_->remaining, seen_tokens_->sent_since, capacity, now - seen_tokens_->at, token_window);
}

std::optional<std::uint64_t> headroom::header_requests(core::time_point now) const {
    if (!seen_requests_) return std::nullopt;
    if (request_capacity_ == 0) {
        if (now - seen_requests_->at >= request_window) return std::nullopt;
        return seen_requests_->remaining > seen_requests_->sent_since ? seen_requests_->remaining - seen_requests_->sent_since : 0;
    }
    return refilled(seen_requests_->remaining, seen_requests_->sent_since, request_capacity_,
                    now - seen_requests_->at, request_window);
}

remaining_estimate headroom::remaining(core::time_point now) {
    remaining_estimate r;
    if (limits_.tpm) {
        std::uint64_t used = tokens_.total(now);
        r.tokens = used >= *limits_.tpm ? 0 : *limits_.tpm - used;
    }
    if (auto h = header_tokens(now)) r.tokens = r.tokens ? std::min(*r.tokens, *h) : *h;
    if (request_capacity_) {
        std::uint64_t used = requests_.total(now);
        r.requests = used >= request_capacity_ ? 0 : request_capacity_ - used;
    }
    if (auto h = header_requests(now)) r.requests = r.requests ? std::min(*r.requests, *h) : *h;
    return r;
}

bool headroom::fits(core::time_point now, std::uint64_t tokens) { return fits(remaining(now), tokens); }

bool headroom::fits(const remaining_estimate& r, std::uint64_t tokens) const {
    // A request larger than the whole quota would never fit: let it go when the window is
    // empty and leave the verdict to the upstream, rather than refusing it forever.
    if (limits_.tpm) tokens = std::min(tokens, *limits_.tpm);
    if (r.requests && *r.requests < 1) return false;
    if (r.tokens && *r.tokens < tokens) return false;
    return true;
}

double headroom::fraction(core::time_point now) { return fraction(remaining(now)); }

double headroom::fraction(const remaining_estimate& r) const {
    double f = 1.0;
    if (r.tokens && limits_.tpm && *limits_.tpm) f = std::min(f, static_cast<double>(*r.tokens) / *limits_.tpm);
    if (r.requests && request_capacity_) f = std::min(f, static_cast<double>(*r.requests) / request_capacity_);
    return std::clamp(f, 0.0, 1.0);
}

reservation headroom::reserve(core::time_point now, std::uint64_t tokens) {
    reservation r;
    r.tokens = tokens;
    r.token_slot = tokens_.add(now, tokens);
    r.request_slot = requests_.add(now, 1);
    r.held = true;
    if (seen_tokens_) {
        seen_tokens_->sent_since += tokens;
        r.token_generation = seen_tokens_->generation;
    }
    if (seen_requests_) {
        seen_requests_->sent_since += 1;
        r.request_generation = seen_requests_->generation;
    }
    return r;
}

void headroom::release(core::time_point now, reservation& r) {
    if (!r.held) return;
    tokens_.remove(now, r.token_slot, r.tokens);
    requests_.remove(now, r.request_slot, 1);
    // Only an observation older than the reservation counted it in sent_since; a newer one
    // already saw it (or not) in its remaining-* value.
    if (seen_tokens_ && seen_tokens_->generation == r.token_generation)
        seen_tokens_->sent_since -= std::min(seen_tokens_->sent_since, r.tokens);
    if (seen_requests_ && seen_requests_->generation == r.request_generation)
        seen_requests_->sent_since -= std::min<std::uint64_t>(seen_requests_->sent_since, 1);
    r.held = false;
}

void headroom::observe(core::time_point now, std::optional<std::uint64_t> remaining_tokens,
                       std::optional<std::uint64_t> remaining_requests) {
    if (remaining_tokens) seen_tokens_ = observation{now, *remaining_tokens, 0, ++generations_};
    if (remaining_requests) seen_requests_ = observation{now, *remaining_requests, 0, ++generations_};
}

core::time_point headroom::when_fits(core::time_point now, std::uint64_t tokens) {
    core::time_point at = now;
    if (limits_.tpm) tokens = std::min(tokens, *limits_.tpm);
    if (limits_.tpm) {
        std::uint64_t target = *limits_.tpm >= tokens ? *limits_.tpm - tokens : 0;
        at = std::max(at, tokens_.when_at_most(now, target));
    }
    if (request_capacity_) at = std::max(at, requests_.when_at_most(now, request_capacity_ - 1));
    return at;
}

}  // namespace spillway::quota
