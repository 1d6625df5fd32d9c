// Names of the config enums, spelled exactly as they are written in the JSON file (SPEC §2),
// so messages, /status and --check-config output match what the user typed.
#include "config/config.hpp"

namespace spillway::config {

std::string_view to_string(region_kind k) {
    switch (k) {
        case region_kind::azure: return "azure";
        case region_kind::openai: return "openai";
    }
    return "unknown";
}

std::string_view to_string(sku s) {
    switch (s) {
        case sku::standard: return "standard";
        case sku::provisioned: return "provisioned";
        case sku::global_standard: return "global-standard";
        case sku::data_zone_standard: return "data-zone-standard";
    }
    return "unknown";
}

}  // namespace spillway::config
