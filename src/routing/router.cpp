#include "routing/router.hpp"

#include <algorithm>

namespace spillway::routing {

bool in_zone(const target& t, std::string_view data_zone) {
    return data_zone.empty() || t.region->data_zone == data_zone;
}

std::optional<target_id> priority_router::pick(const catalog& cat, const model_entry& model,
                                               const request_facts& facts, std::span<const target_id> tried) {
    for (target_id id : model.targets) {
        if (std::find(tried.begin(), tried.end(), id) != tried.end()) continue;
        if (!in_zone(cat.at(id), facts.data_zone)) continue;
        return id;
    }
    return std::nullopt;
}

}  // namespace spillway::routing
