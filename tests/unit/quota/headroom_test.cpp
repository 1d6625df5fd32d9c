// Unit tests for quota/headroom: spillway's own accounting (tokens per 60 s against tpm, requests
// per 10 s against max(1, rpm/6)), tightened by x-ratelimit-remaining-* observations that refill
// linearly at capacity per window.
#include "quota/headroom.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace spillway::quota {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t huge_rpm = 6'000'000;  // keeps the request window out of token tests

class HeadroomTest : public ::testing::Test {
protected:
    core::manual_clock clock_;  // starts on a 100 ms slot boundary
    const core::time_point t0_ = clock_.now();
};

TEST_F(HeadroomTest, FitsUntilReservationsExhaustTpm) {
    headroom h{{.tpm = 1000, .rpm = huge_rpm}};
    EXPECT_TRUE(h.fits(t0_, 1000));
    h.reserve(t0_, 400);
    h.reserve(t0_ + 1s, 400);
    EXPECT_TRUE(h.fits(t0_ + 1s, 200));
    EXPECT_FALSE(h.fits(t0_ + 1s, 201));
    EXPECT_EQ(h.remaining(t0_ + 1s).tokens, 200u);
    h.reserve(t0_ + 2s, 200);
    EXPECT_FALSE(h.fits(t0_ + 2s, 1));
    EXPECT_TRUE(h.fits(t0_ + 2s, 0));
}

// A request bigger than the whole quota would otherwise never fit and be refused forever: it
// goes when the window is empty, and the upstream has the last word.
TEST_F(HeadroomTest, ARequestLargerThanTheQuotaFitsOnlyAnEmptyWindow) {
    headroom h{{.tpm = 1000, .rpm = huge_rpm}};
    EXPECT_TRUE(h.fits(t0_, 5000));
    EXPECT_EQ(h.when_fits(t0_, 5000), t0_);
    h.reserve(t0_, 1);
    EXPECT_FALSE(h.fits(t0_, 5000));
    EXPECT_GT(h.when_fits(t0_, 5000), t0_ + 59s);
}

TEST_F(HeadroomTest, TokensComeBackAsTheMinuteWindowSlides) {
    headroom h{{.tpm = 1000, .rpm = huge_rpm}};
    h.reserve(t0_, 600);
    h.reserve(t0_ + 30s, 400);
    EXPECT_FALSE(h.fits(t0_ + 60s, 1));
    EXPECT_FALSE(h.fits(t0_ + 60100ms - 1ns, 1));
    EXPECT_TRUE(h.fits(t0_ + 60100ms, 600));
    EXPECT_FALSE(h.fits(t0_ + 60100ms, 601));
    EXPECT_EQ(h.remaining(t0_ + 90100ms).tokens, 1000u);
}

TEST_F(HeadroomTest, RequestWindowIsRpmOverSixPerTenSeconds) {
    headroom h{{.rpm = 60}};
    EXPECT_EQ(h.requests_per_window(), 10u);
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(h.fits(t0_ + i * 100ms, 0)) << i;
        h.reserve(t0_ + i * 100ms, 0);
    }
    EXPECT_FALSE(h.fits(t0_ + 900ms, 0));
    EXPECT_EQ(h.remaining(t0_ + 900ms).requests, 0u);
    EXPECT_FALSE(h.fits(t0_ + 10100ms - 1ns, 0));
    EXPECT_TRUE(h.fits(t0_ + 10100ms, 0));  // the first request's slot left the 10 s window
    EXPECT_EQ(h.remaining(t0_ + 10100ms).requests, 1u);
    EXPECT_EQ(h.remaining(t0_ + 11s).requests, 10u);
}

TEST_F(HeadroomTest, RequestWindowIsAtLeastOne) {
    EXPECT_EQ(headroom({.rpm = 5}).requests_per_window(), 1u);
    EXPECT_EQ(headroom({.rpm = 6}).requests_per_window(), 1u);
    EXPECT_EQ(headroom({.rpm = 600}).requests_per_window(), 100u);
    EXPECT_EQ(headroom({.tpm = 1000}).requests_per_window(), 0u);  // no rpm: unlimited
}

TEST_F(HeadroomTest, ReleaseGivesTheReservationBackOnce) {
    headroom h{{.tpm = 1000, .rpm = 60}};
    auto r = h.reserve(t0_, 1000);
    EXPECT_TRUE(r.held);
    EXPECT_FALSE(h.fits(t0_, 1));
    h.release(t0_ + 1s, r);
    EXPECT_FALSE(r.held);
    EXPECT_TRUE(h.fits(t0_ + 1s, 1000));
    EXPECT_EQ(h.remaining(t0_ + 1s).requests, 10u);

    // A second release of the same reservation must not give back someone else's tokens.
    h.reserve(t0_ + 1s, 1000);
    h.release(t0_ + 1s, r);
    EXPECT_FALSE(h.fits(t0_ + 1s, 1));
}

