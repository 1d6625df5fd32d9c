// The routing decision behind one interface: given a model's targets and what this request has
// already tried, which target next. Pure: no I/O, no clock reads beyond what it is handed.
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

bool in_zone(const target& t, std::string_view data_zone);

// Lowest priority first, config order among equals; every target is considered available.
class priority_router final : public router {
public:
    std::optional<target_id> pick(const catalog& cat, const model_entry& model, const request_facts& facts,
                                  std::span<const target_id> tried) override;
};

}  // namespace spillway::routing
