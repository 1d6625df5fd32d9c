// Unit tests for health/ewma: the first sample seeds the average, later ones move it by alpha.
#include "health/ewma.hpp"

#include <gtest/gtest.h>

namespace spillway::health {
namespace {

TEST(Ewma, EmptyUntilTheFirstSample) {
    ewma e{0.2};
    EXPECT_FALSE(e.has_value());
    e.add(100.0);
    EXPECT_TRUE(e.has_value());
    EXPECT_DOUBLE_EQ(e.value(), 100.0);  // seeded, not 0.2 × 100
}

TEST(Ewma, LaterSamplesMoveByAlpha) {
    ewma e{0.2};
    e.add(100.0);
    e.add(200.0);
    EXPECT_DOUBLE_EQ(e.value(), 120.0);
    e.add(120.0);
    EXPECT_DOUBLE_EQ(e.value(), 120.0);
    e.add(20.0);
    EXPECT_DOUBLE_EQ(e.value(), 100.0);
}

TEST(Ewma, AlphaOneFollowsTheLastSample) {
    ewma e{1.0};
    e.add(5.0);
    e.add(70.0);
    EXPECT_DOUBLE_EQ(e.value(), 70.0);
}

}  // namespace
}  // namespace spillway::health