TEST_F(HeadroomTest, ReleaseAfterTheWindowSlidPastItChangesNothing) {
    headroom h{{.tpm = 1000, .rpm = huge_rpm}};
    auto old = h.reserve(t0_, 500);
    h.reserve(t0_ + 60100ms, 1000);  // the first one has left the window
    h.release(t0_ + 61s, old);
    EXPECT_FALSE(h.fits(t0_ + 61s, 1));
}

TEST_F(HeadroomTest, LowerObservedRemainingTightensThenRefillsLinearlyTowardTpm) {
    headroom h{{.tpm = 60000, .rpm = huge_rpm}};  // refills 1000 tokens per second
    h.observe(t0_, 6000, std::nullopt);
    EXPECT_EQ(h.remaining(t0_).tokens, 6000u);
    EXPECT_TRUE(h.fits(t0_, 6000));
    EXPECT_FALSE(h.fits(t0_, 6001));
    EXPECT_EQ(h.remaining(t0_ + 15s).tokens, 6000u + 15000u);
    EXPECT_EQ(h.remaining(t0_ + 30s).tokens, 6000u + 30000u);
    EXPECT_EQ(h.remaining(t0_ + 45s).tokens, 6000u + 45000u);
    EXPECT_EQ(h.remaining(t0_ + 60s).tokens, 60000u);  // capped at tpm
    EXPECT_EQ(h.remaining(t0_ + 10min).tokens, 60000u);
}

TEST_F(HeadroomTest, ReservationsAfterAnObservationCountAgainstIt) {
    headroom h{{.tpm = 60000, .rpm = huge_rpm}};
    h.observe(t0_, 6000, std::nullopt);
    h.reserve(t0_, 1000);
    EXPECT_EQ(h.remaining(t0_).tokens, 5000u);
    h.reserve(t0_ + 15s, 2000);
    EXPECT_EQ(h.remaining(t0_ + 15s).tokens, 6000u + 15000u - 3000u);
}

TEST_F(HeadroomTest, HigherObservedRemainingDoesNotLoosenOwnAccounting) {
    headroom h{{.tpm = 60000, .rpm = huge_rpm}};
    h.reserve(t0_, 50000);
    h.observe(t0_, 30000, std::nullopt);  // other traffic is invisible, but our own is known
    EXPECT_EQ(h.remaining(t0_).tokens, 10000u);
    EXPECT_FALSE(h.fits(t0_, 10001));
}

TEST_F(HeadroomTest, ObservedRemainingRequestsRefillAtCapacityPerTenSeconds) {
    headroom h{{.tpm = 60000, .rpm = 600}};  // 100 requests per 10 s
    h.observe(t0_, std::nullopt, 0);
    EXPECT_FALSE(h.fits(t0_, 1));
    EXPECT_EQ(h.remaining(t0_ + 5s).requests, 50u);
    EXPECT_TRUE(h.fits(t0_ + 5s, 1));
    EXPECT_EQ(h.remaining(t0_ + 10s).requests, 100u);
}

TEST_F(HeadroomTest, AnObservationOfOneKindKeepsTheOtherKind) {
    headroom h{{.tpm = 60000, .rpm = 600}};
    h.observe(t0_, 6000, std::nullopt);
    h.observe(t0_, std::nullopt, 40);
    EXPECT_EQ(h.remaining(t0_).tokens, 6000u);
    EXPECT_EQ(h.remaining(t0_).requests, 40u);
}

TEST_F(HeadroomTest, FractionIsTheTighterOfTokensAndRequests) {
    headroom tokens_only{{.tpm = 1000}};
    tokens_only.reserve(t0_, 250);
    EXPECT_DOUBLE_EQ(tokens_only.fraction(t0_), 0.75);

    headroom requests_only{{.rpm = 60}};  // 10 per 10 s
    for (int i = 0; i < 5; ++i) requests_only.reserve(t0_, 0);
    EXPECT_DOUBLE_EQ(requests_only.fraction(t0_), 0.5);

    headroom both{{.tpm = 1000, .rpm = 60}};
    both.reserve(t0_, 500);
    EXPECT_DOUBLE_EQ(both.fraction(t0_), 0.5);  // tokens 0.5, requests 0.9
    for (int i = 0; i < 6; ++i) both.reserve(t0_, 0);
    EXPECT_DOUBLE_EQ(both.fraction(t0_), 0.3);  // requests 3/10
    both.reserve(t0_, 500);
    EXPECT_DOUBLE_EQ(both.fraction(t0_), 0.0);
}

TEST_F(HeadroomTest, FractionFollowsObservations) {
    headroom h{{.tpm = 60000, .rpm = huge_rpm}};
    h.observe(t0_, 15000, std::nullopt);
    EXPECT_DOUBLE_EQ(h.fraction(t0_), 0.25);
    EXPECT_DOUBLE_EQ(h.fraction(t0_ + 15s), 0.5);
}

