#include "core/clock.hpp"

namespace spillway::core {

time_point steady_clock::now() const noexcept {
    return std::chrono::time_point_cast<clock_duration>(std::chrono::steady_clock::now());
}

}  // namespace spillway::core
