// The routing table built from one config snapshot: every deployment as a numbered target,
// and each model (with its deployment-name aliases) mapped to its targets. Immutable.
#pragma once

#include "config/config.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace spillway::routing {

using target_id = std::size_t;

struct target {
    target_id id = 0;
    std::size_t region_index = 0;
    const config::region* region = nullptr;
    const config::deployment* deployment = nullptr;
};

struct model_entry {
    std::string name;
    std::vector<target_id> targets;  // ordered by priority, then config order
};

class catalog {
public:
    explicit catalog(const config::root& cfg);  // cfg must outlive the catalog

    // A configured model name, or a deployment name that is an alias of one.
    const model_entry* find(std::string_view model_or_alias) const;
    const target& at(target_id id) const { return targets_[id]; }
    std::size_t size() const noexcept { return targets_.size(); }
    const std::vector<model_entry>& models() const noexcept { return models_; }

private:
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::vector<target> targets_;
    std::vector<model_entry> models_;
    std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> by_name_;
};

}  // namespace spillway::routing
