// Unit tests for proxy/deployment_state: how upstream outcomes (429, failures, successes, headers)
// move one deployment between available, cooling, open and out of headroom, and how
// state_registry keeps a deployment's state across config snapshots.
#include "proxy/deployment_state.hpp"

#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace spillway::proxy {
namespace {

using namespace std::chrono_literals;
using routing::availability;

config::region region(std::string name, std::vector<config::deployment> deployments) {
    config::region r;
    r.name = name;
    r.endpoint_url = "https://" + name + ".openai.azure.com";
    r.upstream = {true, name + ".openai.azure.com", 443, ""};
    r.api_key = "key";
    r.deployments = std::move(deployments);
    return r;
}

config::deployment gpt4o(std::string name, std::uint64_t tpm) {
    config::deployment d;
    d.model = "gpt-4o";
    d.name = std::move(name);
    d.tpm = tpm;  // rpm derived: tpm / 1000 × 6
    return d;
}

// Health settings as in SPEC §2: default cooldown 10 s, max 300 s, 3 failures open for 15 s.
config::root two_regions(std::uint64_t east_tpm = 60000) {
    config::root cfg;
    cfg.regions.push_back(region("eastus", {gpt4o("gpt4o-east", east_tpm)}));
    cfg.regions.push_back(region("westus", {gpt4o("gpt4o-west", 60000)}));
    return cfg;
}

std::vector<std::pair<const config::region*, const config::deployment*>> targets_of(const config::root& cfg) {
    std::vector<std::pair<const config::region*, const config::deployment*>> t;
    for (const auto& r : cfg.regions)
        for (const auto& d : r.deployments) t.emplace_back(&r, &d);
    return t;
}

class DeploymentStateTest : public ::testing::Test {
protected:
    core::manual_clock clock_;
    const core::time_point t0_ = clock_.now();
    config::root cfg_ = two_regions();
    deployment_state state_{cfg_, cfg_.regions[0].deployments[0], clock_};