TEST_F(HeadroomTest, FractionIsOneWhenCapacityIsUnknown) {
    headroom h{quota_limits{}};
    EXPECT_DOUBLE_EQ(h.fraction(t0_), 1.0);
    h.observe(t0_, 10, 1);  // remaining known, capacity not
    EXPECT_DOUBLE_EQ(h.fraction(t0_), 1.0);
}

TEST_F(HeadroomTest, WhenFitsIsWhenEnoughOwnReservationsHaveLeft) {
    headroom h{{.tpm = 1000, .rpm = huge_rpm}};
    h.reserve(t0_, 600);
    h.reserve(t0_ + 20s, 300);
    const auto now = t0_ + 30s;
    EXPECT_EQ(h.when_fits(now, 100), now);
    EXPECT_EQ(h.when_fits(now, 101), t0_ + 60100ms);
    EXPECT_EQ(h.when_fits(now, 700), t0_ + 60100ms);
    EXPECT_EQ(h.when_fits(now, 701), t0_ + 80100ms);
    EXPECT_TRUE(h.fits(t0_ + 80100ms, 1000));
}

TEST_F(HeadroomTest, WhenFitsWaitsForTheRequestWindowToo) {
    headroom h{{.tpm = 1000, .rpm = 12}};  // 2 requests per 10 s
    h.reserve(t0_, 10);
    h.reserve(t0_ + 3s, 10);
    EXPECT_EQ(h.when_fits(t0_ + 5s, 10), t0_ + 10100ms);
    EXPECT_FALSE(h.fits(t0_ + 10100ms - 1ns, 10));
    EXPECT_TRUE(h.fits(t0_ + 10100ms, 10));
}

TEST_F(HeadroomTest, NoTpmNoRpmAlwaysFits) {
    headroom h{quota_limits{}};
    EXPECT_EQ(h.requests_per_window(), 0u);
    for (int i = 0; i < 1000; ++i) h.reserve(t0_, 1'000'000'000);
    EXPECT_TRUE(h.fits(t0_, 1'000'000'000'000));
    EXPECT_FALSE(h.remaining(t0_).tokens.has_value());
    EXPECT_FALSE(h.remaining(t0_).requests.has_value());
    EXPECT_EQ(h.when_fits(t0_, 1'000'000'000'000), t0_);
}

TEST_F(HeadroomTest, HeaderOnlyTokensAreTrustedForOneWindowWithoutRefill) {
    headroom h{quota_limits{}};  // no tpm: the refill rate is unknown
    h.observe(t0_, 500, std::nullopt);
    EXPECT_TRUE(h.fits(t0_, 500));
    EXPECT_FALSE(h.fits(t0_, 501));
    h.reserve(t0_, 200);
    EXPECT_EQ(h.remaining(t0_).tokens, 300u);
    EXPECT_EQ(h.remaining(t0_ + 60s - 1ns).tokens, 300u);  // no refill assumed
    EXPECT_FALSE(h.fits(t0_ + 60s - 1ns, 301));
    EXPECT_FALSE(h.remaining(t0_ + 60s).tokens.has_value());  // a window old: forgotten
    EXPECT_TRUE(h.fits(t0_ + 60s, 1'000'000));
}

TEST_F(HeadroomTest, HeaderOnlyRequestsAreTrustedForOneRequestWindow) {
    headroom h{quota_limits{}};
    h.observe(t0_, std::nullopt, 0);
    EXPECT_FALSE(h.fits(t0_, 1));
    EXPECT_FALSE(h.fits(t0_ + 10s - 1ns, 1));
    EXPECT_TRUE(h.fits(t0_ + 10s, 1));
}

// A reservation made before an observation is not part of what that observation said is left:
// releasing it (a 429 or refused connection for it, reported after the upstream's headers were
// read) must not cancel reservations that were made after the observation.
// Regression: release() used to subtract from the *current* observation even for a reservation
// made before it; in production (reserve -> observe the 429's headers -> others reserve while the
// body drains -> release) that forgot other requests' reservations exactly while throttled.
TEST_F(HeadroomTest, ReleasingAReservationOlderThanTheObservationKeepsNewerOnesCounted) {
    headroom h{{.tpm = 60000, .rpm = 600}};
    auto a = h.reserve(t0_, 1000);
    h.observe(t0_ + 1s, 10000, 50);  // A's 429: Azure did not count A
    h.reserve(t0_ + 1s, 2000);       // B, sent while A's answer was being drained
    h.release(t0_ + 1s, a);
    EXPECT_EQ(h.remaining(t0_ + 1s).tokens, 10000u - 2000u);
    EXPECT_EQ(h.remaining(t0_ + 1s).requests, 50u - 1u);
}

}  // namespace
}  // namespace spillway::quota
