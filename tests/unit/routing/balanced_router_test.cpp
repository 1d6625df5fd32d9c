// Unit tests for routing/balanced_router (SPEC §4): the lowest available priority tier wins,
// inside it a weighted draw (weight × max(0.05, headroom) × latency factor) steered here by
// scripted randomness, and last_exhausted() explains an empty pick. The state view is a fake
// that returns scripted statuses per target.
#include "routing/balanced_router.hpp"

#include "core/clock.hpp"
#include "core/random.hpp"
#include "routing/catalog.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace spillway::routing {
namespace {

using namespace std::chrono_literals;

// Every target available unless scripted otherwise; remembers what it was asked.
class scripted_view final : public state_view {
public:
    target_status status(target_id id, std::uint64_t estimated_tokens) override {
        asked.push_back(id);
        last_tokens = estimated_tokens;
        auto it = statuses.find(id);
        return it == statuses.end() ? target_status{} : it->second;
    }

    std::map<target_id, target_status> statuses;
    std::vector<target_id> asked;
    std::uint64_t last_tokens = 0;
};

// n values evenly spread over [0, 1): the midpoints (i + 0.5) / n, so no value sits on a boundary.
std::vector<double> uniform_values(int n) {
    std::vector<double> v;
    for (int i = 0; i < n; ++i) v.push_back((i + 0.5) / n);
    return v;
}

struct region_spec {
    std::string name;
    std::string zone;
    int priority;
    double weight;
};

// One gpt-4o deployment per region, in the given (config) order.
config::root one_model(const std::vector<region_spec>& specs) {
    config::root cfg;
    for (const auto& s : specs) {
        config::region r;
        r.name = s.name;
        r.data_zone = s.zone;
        r.upstream = {true, s.name + ".example", 443, ""};
        r.api_key = "key-" + s.name;
        config::deployment d;
        d.model = "gpt-4o";
        d.name = "gpt4o-" + s.name;
        d.priority = s.priority;
        d.weight = s.weight;
        d.tpm = 80000;
        r.deployments.push_back(d);
        cfg.regions.push_back(std::move(r));
    }
    return cfg;
}

// Targets by config order: 0 swedencentral (eu, p1) listed first, 1 eastus (us, p0, weight 3),
// 2 westus (us, p0, weight 1).
constexpr target_id sweden = 0;
constexpr target_id eastus = 1;
constexpr target_id westus = 2;

config::root three_regions() {
    return one_model({{"swedencentral", "eu", 1, 1.0}, {"eastus", "us", 0, 3.0}, {"westus", "us", 0, 1.0}});
}

target_status unavailable(availability a, core::time_point at) {
    target_status s;
    s.state = a;
    s.available_at = at;
    return s;
}

// A catalog over a config the fixture owns (the catalog points into it), a scripted view, and
// helpers that drive the router with evenly spread random values.
class RouterFixture : public ::testing::Test {
protected:
    explicit RouterFixture(config::root cfg) : cfg_(std::move(cfg)), cat_(cfg_), model_(*cat_.find("gpt-4o")) {}

    // n picks with n evenly spread random values: how often each target was chosen.
    std::map<target_id, int> shares(int n, std::span<const target_id> tried = {}) {
        core::scripted_random random{uniform_values(n)};
        balanced_router router{view_, random};
        std::map<target_id, int> counts;
        for (int i = 0; i < n; ++i)
            if (auto id = router.pick(cat_, model_, facts_, tried)) ++counts[*id];
        return counts;
    }

    std::optional<target_id> pick_once(std::span<const target_id> tried = {}) {
        core::scripted_random random{{0.5}};
        balanced_router router{view_, random};
        return router.pick(cat_, model_, facts_, tried);
    }

