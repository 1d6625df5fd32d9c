// Unit tests for health/circuit_breaker: `failure_threshold` consecutive failures open the circuit
// for `open_for`; then exactly one half-open trial decides.
#include "health/circuit_breaker.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace spillway::health {
namespace {

using namespace std::chrono_literals;

class CircuitBreakerTest : public ::testing::Test {
protected:
    core::manual_clock clock_;
    const core::time_point t0_ = clock_.now();
    circuit_breaker cb_{{.failure_threshold = 3, .open_for = 10s}, clock_};

    void fail(int n) {
        for (int i = 0; i < n; ++i) cb_.on_failure();
    }
};

TEST_F(CircuitBreakerTest, StyleGuideExample) {
    for (int i = 0; i < 3; ++i) cb_.on_failure();
    EXPECT_FALSE(cb_.allow());
    clock_.advance(10s);
    EXPECT_TRUE(cb_.allow());  // half-open trial
    EXPECT_FALSE(cb_.allow());  // and only one
}

TEST_F(CircuitBreakerTest, ClosedAllowsEverything) {
    EXPECT_EQ(cb_.state(), circuit_state::closed);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(cb_.allow());
    EXPECT_TRUE(cb_.would_allow());
}

TEST_F(CircuitBreakerTest, BelowThresholdStaysClosed) {
    fail(2);
    EXPECT_EQ(cb_.state(), circuit_state::closed);
    EXPECT_EQ(cb_.consecutive_failures(), 2);
    EXPECT_TRUE(cb_.allow());
}

TEST_F(CircuitBreakerTest, OpensAtThresholdForExactlyOpenFor) {
    clock_.advance(2s);
    fail(3);
    EXPECT_EQ(cb_.state(), circuit_state::open);
    EXPECT_EQ(cb_.open_until(), t0_ + 12s);
    EXPECT_FALSE(cb_.would_allow());
    clock_.advance(10s - 1ns);
    EXPECT_EQ(cb_.state(), circuit_state::open);
    EXPECT_FALSE(cb_.allow());
    clock_.advance(1ns);
    EXPECT_EQ(cb_.state(), circuit_state::half_open);
}

TEST_F(CircuitBreakerTest, SuccessResetsTheConsecutiveCount) {
    fail(2);
    cb_.on_success();
    EXPECT_EQ(cb_.consecutive_failures(), 0);
    fail(2);
    EXPECT_EQ(cb_.state(), circuit_state::closed);
    EXPECT_TRUE(cb_.allow());
    fail(1);
    EXPECT_EQ(cb_.state(), circuit_state::open);
}

TEST_F(CircuitBreakerTest, WouldAllowHasNoSideEffectInHalfOpen) {
    fail(3);
    clock_.advance(10s);
    EXPECT_TRUE(cb_.would_allow());
    EXPECT_TRUE(cb_.would_allow());  // asking twice does not claim the trial
    EXPECT_TRUE(cb_.allow());
    EXPECT_FALSE(cb_.would_allow());
    EXPECT_FALSE(cb_.allow());
    EXPECT_EQ(cb_.state(), circuit_state::half_open);
}

TEST_F(CircuitBreakerTest, TrialSuccessCloses) {
    fail(3);
    clock_.advance(10s);
    ASSERT_TRUE(cb_.allow());
    cb_.on_success();
    EXPECT_EQ(cb_.state(), circuit_state::closed);
    EXPECT_EQ(cb_.consecutive_failures(), 0);
    EXPECT_TRUE(cb_.allow());
    EXPECT_TRUE(cb_.allow());
    // A fresh count is needed to open it again.
    fail(2);
    EXPECT_EQ(cb_.state(), circuit_state::closed);
}

TEST_F(CircuitBreakerTest, TrialFailureReopensForAFullOpenFor) {
    fail(3);
    clock_.advance(10s);
    ASSERT_TRUE(cb_.allow());
    clock_.advance(3s);  // the trial took a while
    cb_.on_failure();     // a single failure suffices in half-open
    EXPECT_EQ(cb_.state(), circuit_state::open);
    EXPECT_EQ(cb_.open_until(), t0_ + 23s);
    clock_.advance(10s - 1ms);
    EXPECT_FALSE(cb_.allow());
    clock_.advance(1ms);
    EXPECT_TRUE(cb_.allow());  // the next trial
    EXPECT_FALSE(cb_.allow());
}

TEST_F(CircuitBreakerTest, AbandonedTrialLetsAnotherTry) {
    fail(3);
    clock_.advance(10s);
    ASSERT_TRUE(cb_.allow());
    EXPECT_FALSE(cb_.allow());
    cb_.on_abandoned();
    EXPECT_EQ(cb_.state(), circuit_state::half_open);
    EXPECT_TRUE(cb_.would_allow());
    EXPECT_TRUE(cb_.allow());
    EXPECT_FALSE(cb_.allow());
}

TEST_F(CircuitBreakerTest, ThresholdOfOneOpensOnFirstFailure) {
    circuit_breaker one{{.failure_threshold = 1, .open_for = 5s}, clock_};
    one.on_failure();
    EXPECT_FALSE(one.allow());
    EXPECT_EQ(one.open_until(), t0_ + 5s);
}

}  // namespace
}  // namespace spillway::health
