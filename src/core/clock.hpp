// Time as a collaborator: production code asks a clock, tests advance a manual one.
#pragma once

#include <atomic>
#include <chrono>

namespace spillway::core {

using clock_duration = std::chrono::nanoseconds;
using time_point = std::chrono::time_point<std::chrono::steady_clock, clock_duration>;
using std::chrono::milliseconds;

class clock {
public:
    virtual ~clock() = default;
    virtual time_point now() const noexcept = 0;
};

// The only place where the process reads the monotonic clock.
class steady_clock final : public clock {
public:
    time_point now() const noexcept override;
};

// Starts at an arbitrary fixed point and moves only when told; safe to read from any thread.
class manual_clock final : public clock {
public:
    time_point now() const noexcept override { return time_point{clock_duration{ticks_.load()}}; }
    void advance(clock_duration d) noexcept { ticks_.fetch_add(d.count()); }

private:
    std::atomic<clock_duration::rep> ticks_{std::chrono::hours{1}.count() * 1'000'000'000LL};
};

inline double to_ms(clock_duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace spillway::core
