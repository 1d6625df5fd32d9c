// Unit tests for quota/client_limits: each client key has its own per-minute request and token
// windows; a refusal says exactly how long until the request would be admitted.
#include "quota/client_limits.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace spillway::quota {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t rpm_key = 0;       // 2 requests per minute
constexpr std::size_t tpm_key = 1;       // 1000 tokens per minute
constexpr std::size_t unlimited_key = 2;
constexpr std::size_t both_key = 3;      // 3 requests and 100 tokens per minute

class ClientLimitsTest : public ::testing::Test {
protected:
    core::manual_clock clock_;  // starts on a 100 ms slot boundary
    const core::time_point t0_ = clock_.now();
    client_limits limits_{{{.rpm = 2}, {.tpm = 1000}, {}, {.rpm = 3, .tpm = 100}}};
};

TEST_F(ClientLimitsTest, RpmRefusalSaysWhenTheOldestRequestLeavesTheMinute) {
    EXPECT_TRUE(limits_.admit(rpm_key, t0_, 10).admitted);
    EXPECT_TRUE(limits_.admit(rpm_key, t0_ + 10s, 10).admitted);
    auto v = limits_.admit(rpm_key, t0_ + 20s, 10);
    EXPECT_FALSE(v.admitted);
    EXPECT_STREQ(v.which, "requests");
    EXPECT_EQ(v.retry_after, 40100ms);  // the t0 slot leaves the 60 s window at t0 + 60.1 s

    auto just_before = limits_.admit(rpm_key, t0_ + 60100ms - 1ns, 10);
    EXPECT_FALSE(just_before.admitted);
    EXPECT_EQ(just_before.retry_after, 1ns);
    EXPECT_TRUE(limits_.admit(rpm_key, t0_ + 60100ms, 10).admitted);
    // Now the t0 + 10 s request is the oldest of two again.
    auto again = limits_.admit(rpm_key, t0_ + 61s, 10);
    EXPECT_FALSE(again.admitted);
    EXPECT_EQ(again.retry_after, t0_ + 70100ms - (t0_ + 61s));
}

TEST_F(ClientLimitsTest, TpmRefusalSaysWhenEnoughTokensLeaveTheMinute) {
    EXPECT_TRUE(limits_.admit(tpm_key, t0_, 600).admitted);
    auto v = limits_.admit(tpm_key, t0_ + 1s, 500);
    EXPECT_FALSE(v.admitted);
    EXPECT_STREQ(v.which, "tokens");
    EXPECT_EQ(v.retry_after, 59100ms);
    // A smaller one that fits is admitted: the refusal consumed nothing.
    EXPECT_TRUE(limits_.admit(tpm_key, t0_ + 1s, 400).admitted);
    auto full = limits_.admit(tpm_key, t0_ + 2s, 1);
    EXPECT_FALSE(full.admitted);
    EXPECT_EQ(full.retry_after, 58100ms);
    EXPECT_TRUE(limits_.admit(tpm_key, t0_ + 60100ms, 600).admitted);
}

TEST_F(ClientLimitsTest, TpmRetryAfterCanNeedSeveralSlotsToLeave) {
    EXPECT_TRUE(limits_.admit(tpm_key, t0_, 300).admitted);
    EXPECT_TRUE(limits_.admit(tpm_key, t0_ + 5s, 300).admitted);
    EXPECT_TRUE(limits_.admit(tpm_key, t0_ + 7s, 300).admitted);
    auto v = limits_.admit(tpm_key, t0_ + 8s, 500);  // 900 + 500: two slots must leave
    EXPECT_FALSE(v.admitted);
    EXPECT_EQ(v.retry_after, t0_ + 65100ms - (t0_ + 8s));
}

TEST_F(ClientLimitsTest, KeysAreIndependent) {
    ASSERT_TRUE(limits_.admit(rpm_key, t0_, 1).admitted);
    ASSERT_TRUE(limits_.admit(rpm_key, t0_, 1).admitted);
    ASSERT_FALSE(limits_.admit(rpm_key, t0_, 1).admitted);
    // The exhausted rpm key does not touch the others.
    EXPECT_TRUE(limits_.admit(tpm_key, t0_, 1000).admitted);
    EXPECT_TRUE(limits_.admit(both_key, t0_, 10).admitted);
    // And the exhausted tpm key does not touch the rpm key's recovery.
    ASSERT_FALSE(limits_.admit(tpm_key, t0_, 1).admitted);
    EXPECT_TRUE(limits_.admit(rpm_key, t0_ + 60100ms, 1).admitted);
}

TEST_F(ClientLimitsTest, KeysWithoutLimitsAreAlwaysAdmitted) {
    for (int i = 0; i < 10000; ++i) {
        auto v = limits_.admit(unlimited_key, t0_, 1'000'000'000);
        ASSERT_TRUE(v.admitted) << i;
        ASSERT_EQ(v.retry_after, core::clock_duration::zero());
    }
    // An index beyond the configured keys (e.g. auth mode none) is not limited either.
    EXPECT_TRUE(limits_.admit(99, t0_, 1'000'000'000).admitted);
}

TEST_F(ClientLimitsTest, RefusedRequestsCountAgainstNeitherWindow) {
    EXPECT_TRUE(limits_.admit(both_key, t0_, 90).admitted);
    EXPECT_FALSE(limits_.admit(both_key, t0_, 20).admitted);  // tokens: not counted as a request
    EXPECT_TRUE(limits_.admit(both_key, t0_, 10).admitted);   // 2nd request, 100 tokens
    auto third = limits_.admit(both_key, t0_, 0);
    EXPECT_TRUE(third.admitted);  // 3rd request: the refused one did not use a request
    auto fourth = limits_.admit(both_key, t0_ + 1s, 0);
    EXPECT_FALSE(fourth.admitted);
    EXPECT_STREQ(fourth.which, "requests");
    EXPECT_EQ(fourth.retry_after, 59100ms);
}

TEST_F(ClientLimitsTest, RequestLimitIsCheckedBeforeTokens) {
    client_limits l{{{.rpm = 1, .tpm = 100}}};
    ASSERT_TRUE(l.admit(0, t0_, 100).admitted);
    auto v = l.admit(0, t0_ + 1s, 100);
    EXPECT_FALSE(v.admitted);
    EXPECT_STREQ(v.which, "requests");
}

}  // namespace
}  // namespace spillway::quota
