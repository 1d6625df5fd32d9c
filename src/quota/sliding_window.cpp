#include "quota/sliding_window.hpp"

namespace spillway::quota {

sliding_window::sliding_window(duration span, duration slot)
    : span_(span), slot_(slot), ring_(static_cast<std::size_t>(span / slot) + 1, 0) {}

void sliding_window::expire(core::time_point now) {
    // A slot leaves the window once its whole interval is older than `span`: conservative by at
    // most one slot, never optimistic.
    std::int64_t first_live = slot_of(now) - static_cast<std::int64_t>(ring_.size()) + 1;
    if (first_live <= oldest_) return;
    if (first_live - oldest_ >= static_cast<std::int64_t>(ring_.size())) {
        std::fill(ring_.begin(), ring_.end(), 0);
        total_ = 0;
    } else {
        for (std::int64_t s = oldest_; s < first_live; ++s) {
            auto& v = ring_[static_cast<std::size_t>(s % static_cast<std::int64_t>(ring_.size()))];
            total_ -= v;
            v = 0;
        }
    }
    oldest_ = first_live;
}

std::int64_t sliding_window::add(core::time_point now, std::uint64_t amount) {
    expire(now);
    std::int64_t s = slot_of(now);
    ring_[static_cast<std::size_t>(s % static_cast<std::int64_t>(ring_.size()))] += amount;
    total_ += amount;
    return s;
}

void sliding_window::remove(core::time_point now, std::int64_t slot, std::uint64_t amount) {
    expire(now);
    if (slot < oldest_ || slot > slot_of(now)) return;
    auto& v = ring_[static_cast<std::size_t>(slot % static_cast<std::int64_t>(ring_.size()))];
    std::uint64_t taken = std::min(v, amount);
    v -= taken;
    total_ -= taken;
}

std::uint64_t sliding_window::total(core::time_point now) {
    expire(now);
    return total_;
}

core::time_point sliding_window::when_at_most(core::time_point now, std::uint64_t target) {
    expire(now);
    std::uint64_t t = total_;
    if (t <= target) return now;
    std::int64_t n = static_cast<std::int64_t>(ring_.size());
    for (std::int64_t s = oldest_; s <= slot_of(now); ++s) {
        t -= ring_[static_cast<std::size_t>(s % n)];
        // Slot s leaves the window when slot s + n begins.
        if (t <= target) return core::time_point{(s + n) * slot_};
    }
    return core::time_point{(slot_of(now) + n) * slot_};
}

}  // namespace spillway::quota
