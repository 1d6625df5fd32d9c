// The routing decision of SPEC §4. Candidates are the model's targets in the request's data
// zone that this request has not tried; a candidate is available when the state view says so
// (not cooling down, circuit not open, enough headroom for this request's estimate). The lowest
// priority value among available candidates is the tier (active-passive); inside it one is
// drawn with probability proportional to
//
//     weight × max(0.05, headroom fraction) × latency factor
//
// (active-active). The latency factor is 1 unless a candidate's latency EWMA is both 1.5× and
// 100 ms above the tier's best, then best/own (at least 0.1): real slowness shifts traffic,
// loopback jitter does not distort configured weights.
#pragma once

#include "core/clock.hpp"
#include "core/random.hpp"
#include "routing/router.hpp"

#include <optional>

namespace spillway::routing {

enum class availability { available, cooling, open, no_headroom };

struct target_status {
    availability state = availability::available;
    core::time_point available_at{};  // when not available: the earliest it may be again
    double headroom_fraction = 1.0;   // [0, 1]
    double latency_ms = 0.0;          // 0 = not measured yet
};

// What the router may know about targets' health and quota; implemented over shared state.
class state_view {
public:
    virtual ~state_view() = default;
    virtual target_status status(target_id id, std::uint64_t estimated_tokens) = 0;
};

// Why nothing could be picked, for the answer to the client.
struct exhausted {
    bool throttled = false;             // some candidate is only cooling down or out of headroom (429)
    std::optional<core::time_point> soonest;  // when the first candidate frees up
    bool no_candidates = false;         // none in the zone / all tried
};

class balanced_router final : public router {
public:
    balanced_router(state_view& view, core::random_source& random) : view_(view), random_(random) {}

    std::optional<target_id> pick(const catalog& cat, const model_entry& model, const request_facts& facts,
                                  std::span<const target_id> tried) override;
    // Why the last pick() returned nothing.
    const exhausted& last_exhausted() const { return exhausted_; }

private:
    state_view& view_;
    core::random_source& random_;
    exhausted exhausted_;
};

}  // namespace spillway::routing
