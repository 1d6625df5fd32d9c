#include "routing/router.hpp"

namespace spillway::routing {

bool in_zone(const target& t, std::string_view data_zone) {
    return data_zone.empty() || t.region->data_zone == data_zone;
}

}  // namespace spillway::routing