    void fail_times(int n) {
        for (int i = 0; i < n; ++i) {
            auto r = state_.begin(100);
            ASSERT_TRUE(r.has_value());
            state_.on_failed(*r, true);
        }
    }
};

TEST_F(DeploymentStateTest, FreshStateIsAvailableWithFullHeadroom) {
    auto s = state_.status(1000);
    EXPECT_EQ(s.state, availability::available);
    EXPECT_DOUBLE_EQ(s.headroom_fraction, 1.0);
    EXPECT_EQ(s.latency_ms, 0.0);
    EXPECT_EQ(state_.report().remaining_tokens, 60000u);
    EXPECT_EQ(state_.report().remaining_requests, 60u);  // rpm 360 derived from tpm, per 10 s
    EXPECT_EQ(state_.report().state, "available");
}

TEST_F(DeploymentStateTest, ThrottleCoolsDownUntilNowPlusRetryAfter) {
    auto r = state_.begin(1000);
    ASSERT_TRUE(r);
    clock_.advance(300ms);
    state_.on_throttled(*r, 2000ms);
    auto s = state_.status(1000);
    EXPECT_EQ(s.state, availability::cooling);
    EXPECT_EQ(s.available_at, t0_ + 2300ms);
    auto rep = state_.report();
    EXPECT_EQ(rep.state, "cooling");
    EXPECT_EQ(rep.cooldown_remaining_ms, 2000);
    EXPECT_FALSE(rep.available);
    EXPECT_EQ(rep.errors, 1u);
    EXPECT_EQ(rep.inflight, 0u);

    clock_.advance(2s - 1ns);
    EXPECT_EQ(state_.status(1000).state, availability::cooling);
    clock_.advance(1ns);
    EXPECT_EQ(state_.status(1000).state, availability::available);
}

TEST_F(DeploymentStateTest, ThrottleWithoutRetryAfterUsesTheDefaultCooldown) {
    auto r = state_.begin(1000);
    state_.on_throttled(*r, std::nullopt);
    EXPECT_EQ(state_.status(1000).available_at, t0_ + 10s);
}

TEST_F(DeploymentStateTest, ThrottleIsCappedAtMaxCooldown) {
    auto r = state_.begin(1000);
    state_.on_throttled(*r, 86'400'000ms);
    EXPECT_EQ(state_.status(1000).available_at, t0_ + 300s);
}

TEST_F(DeploymentStateTest, ThrottleReleasesTheReservation) {
    auto r = state_.begin(60000);
    ASSERT_TRUE(r);
    EXPECT_EQ(state_.report().remaining_tokens, 0u);
    state_.on_throttled(*r, 1ms);
    EXPECT_EQ(state_.report().remaining_tokens, 60000u);  // Azure did not admit it
    EXPECT_EQ(state_.report().remaining_requests, 60u);
    clock_.advance(1ms);
    EXPECT_EQ(state_.status(60000).state, availability::available);
}

TEST_F(DeploymentStateTest, ReservationsUseUpHeadroomUntilTheWindowSlides) {
    auto a = state_.begin(15000);
    ASSERT_TRUE(a);
    EXPECT_DOUBLE_EQ(state_.status(1).headroom_fraction, 0.75);
    auto b = state_.begin(45000);
    ASSERT_TRUE(b);
    auto s = state_.status(1);
    EXPECT_EQ(s.state, availability::no_headroom);
    EXPECT_EQ(s.available_at, t0_ + 60100ms);  // when the t0 slot leaves the minute window
    clock_.advance(60100ms);
    EXPECT_EQ(state_.status(60000).state, availability::available);
}

TEST_F(DeploymentStateTest, ObservedRemainingTokensRefuseLargerRequestsUntilTheNextRefill) {
    state_.on_headers({.remaining_tokens = 5000}, 20ms);
    EXPECT_EQ(state_.report().remaining_tokens, 5000u);
    auto fits = state_.status(5000);
    EXPECT_EQ(fits.state, availability::available);
    EXPECT_DOUBLE_EQ(fits.headroom_fraction, 5000.0 / 60000.0);
    auto refused = state_.status(5001);
    EXPECT_EQ(refused.state, availability::no_headroom);
    // The own windows would admit it now: the header model promises the next refill tick.
    EXPECT_EQ(refused.available_at, t0_ + 1s);
}

TEST_F(DeploymentStateTest, ThreeConsecutiveFailuresOpenTheCircuit) {
    fail_times(2);
    EXPECT_EQ(state_.status(100).state, availability::available);
    fail_times(1);
    auto s = state_.status(100);
    EXPECT_EQ(s.state, availability::open);
    EXPECT_EQ(s.available_at, t0_ + 15s);
    EXPECT_EQ(state_.report().state, "open");
    EXPECT_FALSE(state_.begin(100).has_value());
    EXPECT_EQ(state_.report().errors, 3u);
}

TEST_F(DeploymentStateTest, HalfOpenTrialIsClaimedByBeginAndASecondBeginIsRefused) {
    fail_times(3);
    clock_.advance(15s);
    EXPECT_EQ(state_.status(100).state, availability::available);  // the trial is free
    EXPECT_EQ(state_.report().state, "half_open");
    auto trial = state_.begin(100);
    ASSERT_TRUE(trial.has_value());
    EXPECT_FALSE(state_.begin(100).has_value());
    auto s = state_.status(100);
    EXPECT_EQ(s.state, availability::open);
    // The trial decides soon, but not now: callers waiting for capacity look again in 100 ms
    // instead of spinning.
    EXPECT_EQ(s.available_at, t0_ + 15s + 100ms);

    clock_.advance(400ms);
    state_.on_succeeded(400ms);
    EXPECT_EQ(state_.status(100).state, availability::available);
    EXPECT_EQ(state_.report().state, "available");
    EXPECT_TRUE(state_.begin(100).has_value());
    EXPECT_TRUE(state_.begin(100).has_value());
}

TEST_F(DeploymentStateTest, FailedTrialReopensForTheFullOpenPeriod) {
    fail_times(3);
    clock_.advance(15s);
    auto trial = state_.begin(100);
    ASSERT_TRUE(trial);
    clock_.advance(2s);
    state_.on_failed(*trial, false);
    auto s = state_.status(100);
    EXPECT_EQ(s.state, availability::open);
    EXPECT_EQ(s.available_at, t0_ + 32s);
}

TEST_F(DeploymentStateTest, ThrottledTrialFreesTheTrialSlot) {
    fail_times(3);
    clock_.advance(15s);
    auto trial = state_.begin(100);
    ASSERT_TRUE(trial);
    state_.on_throttled(*trial, 1s);
    EXPECT_EQ(state_.status(100).state, availability::cooling);
    clock_.advance(1s);
    EXPECT_EQ(state_.status(100).state, availability::available);
    EXPECT_TRUE(state_.begin(100).has_value());  // a new trial may go
}

TEST_F(DeploymentStateTest, AbandonedTrialFreesTheTrialSlot) {
    fail_times(3);
    clock_.advance(15s);
    ASSERT_TRUE(state_.begin(100));
    ASSERT_FALSE(state_.begin(100));
    state_.on_abandoned();
    EXPECT_TRUE(state_.begin(100).has_value());
}

TEST_F(DeploymentStateTest, FailureBeforeAResponseGivesTheQuotaBackAndAfterOneKeepsIt) {
    auto unsent = state_.begin(60000);
    state_.on_failed(*unsent, true);  // connect error: Azure never saw it
    EXPECT_EQ(state_.report().remaining_tokens, 60000u);
    auto answered = state_.begin(60000);
    state_.on_failed(*answered, false);  // a 500: Azure counted it
    EXPECT_EQ(state_.report().remaining_tokens, 0u);
}

TEST_F(DeploymentStateTest, SuccessFeedsTheLatencyAverage) {
    ASSERT_TRUE(state_.begin(100));
    state_.on_succeeded(200ms);
    EXPECT_DOUBLE_EQ(state_.status(100).latency_ms, 200.0);
    ASSERT_TRUE(state_.begin(100));
    state_.on_succeeded(100ms);
    EXPECT_DOUBLE_EQ(state_.status(100).latency_ms, 180.0);  // alpha 0.2
    auto rep = state_.report();
    EXPECT_EQ(rep.requests, 2u);
    EXPECT_EQ(rep.errors, 0u);
    EXPECT_EQ(rep.inflight, 0u);
    ASSERT_TRUE(rep.latency_ewma_ms.has_value());
    EXPECT_DOUBLE_EQ(*rep.latency_ewma_ms, 180.0);
}

TEST_F(DeploymentStateTest, SuccessResetsTheFailureCount) {
    fail_times(2);
    ASSERT_TRUE(state_.begin(100));
    state_.on_succeeded(50ms);
    fail_times(2);
    EXPECT_EQ(state_.status(100).state, availability::available);
}

// target_status::available_at promises "the earliest it may be again". A deployment whose circuit
// is open can also be cooling down (a straggler's 429 arrives after three failures opened it).
// Regression: the cooldown's end used to be reported even when the circuit stayed open longer,
// so the 429's retry-after and the max_wait wake-up came too early.
TEST_F(DeploymentStateTest, AvailableAtIsTheLaterOfCooldownAndOpenCircuit) {
    auto straggler = state_.begin(100);
    ASSERT_TRUE(straggler);
    fail_times(3);  // opens until t0 + 15 s
    state_.on_throttled(*straggler, 2s);
    auto s = state_.status(100);
    EXPECT_NE(s.state, availability::available);
    EXPECT_EQ(core::to_ms(s.available_at - t0_), 15000.0);  // as an offset, to print readably
    clock_.advance(2s);
    EXPECT_EQ(state_.status(100).state, availability::open);  // t0 + 2 s was not when it came back
}

TEST(StateRegistry, BindKeepsTheStateOfAnUnchangedDeployment) {
    core::manual_clock clock;
    state_registry registry{clock};
    const config::root first = two_regions();
    auto states1 = registry.bind(first, targets_of(first));
    ASSERT_EQ(states1.size(), 2u);
    auto r = states1[0]->begin(100);
    states1[0]->on_throttled(*r, 5s);

    const config::root second = two_regions();  // a reload with the same deployments
    auto states2 = registry.bind(second, targets_of(second));
    ASSERT_EQ(states2.size(), 2u);
    EXPECT_EQ(states2[0].get(), states1[0].get());
    EXPECT_EQ(states2[1].get(), states1[1].get());
    EXPECT_EQ(states2[0]->status(100).state, availability::cooling);  // the health survives
}

TEST(StateRegistry, BindStartsAChangedDeploymentAfresh) {
    core::manual_clock clock;
    state_registry registry{clock};
    const config::root first = two_regions(60000);
    auto states1 = registry.bind(first, targets_of(first));
    auto r = states1[0]->begin(100);
    states1[0]->on_throttled(*r, 5s);
    auto w = states1[1]->begin(100);
    states1[1]->on_throttled(*w, 5s);

    const config::root second = two_regions(120000);  // eastus got more quota
    auto states2 = registry.bind(second, targets_of(second));
    EXPECT_NE(states2[0].get(), states1[0].get());
    EXPECT_EQ(states2[0]->status(100).state, availability::available);
    EXPECT_EQ(states2[0]->report().remaining_tokens, 120000u);
    EXPECT_EQ(states2[1].get(), states1[1].get());
    EXPECT_EQ(states2[1]->status(100).state, availability::cooling);
}

// The pooled x-ratelimit-remaining-* headers count only deployments that can take traffic.
TEST_F(DeploymentStateTest, PoolContributionIsEmptyWhileCoolingOrOpen) {
    EXPECT_EQ(state_.pool_contribution().tokens, 60000u);
    auto r = state_.begin(100);
    ASSERT_TRUE(r);
    state_.on_throttled(*r, 2s);
    EXPECT_FALSE(state_.pool_contribution().tokens.has_value());
    EXPECT_FALSE(state_.pool_contribution().requests.has_value());
    clock_.advance(2s);
    EXPECT_EQ(state_.pool_contribution().tokens, 60000u);
}

}  // namespace
}  // namespace spillway::proxy