    core::manual_clock clock_;
    const core::time_point t0_ = clock_.now();
    const config::root cfg_;
    const catalog cat_;
    const model_entry& model_;
    scripted_view view_;
    request_facts facts_{.data_zone = "", .estimated_tokens = 1500};
};

class BalancedRouterTest : public RouterFixture {
protected:
    BalancedRouterTest() : RouterFixture(three_regions()) {}
};

TEST_F(BalancedRouterTest, CatalogOrdersTargetsByPriority) {
    ASSERT_EQ(model_.targets, (std::vector<target_id>{eastus, westus, sweden}));
}

TEST_F(BalancedRouterTest, LowestPriorityTierWinsWhileAvailable) {
    auto counts = shares(400);
    EXPECT_EQ(counts[sweden], 0);
    EXPECT_EQ(counts[eastus] + counts[westus], 400);
}

TEST_F(BalancedRouterTest, WeightsThreeToOneSplitSeventyFiveTwentyFive) {
    auto counts = shares(400);
    EXPECT_EQ(counts[eastus], 300);
    EXPECT_EQ(counts[westus], 100);
}

TEST_F(BalancedRouterTest, TheEstimateIsPassedToTheStateView) {
    pick_once();
    EXPECT_EQ(view_.last_tokens, 1500u);
}

TEST_F(BalancedRouterTest, FallsThroughToTheNextTierWhenEveryPreferredOneIsUnavailable) {
    for (auto a : {availability::cooling, availability::open, availability::no_headroom}) {
        view_.statuses[eastus] = unavailable(a, t0_ + 5s);
        view_.statuses[westus] = unavailable(a, t0_ + 5s);
        EXPECT_EQ(pick_once(), sweden) << static_cast<int>(a);
    }
    // Mixed reasons count the same.
    view_.statuses[eastus] = unavailable(availability::open, t0_ + 5s);
    view_.statuses[westus] = unavailable(availability::no_headroom, t0_ + 5s);
    EXPECT_EQ(pick_once(), sweden);
}

TEST_F(BalancedRouterTest, OneAvailablePreferredTargetTakesAllTraffic) {
    view_.statuses[eastus] = unavailable(availability::cooling, t0_ + 5s);
    auto counts = shares(400);
    EXPECT_EQ(counts[westus], 400);
}

TEST_F(BalancedRouterTest, FallsBackToThePreferredTierWhenItIsAvailableAgain) {
    view_.statuses[eastus] = unavailable(availability::cooling, t0_ + 5s);
    view_.statuses[westus] = unavailable(availability::open, t0_ + 5s);
    ASSERT_EQ(pick_once(), sweden);
    view_.statuses.erase(westus);
    EXPECT_EQ(pick_once(), westus);
    view_.statuses.erase(eastus);
    auto counts = shares(400);
    EXPECT_EQ(counts[sweden], 0);
    EXPECT_EQ(counts[eastus], 300);
}

TEST_F(BalancedRouterTest, NeverPicksATriedTarget) {
    const std::vector<target_id> tried_east{eastus};
    auto counts = shares(400, tried_east);
    EXPECT_EQ(counts[westus], 400);

    const std::vector<target_id> tried_us{eastus, westus};
    view_.asked.clear();
    EXPECT_EQ(pick_once(tried_us), sweden);
    EXPECT_EQ(view_.asked, (std::vector<target_id>{sweden}));  // tried ones are not even asked

    const std::vector<target_id> tried_all{sweden, westus, eastus};
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    EXPECT_EQ(router.pick(cat_, model_, facts_, tried_all), std::nullopt);
    EXPECT_TRUE(router.last_exhausted().no_candidates);
}

TEST_F(BalancedRouterTest, DataZoneRestrictsCandidates) {
    facts_.data_zone = "eu";
    auto counts = shares(400);
    EXPECT_EQ(counts[sweden], 400);  // the lower tier, but the only one in the zone

    facts_.data_zone = "us";
    view_.statuses[eastus] = unavailable(availability::cooling, t0_ + 5s);
    view_.statuses[westus] = unavailable(availability::cooling, t0_ + 7s);
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    EXPECT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);  // never leaves the zone
    EXPECT_TRUE(router.last_exhausted().throttled);
    EXPECT_FALSE(router.last_exhausted().no_candidates);
}

TEST_F(BalancedRouterTest, HeadroomFractionShiftsShares) {
    view_.statuses[eastus].headroom_fraction = 0.5;  // 3 × 0.5 = 1.5 against 1 × 1.0
    auto counts = shares(400);
    EXPECT_EQ(counts[eastus], 240);
    EXPECT_EQ(counts[westus], 160);

    view_.statuses[eastus].headroom_fraction = 0.2;  // 0.6 against 1.0
    counts = shares(400);
    EXPECT_EQ(counts[eastus], 150);
    EXPECT_EQ(counts[westus], 250);
}

TEST_F(BalancedRouterTest, HeadroomFactorHasAFloorOfFivePercent) {
    view_.statuses[eastus].headroom_fraction = 0.0;  // 3 × 0.05 = 0.15 against 1.0: 13 %
    auto counts = shares(400);
    EXPECT_EQ(counts[eastus], 52);
    EXPECT_EQ(counts[westus], 348);

    view_.statuses[eastus].headroom_fraction = 0.01;  // below the floor: the same shares
    EXPECT_EQ(shares(400), counts);
}

// Two equal-weight preferred targets: any difference in shares comes from latency.
class LatencyFactorTest : public RouterFixture {
protected:
    LatencyFactorTest()
        : RouterFixture(one_model({{"swedencentral", "eu", 1, 1.0}, {"eastus", "us", 0, 1.0}, {"westus", "us", 0, 1.0}})) {}
    std::map<target_id, int> shares_with(double east_ms, double west_ms) {
        view_.statuses[eastus].latency_ms = east_ms;
        view_.statuses[westus].latency_ms = west_ms;
        return shares(400);
    }
};

