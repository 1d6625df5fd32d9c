// The routing decision behind one interface: given a model's targets and what this request has
// already tried, which target next (balanced_router implements it), and the data-zone rule every
// pick and the proxy's own checks share. Pure: no I/O, no clock reads beyond what it is handed.
#pragma once

#include "routing/catalog.hpp"

#include <optional>
#include <span>
#include <string_view>

namespace spillway::routing {

struct request_facts {
    std::string_view data_zone;         // x-spillway-data-zone; empty = any
    std::uint64_t estimated_tokens = 0;  // the request's estimated cost (quota/)
};

class router {
public:
    virtual ~router() = default;
    // The next target for this request, never one in `tried`; nullopt when none is eligible.
    virtual std::optional<target_id> pick(const catalog& cat, const model_entry& model,
                                          const request_facts& facts, std::span<const target_id> tried) = 0;
};

// Whether a target may serve a request restricted to `data_zone`: an empty zone restricts nothing;
// a region without a zone is in no named zone.
bool in_zone(const target& t, std::string_view data_zone);

}  // namespace spillway::routing
