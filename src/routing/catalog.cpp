#include "routing/catalog.hpp"

#include <algorithm>

namespace spillway::routing {

catalog::catalog(const config::root& cfg) {
    for (std::size_t r = 0; r < cfg.regions.size(); ++r) {
        for (const auto& d : cfg.regions[r].deployments) {
            target t{targets_.size(), r, &cfg.regions[r], &d};
            auto [it, inserted] = by_name_.try_emplace(d.model, models_.size());
            if (inserted) models_.push_back(model_entry{d.model, {}});
            models_[it->second].targets.push_back(t.id);
            targets_.push_back(t);
        }
    }
    for (auto& m : models_) {
        std::stable_sort(m.targets.begin(), m.targets.end(), [&](target_id a, target_id b) {
            return targets_[a].deployment->priority < targets_[b].deployment->priority;
        });
    }
    // Deployment names are aliases; config validation guarantees they are unambiguous.
    for (const auto& t : targets_) by_name_.try_emplace(t.deployment->name, by_name_.at(t.deployment->model));
}

const model_entry* catalog::find(std::string_view model_or_alias) const {
    auto it = by_name_.find(model_or_alias);
    return it == by_name_.end() ? nullptr : &models_[it->second];
}

}  // namespace spillway::routing
