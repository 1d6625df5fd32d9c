// Exponentially weighted moving average (latency, time to first byte). The first sample seeds it.
#pragma once

namespace spillway::health {

class ewma {
public:
    explicit ewma(double alpha) : alpha_(alpha) {}
    void add(double sample) {
        value_ = seeded_ ? alpha_ * sample + (1.0 - alpha_) * value_ : sample;
        seeded_ = true;
    }
    bool has_value() const { return seeded_; }
    double value() const { return value_; }

private:
    double alpha_;
    double value_ = 0.0;
    bool seeded_ = false;
};

}  // namespace spillway::health
