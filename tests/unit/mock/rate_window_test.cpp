// Azure-style admission windows, driven to the millisecond by a manual clock.
#include "mock/rate_window.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace spillway::mock {
namespace {

using namespace std::chrono_literals;

TEST(rate_window, admits_until_the_token_budget_is_used_then_reports_exact_retry) {
    core::manual_clock clock;
    rate_window w{{.tokens_per_minute = 1000, .requests_per_minute = 6000}, clock};

    auto a = w.try_admit(400);
    EXPECT_TRUE(a.admitted);
    EXPECT_EQ(a.remaining_tokens, 600u);
    clock.advance(10s);
    a = w.try_admit(400);
    EXPECT_TRUE(a.admitted);
    EXPECT_EQ(a.remaining_tokens, 200u);

    clock.advance(5s);  // t = 15 s; entries at 0 s and 10 s
    a = w.try_admit(400);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.exceeded, limit_kind::tokens);
    // The entry at 0 s expires at 60 s: 45 s from now, after which 400 + 400 <= 1000.
    EXPECT_EQ(a.retry_after, 45s);
    EXPECT_EQ(a.remaining_tokens, 200u);  // a refusal records nothing

    clock.advance(45s - 1ms);
    EXPECT_FALSE(w.try_admit(400).admitted);
    clock.advance(1ms);
    a = w.try_admit(400);
    EXPECT_TRUE(a.admitted);
    EXPECT_EQ(a.remaining_tokens, 200u);  // 400 (t=10 s) + 400 (t=60 s)
}

TEST(rate_window, retry_waits_for_as_many_entries_as_the_estimate_needs) {
    core::manual_clock clock;
    rate_window w{{.tokens_per_minute = 1000}, clock};
    ASSERT_TRUE(w.try_admit(300).admitted);  // t = 0
    clock.advance(1s);
    ASSERT_TRUE(w.try_admit(300).admitted);  // t = 1 s
    clock.advance(1s);
    ASSERT_TRUE(w.try_admit(300).admitted);  // t = 2 s
    clock.advance(1s);
    // 900 used; 700 needs two entries gone (900 - 600 + 700 = 1000): the one at 1 s expires at 61 s.
    auto a = w.try_admit(700);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.retry_after, 58s);
    // 100 fits right away.
    EXPECT_TRUE(w.try_admit(100).admitted);
    EXPECT_EQ(w.remaining_tokens(), 0u);
}

TEST(rate_window, an_estimate_above_tpm_is_never_admitted) {
    core::manual_clock clock;
    rate_window w{{.tokens_per_minute = 1000}, clock};
    auto a = w.try_admit(1001);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.exceeded, limit_kind::tokens);
    EXPECT_EQ(a.retry_after, 60s);
    EXPECT_EQ(a.remaining_tokens, 1000u);
    EXPECT_TRUE(w.try_admit(1000).admitted);  // exactly the budget is fine
}

TEST(rate_window, requests_are_limited_to_rpm_over_6_per_10_seconds) {
    core::manual_clock clock;
    rate_window w{{.tokens_per_minute = 0, .requests_per_minute = 18}, clock};  // 3 per 10 s
    EXPECT_EQ(w.limits().requests_per_window(), 3u);
    EXPECT_EQ(w.remaining_requests(), 3u);
    EXPECT_EQ(w.remaining_tokens(), std::numeric_limits<std::uint64_t>::max());

    EXPECT_TRUE(w.try_admit(1'000'000).admitted);  // t = 0; tokens unlimited
    clock.advance(2s);
    EXPECT_TRUE(w.try_admit(1).admitted);  // t = 2 s
    clock.advance(2s);
    auto a = w.try_admit(1);  // t = 4 s
    EXPECT_TRUE(a.admitted);
    EXPECT_EQ(a.remaining_requests, 0u);

    clock.advance(1s);  // t = 5 s
    a = w.try_admit(1);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.exceeded, limit_kind::requests);
    EXPECT_EQ(a.retry_after, 5s);  // the request at 0 s leaves the window at 10 s

    clock.advance(5s);  // t = 10 s: one slot back
    EXPECT_EQ(w.remaining_requests(), 1u);
    EXPECT_TRUE(w.try_admit(1).admitted);
    a = w.try_admit(1);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.retry_after, 2s);  // next to leave: the one at 2 s, at 12 s
}

TEST(rate_window, small_rpm_still_allows_one_request_per_window) {
    core::manual_clock clock;
    rate_window w{{.requests_per_minute = 1}, clock};
    EXPECT_EQ(w.limits().requests_per_window(), 1u);
    EXPECT_TRUE(w.try_admit(1).admitted);
    EXPECT_FALSE(w.try_admit(1).admitted);
}

TEST(rate_window, when_both_limits_refuse_the_wait_covers_both) {
    core::manual_clock clock;
    rate_window w{{.tokens_per_minute = 100, .requests_per_minute = 6}, clock};  // 1 request per 10 s
    ASSERT_TRUE(w.try_admit(100).admitted);
    clock.advance(1s);
    auto a = w.try_admit(50);
    EXPECT_FALSE(a.admitted);
    EXPECT_EQ(a.exceeded, limit_kind::tokens);
    EXPECT_EQ(a.retry_after, 59s);  // tokens free at 60 s, later than the request slot at 10 s
}

TEST(rate_window, unlimited_admits_everything) {
    core::manual_clock clock;
    rate_window w{{}, clock};
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(w.try_admit(1'000'000).admitted);
    EXPECT_FALSE(w.tokens_limited());
    EXPECT_FALSE(w.requests_limited());
}

TEST(rate_window, reset_clears_both_windows) {
    core::manual_clock clock;
    rate_window w{{.tokens_per_minute = 100, .requests_per_minute = 6}, clock};
    ASSERT_TRUE(w.try_admit(100).admitted);
    ASSERT_FALSE(w.try_admit(1).admitted);
    w.reset();
    EXPECT_EQ(w.remaining_tokens(), 100u);
    EXPECT_EQ(w.remaining_requests(), 1u);
    EXPECT_TRUE(w.try_admit(100).admitted);
}

}  // namespace
}  // namespace spillway::mock
