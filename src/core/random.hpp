// Randomness as a collaborator: weighted picks take a source, tests script its values.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace spillway::core {

class random_source {
public:
    virtual ~random_source() = default;
    // A uniformly distributed value in [0, 1).
    virtual double next_unit() noexcept = 0;
};

// A fast generator, one per worker thread (not thread-safe by design).
class prng final : public random_source {
public:
    explicit prng(std::uint64_t seed = std::random_device{}()) : engine_(seed) {}
    double next_unit() noexcept override {
        return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
    }

private:
    std::mt19937_64 engine_;
};

// Replays the given values in a loop: for tests that need to steer a weighted pick.
class scripted_random final : public random_source {
public:
    explicit scripted_random(std::vector<double> values) : values_(std::move(values)) {}
    double next_unit() noexcept override {
        double v = values_[next_ % values_.size()];
        ++next_;
        return v;
    }

private:
    std::vector<double> values_;
    std::size_t next_ = 0;
};

}  // namespace spillway::core
