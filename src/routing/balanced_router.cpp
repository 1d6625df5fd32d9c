#include "routing/balanced_router.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>

namespace spillway::routing {

namespace {

constexpr double min_headroom_factor = 0.05;
constexpr double slow_ratio = 1.5;
constexpr double slow_margin_ms = 100.0;
constexpr double min_latency_factor = 0.1;

struct tier_member {
    target_id id;
    double weight;
    double latency_ms;
};

}  // namespace

std::optional<target_id> balanced_router::pick(const catalog& cat, const model_entry& model,
                                               const request_facts& facts, std::span<const target_id> tried) {
    exhausted_ = {};
    boost::container::small_vector<tier_member, 16> tier;
    std::optional<int> tier_priority;
    bool any_candidate = false;

    // model.targets is sorted by priority: the first available one fixes the tier, and the scan
    // stops at the first target of a worse priority once the tier has members.
    for (target_id id : model.targets) {
        const target& t = cat.at(id);
        if (tier_priority && t.deployment->priority != *tier_priority) break;
        if (std::find(tried.begin(), tried.end(), id) != tried.end()) continue;
        if (!in_zone(t, facts.data_zone)) continue;
        any_candidate = true;
        target_status s = view_.status(id, facts.estimated_tokens);
        if (s.state != availability::available) {
            if (s.state != availability::open) exhausted_.throttled = true;
            if (!exhausted_.soonest || s.available_at < *exhausted_.soonest) exhausted_.soonest = s.available_at;
            continue;
        }
        tier_priority = t.deployment->priority;
        tier.push_back({id, t.deployment->weight * std::max(min_headroom_factor, s.headroom_fraction), s.latency_ms});
    }
    if (tier.empty()) {
        exhausted_.no_candidates = !any_candidate;
        return std::nullopt;
    }
    if (tier.size() == 1) return tier.front().id;

    double best = 0;
    for (const auto& m : tier)
        if (m.latency_ms > 0 && (best == 0 || m.latency_ms < best)) best = m.latency_ms;
    double sum = 0;
    for (auto& m : tier) {
        if (best > 0 && m.latency_ms > best * slow_ratio && m.latency_ms - best > slow_margin_ms)
            m.weight *= std::max(min_latency_factor, best / m.latency_ms);
        sum += m.weight;
    }
    double r = random_.next_unit() * sum;
    for (const auto& m : tier) {
        if (r < m.weight) return m.id;
        r -= m.weight;
    }
    return tier.back().id;  // rounding at the top end
}

}  // namespace spillway::routing
