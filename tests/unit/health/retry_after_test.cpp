// Unit tests for health/retry_after: retry-after-ms is preferred, else retry-after in seconds;
// anything unparseable is "no hint" (nullopt) so the default cooldown applies.
#include "health/retry_after.hpp"

#include <gtest/gtest.h>

namespace spillway::health {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(ParseRetryAfter, MillisecondsArePreferred) {
    EXPECT_EQ(parse_retry_after("1500", "7"), milliseconds(1500));
    EXPECT_EQ(parse_retry_after("0", "7"), milliseconds(0));
}

TEST(ParseRetryAfter, SecondsWhenNoMilliseconds) {
    EXPECT_EQ(parse_retry_after("", "7"), milliseconds(7000));
    EXPECT_EQ(parse_retry_after("", "0"), milliseconds(0));
    EXPECT_EQ(parse_retry_after("", "86400"), milliseconds(86'400'000));
}

TEST(ParseRetryAfter, DecimalsRoundToTheNearestMillisecond) {
    EXPECT_EQ(parse_retry_after("", "1.5"), milliseconds(1500));
    EXPECT_EQ(parse_retry_after("", "0.0016"), milliseconds(2));
    EXPECT_EQ(parse_retry_after("250.4", ""), milliseconds(250));
    EXPECT_EQ(parse_retry_after("250.5", ""), milliseconds(251));
    EXPECT_EQ(parse_retry_after("0.2", ""), milliseconds(0));
}

TEST(ParseRetryAfter, SurroundingSpacesAreIgnored) {
    EXPECT_EQ(parse_retry_after(" 1500 ", ""), milliseconds(1500));
    EXPECT_EQ(parse_retry_after("", "  3 "), milliseconds(3000));
    EXPECT_EQ(parse_retry_after("   ", " 2"), milliseconds(2000));  // blank ms header: use seconds
}

TEST(ParseRetryAfter, NothingGivesNullopt) {
    EXPECT_EQ(parse_retry_after("", ""), std::nullopt);
}

TEST(ParseRetryAfter, NegativesAreRejected) {
    EXPECT_EQ(parse_retry_after("-5", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("", "-1"), std::nullopt);
    EXPECT_EQ(parse_retry_after("-5", "2"), milliseconds(2000));  // falls back to seconds
}

TEST(ParseRetryAfter, GarbageIsRejected) {
    EXPECT_EQ(parse_retry_after("abc", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("12abc", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("1 2", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("0x10", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("+5", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("nan", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("\t5", ""), std::nullopt);
    EXPECT_EQ(parse_retry_after("", "Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);  // HTTP date: ignored
    EXPECT_EQ(parse_retry_after("garbage", "4"), milliseconds(4000));
}

TEST(ParseRetryAfter, HugeMillisecondsAreClamped) {
    EXPECT_EQ(parse_retry_after("99999999999999", ""), milliseconds(1'000'000'000));
    EXPECT_EQ(parse_retry_after("1e300", ""), milliseconds(1'000'000'000));
    EXPECT_EQ(parse_retry_after("inf", ""), milliseconds(1'000'000'000));
}

TEST(ParseRetryAfter, HugeSecondsStayBeyondAnyCapAndConvertToNanosecondsSafely) {
    for (const char* s : {"99999999999999", "1e300", "inf"}) {
        auto ms = parse_retry_after("", s);
        ASSERT_TRUE(ms.has_value()) << s;
        EXPECT_GE(*ms, milliseconds(86'400'000)) << s;  // longer than any sensible max_cooldown
        // A time_point is in nanoseconds: the value must convert without overflow.
        EXPECT_LE(ms->count(), nanoseconds::max().count() / 1'000'000) << s;
        EXPECT_GT(std::chrono::duration_cast<nanoseconds>(*ms).count(), 0) << s;
    }
}

}  // namespace
}  // namespace spillway::health