TEST_F(LatencyFactorTest, SlowerByBothRatioAndMarginLosesTraffic) {
    // 250 ms is 2.5× and 150 ms above 100 ms: weight × 100/250 = 0.4 against 1.
    auto counts = shares_with(100, 250);
    EXPECT_EQ(counts[eastus], 286);
    EXPECT_EQ(counts[westus], 114);
}

TEST_F(LatencyFactorTest, JustPastBothThresholds) {
    // 301 ms is 1.505× and 101 ms above 200 ms: factor 200/301, a 60/40 split.
    auto counts = shares_with(200, 301);
    EXPECT_EQ(counts[eastus], 240);
    EXPECT_EQ(counts[westus], 160);
}

TEST_F(LatencyFactorTest, RatioWithoutMarginDoesNotShiftTraffic) {
    auto counts = shares_with(100, 190);  // 1.9× but only 90 ms slower: loopback jitter
    EXPECT_EQ(counts[eastus], 200);
    EXPECT_EQ(counts[westus], 200);
    counts = shares_with(10, 109);  // 10.9× but 99 ms
    EXPECT_EQ(counts[eastus], 200);
}

TEST_F(LatencyFactorTest, MarginWithoutRatioDoesNotShiftTraffic) {
    auto counts = shares_with(300, 420);  // 120 ms slower but only 1.4×
    EXPECT_EQ(counts[eastus], 200);
    EXPECT_EQ(counts[westus], 200);
    counts = shares_with(1000, 1499);  // 499 ms slower, 1.499×
    EXPECT_EQ(counts[westus], 200);
}

TEST_F(LatencyFactorTest, FactorIsAtLeastOneTenth) {
    auto counts = shares_with(10, 5000);  // 10/5000 would be 0.002
    EXPECT_EQ(counts[eastus], 364);
    EXPECT_EQ(counts[westus], 36);
}

TEST_F(LatencyFactorTest, UnmeasuredLatencyIsNeitherBestNorPenalised) {
    auto counts = shares_with(0, 5000);  // only one measured: it is the best
    EXPECT_EQ(counts[eastus], 200);
    EXPECT_EQ(counts[westus], 200);
}

TEST_F(LatencyFactorTest, CombinesWithHeadroom) {
    view_.statuses[eastus].headroom_fraction = 0.5;  // 0.5 against 1 × 0.4 = 0.4
    auto counts = shares_with(100, 250);
    EXPECT_EQ(counts[eastus], 222);
    EXPECT_EQ(counts[westus], 178);
}

TEST_F(BalancedRouterTest, ExhaustedThrottledWithSoonestWhenAllCoolingOrOutOfHeadroom) {
    view_.statuses[eastus] = unavailable(availability::cooling, t0_ + 5s);
    view_.statuses[westus] = unavailable(availability::no_headroom, t0_ + 2s);
    view_.statuses[sweden] = unavailable(availability::cooling, t0_ + 9s);
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    EXPECT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);
    const auto& why = router.last_exhausted();
    EXPECT_TRUE(why.throttled);
    EXPECT_EQ(why.soonest, t0_ + 2s);
    EXPECT_FALSE(why.no_candidates);
}

TEST_F(BalancedRouterTest, ExhaustedNotThrottledWhenAllOpen) {
    view_.statuses[eastus] = unavailable(availability::open, t0_ + 15s);
    view_.statuses[westus] = unavailable(availability::open, t0_ + 12s);
    view_.statuses[sweden] = unavailable(availability::open, t0_ + 14s);
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    EXPECT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);
    const auto& why = router.last_exhausted();
    EXPECT_FALSE(why.throttled);  // 503, not 429
    EXPECT_EQ(why.soonest, t0_ + 12s);
    EXPECT_FALSE(why.no_candidates);
}

TEST_F(BalancedRouterTest, ExhaustedThrottledWhenSomeAreOpenAndSomeCooling) {
    view_.statuses[eastus] = unavailable(availability::open, t0_ + 1s);
    view_.statuses[westus] = unavailable(availability::open, t0_ + 1s);
    view_.statuses[sweden] = unavailable(availability::cooling, t0_ + 30s);
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    EXPECT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);
    EXPECT_TRUE(router.last_exhausted().throttled);
    EXPECT_EQ(router.last_exhausted().soonest, t0_ + 1s);
}

TEST_F(BalancedRouterTest, ExhaustedNoCandidatesWhenTheZoneHasNone) {
    facts_.data_zone = "apac";
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    EXPECT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);
    const auto& why = router.last_exhausted();
    EXPECT_TRUE(why.no_candidates);
    EXPECT_FALSE(why.throttled);
    EXPECT_FALSE(why.soonest.has_value());
    EXPECT_TRUE(view_.asked.empty());
}

