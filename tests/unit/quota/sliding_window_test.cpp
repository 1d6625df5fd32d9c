// Unit tests for quota/sliding_window: amounts leave at slot boundaries, never before a full span
// has passed and at most one slot after; remove() only reaches inside the window; when_at_most()
// names the exact instant total() drops.
#include "quota/sliding_window.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace spillway::quota {
namespace {

using namespace std::chrono_literals;

class SlidingWindowTest : public ::testing::Test {
protected:
    core::manual_clock clock_;  // starts on a 100 ms slot boundary
    const core::time_point t0_ = clock_.now();
};

TEST_F(SlidingWindowTest, EmptyWindowTotalsZeroAndIsAtMostAnythingNow) {
    sliding_window w{1s};
    EXPECT_EQ(w.total(t0_), 0u);
    EXPECT_EQ(w.when_at_most(t0_, 0), t0_);
}

TEST_F(SlidingWindowTest, AddsInOneSlotAccumulateAndShareTheSlotNumber) {
    sliding_window w{1s};
    auto a = w.add(t0_, 2);
    auto b = w.add(t0_ + 99ms, 3);
    auto c = w.add(t0_ + 100ms, 4);
    EXPECT_EQ(a, b);
    EXPECT_EQ(c, a + 1);
    EXPECT_EQ(w.total(t0_ + 100ms), 9u);
}

TEST_F(SlidingWindowTest, AmountAddedAtSlotStartLeavesExactlyOneSlotAfterTheSpan) {
    sliding_window w{1s};
    w.add(t0_, 5);
    EXPECT_EQ(w.total(t0_ + 999ms), 5u);
    EXPECT_EQ(w.total(t0_ + 1s), 5u);  // a full span old: still counted (never optimistic)
    EXPECT_EQ(w.total(t0_ + 1100ms - 1ns), 5u);
    EXPECT_EQ(w.total(t0_ + 1100ms), 0u);  // conservative by exactly one slot
}

TEST_F(SlidingWindowTest, AmountAddedAtSlotEndLeavesJustAfterTheSpan) {
    sliding_window w{1s};
    w.add(t0_ + 99ms, 5);
    EXPECT_EQ(w.total(t0_ + 99ms + 1s), 5u);  // exactly one span after it was added
    EXPECT_EQ(w.total(t0_ + 1100ms - 1ns), 5u);
    EXPECT_EQ(w.total(t0_ + 1100ms), 0u);  // 1001 ms after: less than one slot late
}

TEST_F(SlidingWindowTest, MinuteWindowLikeAzureTokenCounter) {
    sliding_window w{60s};
    w.add(t0_, 7);
    w.add(t0_ + 30s, 11);
    EXPECT_EQ(w.total(t0_ + 60s), 18u);
    EXPECT_EQ(w.total(t0_ + 60100ms - 1ns), 18u);
    EXPECT_EQ(w.total(t0_ + 60100ms), 11u);
    EXPECT_EQ(w.total(t0_ + 90100ms - 1ns), 11u);
    EXPECT_EQ(w.total(t0_ + 90100ms), 0u);
}

TEST_F(SlidingWindowTest, SlotsExpireOneByOne) {
    sliding_window w{1s};
    w.add(t0_, 1);
    w.add(t0_ + 100ms, 2);
    w.add(t0_ + 200ms, 4);
    EXPECT_EQ(w.total(t0_ + 1100ms), 6u);
    EXPECT_EQ(w.total(t0_ + 1200ms), 4u);
    EXPECT_EQ(w.total(t0_ + 1300ms), 0u);
}

TEST_F(SlidingWindowTest, LongIdleGapClearsEverythingAndTheWindowKeepsWorking) {
    sliding_window w{1s};
    w.add(t0_, 5);
    w.add(t0_ + 500ms, 6);
    EXPECT_EQ(w.total(t0_ + 1h), 0u);
    w.add(t0_ + 1h, 3);
    EXPECT_EQ(w.total(t0_ + 1h + 1s), 3u);
    EXPECT_EQ(w.total(t0_ + 1h + 1100ms), 0u);
}

TEST_F(SlidingWindowTest, RemoveTakesBackInsideTheWindow) {
    sliding_window w{1s};
    auto slot = w.add(t0_, 5);
    w.add(t0_ + 300ms, 4);
    w.remove(t0_ + 500ms, slot, 3);
    EXPECT_EQ(w.total(t0_ + 500ms), 6u);
    // The remainder of that slot still leaves on time.
    EXPECT_EQ(w.total(t0_ + 1100ms), 4u);
}

TEST_F(SlidingWindowTest, RemoveNeverTakesMoreThanTheSlotHolds) {
    sliding_window w{1s};
    auto slot = w.add(t0_, 5);
    w.add(t0_ + 100ms, 4);
    w.remove(t0_ + 200ms, slot, 50);
    EXPECT_EQ(w.total(t0_ + 200ms), 4u);
}

TEST_F(SlidingWindowTest, RemoveOfAnExpiredSlotDoesNotTouchTheSlotReusingItsRingEntry) {
    sliding_window w{1s};  // 11 slots in the ring: slot s and s + 11 share an entry
    auto old_slot = w.add(t0_, 5);
    auto new_slot = w.add(t0_ + 1100ms, 4);
    ASSERT_EQ(new_slot, old_slot + 11);
    w.remove(t0_ + 1100ms, old_slot, 5);  // it already left the window: nothing to give back
    EXPECT_EQ(w.total(t0_ + 1100ms), 4u);
}

TEST_F(SlidingWindowTest, RemoveOfAFutureSlotIsIgnored) {
    sliding_window w{1s};
    auto slot = w.add(t0_, 5);
    w.remove(t0_, slot + 1, 5);
    EXPECT_EQ(w.total(t0_), 5u);
}

TEST_F(SlidingWindowTest, WhenAtMostIsTheExactInstantTheTotalDrops) {
    sliding_window w{1s};
    w.add(t0_, 5);           // leaves at t0 + 1.1 s
    w.add(t0_ + 250ms, 3);   // slot t0 + 200 ms: leaves at t0 + 1.3 s
    w.add(t0_ + 520ms, 2);   // slot t0 + 500 ms: leaves at t0 + 1.6 s
    const auto now = t0_ + 600ms;
    EXPECT_EQ(w.when_at_most(now, 10), now);
    EXPECT_EQ(w.when_at_most(now, 9), t0_ + 1100ms);
    EXPECT_EQ(w.when_at_most(now, 5), t0_ + 1100ms);
    EXPECT_EQ(w.when_at_most(now, 4), t0_ + 1300ms);
    EXPECT_EQ(w.when_at_most(now, 2), t0_ + 1300ms);
    EXPECT_EQ(w.when_at_most(now, 1), t0_ + 1600ms);
    EXPECT_EQ(w.when_at_most(now, 0), t0_ + 1600ms);

    // And total() agrees with the promise, to the nanosecond.
    EXPECT_EQ(w.total(t0_ + 1300ms - 1ns), 5u);
    EXPECT_EQ(w.total(t0_ + 1300ms), 2u);
}

TEST_F(SlidingWindowTest, WhenAtMostCountsFromTheCurrentWindowAfterSomeSlotsLeft) {
    sliding_window w{1s};
    w.add(t0_, 5);
    w.add(t0_ + 700ms, 3);
    const auto now = t0_ + 1200ms;  // the first slot has left
    EXPECT_EQ(w.when_at_most(now, 3), now);
    EXPECT_EQ(w.when_at_most(now, 2), t0_ + 1800ms);
}

}  // namespace
}  // namespace spillway::quota
