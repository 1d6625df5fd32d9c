// Unit tests for health/cooldown: a 429 rests a deployment for the upstream's hint, else the
// default, capped at the maximum; a later 429 can extend the rest but never shorten it.
#include "health/cooldown.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace spillway::health {
namespace {

using namespace std::chrono_literals;

class CooldownTest : public ::testing::Test {
protected:
    core::manual_clock clock_;
    const core::time_point t0_ = clock_.now();
    cooldown cooldown_{{.default_cooldown = 10s, .max_cooldown = 300s}, clock_};
};

TEST_F(CooldownTest, InactiveUntilThrottled) {
    EXPECT_FALSE(cooldown_.active());
    EXPECT_EQ(cooldown_.remaining(), core::clock_duration::zero());
}

TEST_F(CooldownTest, HintIsUsedAndExpiresAtExactlyUntil) {
    cooldown_.on_throttle(2500ms);
    EXPECT_EQ(cooldown_.until(), t0_ + 2500ms);
    EXPECT_TRUE(cooldown_.active());
    EXPECT_EQ(cooldown_.remaining(), 2500ms);
    clock_.advance(2500ms - 1ns);
    EXPECT_TRUE(cooldown_.active());
    EXPECT_EQ(cooldown_.remaining(), 1ns);
    clock_.advance(1ns);
    EXPECT_FALSE(cooldown_.active());
    EXPECT_EQ(cooldown_.remaining(), core::clock_duration::zero());
}

TEST_F(CooldownTest, DefaultWhenNoHint) {
    cooldown_.on_throttle(std::nullopt);
    EXPECT_EQ(cooldown_.until(), t0_ + 10s);
    clock_.advance(10s - 1ms);
    EXPECT_TRUE(cooldown_.active());
    clock_.advance(1ms);
    EXPECT_FALSE(cooldown_.active());
}

TEST_F(CooldownTest, HintIsCappedAtMax) {
    cooldown_.on_throttle(86'400'000ms);  // "retry after 86400 seconds"
    EXPECT_EQ(cooldown_.until(), t0_ + 300s);
}

TEST_F(CooldownTest, DefaultIsCappedAtMaxToo) {
    cooldown small{{.default_cooldown = 10s, .max_cooldown = 3s}, clock_};
    small.on_throttle(std::nullopt);
    EXPECT_EQ(small.until(), t0_ + 3s);
}

TEST_F(CooldownTest, ALaterShorterThrottleNeverShortens) {
    cooldown_.on_throttle(30s);
    clock_.advance(1s);
    cooldown_.on_throttle(1s);
    EXPECT_EQ(cooldown_.until(), t0_ + 30s);
    cooldown_.on_throttle(std::nullopt);  // default 10 s from now is still shorter
    EXPECT_EQ(cooldown_.until(), t0_ + 30s);
    clock_.advance(2s);
    EXPECT_TRUE(cooldown_.active());
}

TEST_F(CooldownTest, ALaterLongerThrottleExtends) {
    cooldown_.on_throttle(5s);
    clock_.advance(1s);
    cooldown_.on_throttle(10s);
    EXPECT_EQ(cooldown_.until(), t0_ + 11s);
    clock_.advance(5s);  // past the first rest
    EXPECT_TRUE(cooldown_.active());
    clock_.advance(5s);
    EXPECT_FALSE(cooldown_.active());
}

TEST_F(CooldownTest, AThrottleAfterExpiryStartsAFreshRest) {
    cooldown_.on_throttle(1s);
    clock_.advance(5s);
    EXPECT_FALSE(cooldown_.active());
    cooldown_.on_throttle(2s);
    EXPECT_EQ(cooldown_.until(), t0_ + 7s);
    EXPECT_TRUE(cooldown_.active());
}

TEST_F(CooldownTest, ZeroHintDoesNotRest) {
    cooldown_.on_throttle(0ms);
    EXPECT_FALSE(cooldown_.active());
}

}  // namespace
}  // namespace spillway::health
