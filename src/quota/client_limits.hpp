// Per-client limits (auth.keys[].rpm / .tpm): each client key gets its own per-minute windows,
// so one noisy application is told 429 without touching the others. Thread-safe.
#pragma once

#include "core/clock.hpp"
#include "quota/sliding_window.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace spillway::quota {

struct client_limit {
    std::optional<std::uint32_t> rpm;
    std::optional<std::uint32_t> tpm;
};

class client_limits {
public:
    explicit client_limits(const std::vector<client_limit>& per_key);

    // Admits a request of `tokens` for client `key_index`, or says how long to wait.
    struct verdict {
        bool admitted = true;
        core::clock_duration retry_after{0};
        const char* which = "";  // "requests" or "tokens" when refused
    };
    verdict admit(std::size_t key_index, core::time_point now, std::uint64_t tokens);

private:
    struct state {
        client_limit limit;
        std::mutex mutex;
        sliding_window requests{std::chrono::seconds(60)};
        sliding_window tokens{std::chrono::seconds(60)};
    };
    std::vector<std::unique_ptr<state>> clients_;
};

}  // namespace spillway::quota