TEST_F(BalancedRouterTest, ExhaustedIsResetByEachPick) {
    view_.statuses[eastus] = unavailable(availability::cooling, t0_ + 5s);
    view_.statuses[westus] = unavailable(availability::cooling, t0_ + 5s);
    view_.statuses[sweden] = unavailable(availability::cooling, t0_ + 5s);
    core::scripted_random random{{0.5}};
    balanced_router router{view_, random};
    ASSERT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);
    ASSERT_TRUE(router.last_exhausted().throttled);
    facts_.data_zone = "apac";
    ASSERT_EQ(router.pick(cat_, model_, facts_, {}), std::nullopt);
    EXPECT_FALSE(router.last_exhausted().throttled);
    EXPECT_FALSE(router.last_exhausted().soonest.has_value());
    EXPECT_TRUE(router.last_exhausted().no_candidates);
}

// 8 regions × 2 deployments of one model: a p1 spill-over deployment listed before a p0 one in
// each region, so target 2r is region r's p1 and 2r + 1 its p0.
config::root sixteen_deployments() {
    config::root cfg;
    for (int r = 0; r < 8; ++r) {
        config::region reg;
        reg.name = "region" + std::to_string(r);
        reg.data_zone = r < 4 ? "us" : "eu";
        reg.upstream = {true, reg.name + ".example", 443, ""};
        reg.api_key = "key";
        for (int p : {1, 0}) {
            config::deployment d;
            d.model = "gpt-4o";
            d.name = "gpt4o-" + reg.name + "-p" + std::to_string(p);
            d.priority = p;
            d.tpm = 80000;
            reg.deployments.push_back(d);
        }
        cfg.regions.push_back(std::move(reg));
    }
    return cfg;
}

class SixteenDeploymentTest : public RouterFixture {
protected:
    SixteenDeploymentTest() : RouterFixture(sixteen_deployments()) {}

    static target_id preferred(int region) { return static_cast<target_id>(2 * region + 1); }
    static target_id spill(int region) { return static_cast<target_id>(2 * region); }
};

TEST_F(SixteenDeploymentTest, EqualWeightsSpreadEvenlyOverTheEightPreferred) {
    auto counts = shares(800);
    ASSERT_EQ(counts.size(), 8u);
    for (int r = 0; r < 8; ++r) EXPECT_EQ(counts[preferred(r)], 100) << r;
}

TEST_F(SixteenDeploymentTest, UnavailablePreferredOnesShareNothing) {
    view_.statuses[preferred(0)] = unavailable(availability::cooling, t0_ + 1s);
    view_.statuses[preferred(3)] = unavailable(availability::open, t0_ + 1s);
    view_.statuses[preferred(6)] = unavailable(availability::no_headroom, t0_ + 1s);
    auto counts = shares(500);
    ASSERT_EQ(counts.size(), 5u);
    for (int r : {1, 2, 4, 5, 7}) EXPECT_EQ(counts[preferred(r)], 100) << r;
}

TEST_F(SixteenDeploymentTest, SpillTierTakesOverOnlyWhenEveryPreferredIsUnavailable) {
    for (int r = 0; r < 7; ++r) view_.statuses[preferred(r)] = unavailable(availability::cooling, t0_ + 1s);
    auto counts = shares(80);
    EXPECT_EQ(counts[preferred(7)], 80);

    view_.statuses[preferred(7)] = unavailable(availability::open, t0_ + 1s);
    counts = shares(800);
    ASSERT_EQ(counts.size(), 8u);
    for (int r = 0; r < 8; ++r) EXPECT_EQ(counts[spill(r)], 100) << r;
}

TEST_F(SixteenDeploymentTest, TriedPreferredOnesLeaveTheSpillTier) {
    std::vector<target_id> tried;
    for (int r = 0; r < 8; ++r) tried.push_back(preferred(r));
    auto counts = shares(800, tried);
    ASSERT_EQ(counts.size(), 8u);
    for (int r = 0; r < 8; ++r) EXPECT_EQ(counts[spill(r)], 100) << r;
}

TEST_F(SixteenDeploymentTest, ZoneAndTierTogether) {
    facts_.data_zone = "eu";  // regions 4..7
    for (int r = 4; r < 8; ++r) view_.statuses[preferred(r)] = unavailable(availability::cooling, t0_ + 1s);
    auto counts = shares(400);
    ASSERT_EQ(counts.size(), 4u);
    for (int r = 4; r < 8; ++r) EXPECT_EQ(counts[spill(r)], 100) << r;  // us preferred ones stay out
}

}  // namespace
}  // namespace spillway::routing
