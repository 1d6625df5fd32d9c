// Unit tests for routing/catalog and routing/router: the routing table built from a hand-made
// config, in_zone, and what the proxy's retry loop relies on from a pick over that table (tiers
// in priority order, the tried set across models, the data zone), driven through balanced_router
// with every target available. Weights, health and headroom are in balanced_router_test.cpp.
#include "core/random.hpp"
#include "routing/balanced_router.hpp"
#include "routing/catalog.hpp"
#include "routing/router.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace spillway::routing {
namespace {

config::deployment dep(std::string model, std::string name, int priority) {
    config::deployment d;
    d.model = std::move(model);
    d.name = std::move(name);
    d.priority = priority;
    d.tpm = 80000;
    return d;
}

config::region region(std::string name, std::string zone, config::region_kind kind,
                      std::vector<config::deployment> deployments) {
    config::region r;
    r.name = std::move(name);
    r.data_zone = std::move(zone);
    r.kind = kind;
    r.upstream = {true, r.name + ".example", 443, ""};
    r.api_key = "key-" + r.name;
    r.deployments = std::move(deployments);
    return r;
}

// Three regions, two models. Target ids follow config order:
//   0 eastus/gpt4o-east (p1)   1 eastus/emb-east (p0)
//   2 sweden/gpt4o-sweden (p0) 3 sweden/emb-sweden (p2)
//   4 westus/gpt-4o (p0)       5 westus/emb-west (p0)
// So gpt-4o's tiers are {sweden, westus} (config order among p0), then eastus; embeddings'
// {eastus, westus}, then sweden.
config::root three_regions() {
    config::root cfg;
    cfg.regions.push_back(region("eastus", "us", config::region_kind::azure,
                                 {dep("gpt-4o", "gpt4o-east", 1), dep("text-embedding-3-small", "emb-east", 0)}));
    cfg.regions.push_back(region("swedencentral", "eu", config::region_kind::azure,
                                 {dep("gpt-4o", "gpt4o-sweden", 0), dep("text-embedding-3-small", "emb-sweden", 2)}));
    cfg.regions.push_back(region("westus", "us", config::region_kind::openai,
                                 {dep("gpt-4o", "gpt-4o", 0), dep("text-embedding-3-small", "emb-west", 0)}));
    return cfg;
}

// Every target available: a balanced_router's pick then depends only on the tiers, the tried
// set, the zone and the draw.
class all_available final : public state_view {
public:
    target_status status(target_id, std::uint64_t) override { return {}; }
};

class RoutingTest : public ::testing::Test {
protected:
    config::root cfg_ = three_regions();
    catalog cat_{cfg_};
    all_available view_;

    const model_entry& model(std::string_view name) {
        static const model_entry none;
        const model_entry* m = cat_.find(name);
        if (!m) ADD_FAILURE() << "no model " << name;
        return m ? *m : none;
    }
    // `draw` is the router's random value: in a tier of two equal weights, below 0.5 picks the
    // first in catalog order, above it the second.
    std::optional<target_id> pick(std::string_view m, std::vector<target_id> tried = {}, std::string_view zone = "",
                                  double draw = 0.25) {
        core::scripted_random random{{draw}};
        balanced_router router{view_, random};
        request_facts facts;
        facts.data_zone = zone;
        return router.pick(cat_, model(m), facts, tried);
    }
    // Picks until nothing is left, as the proxy's retry loop does, after `tried`; returns the picks.
    std::vector<target_id> order(std::string_view m, std::string_view zone = "", double draw = 0.25,
                                 std::vector<target_id> tried = {}) {
        const std::size_t given = tried.size();
        while (auto id = pick(m, tried, zone, draw)) {
            tried.push_back(*id);
            if (tried.size() > given + cat_.size()) break;  // a router that repeats itself must not hang the test
        }
        return {tried.begin() + static_cast<std::ptrdiff_t>(given), tried.end()};
    }
};

// ---------------------------------------------------------------------------------------------
// catalog

TEST_F(RoutingTest, CatalogHasOneTargetPerDeploymentInConfigOrder) {
    ASSERT_EQ(cat_.size(), 6u);
    const std::pair<std::size_t, std::size_t> where[] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}, {2, 1}};
    for (target_id id = 0; id < cat_.size(); ++id) {
        const target& t = cat_.at(id);
        EXPECT_EQ(t.id, id);
        EXPECT_EQ(t.region_index, where[id].first);
        EXPECT_EQ(t.region, &cfg_.regions[where[id].first]) << "points into the config, no copy";
        EXPECT_EQ(t.deployment, &cfg_.regions[where[id].first].deployments[where[id].second]);
    }
}

TEST_F(RoutingTest, CatalogModelsInFirstSeenOrder) {
    ASSERT_EQ(cat_.models().size(), 2u);
    EXPECT_EQ(cat_.models()[0].name, "gpt-4o");
    EXPECT_EQ(cat_.models()[1].name, "text-embedding-3-small");
}

TEST_F(RoutingTest, FindByModelName) {
    const model_entry* m = cat_.find("gpt-4o");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->name, "gpt-4o");
    EXPECT_EQ(m, &cat_.models()[0]);
    const model_entry* e = cat_.find("text-embedding-3-small");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->name, "text-embedding-3-small");
}

TEST_F(RoutingTest, FindByDeploymentNameAlias) {
    for (std::string_view alias : {"gpt4o-east", "gpt4o-sweden"}) EXPECT_EQ(cat_.find(alias), cat_.find("gpt-4o")) << alias;
    for (std::string_view alias : {"emb-east", "emb-sweden", "emb-west"})
        EXPECT_EQ(cat_.find(alias), cat_.find("text-embedding-3-small")) << alias;
}

TEST_F(RoutingTest, FindUnknownIsNull) {
    for (std::string_view name : {"", "gpt-4", "gpt-4o-mini", "GPT-4O", "gpt-4o ", " gpt-4o", "emb", "eastus",
                                  "text-embedding-3-large"})
        EXPECT_EQ(cat_.find(name), nullptr) << "[" << name << "]";
}

TEST_F(RoutingTest, TargetsSortedByPriorityThenConfigOrder) {
    EXPECT_EQ(model("gpt-4o").targets, (std::vector<target_id>{2, 4, 0}));
    EXPECT_EQ(model("text-embedding-3-small").targets, (std::vector<target_id>{1, 5, 3}));
}

TEST(Catalog, EqualPrioritiesKeepConfigOrder) {
    config::root cfg;
    for (int i = 0; i < 6; ++i)
        cfg.regions.push_back(region("r" + std::to_string(i), "", config::region_kind::azure,
                                     {dep("m", "d" + std::to_string(i), (i + 1) % 2)}));
    catalog cat(cfg);
    ASSERT_NE(cat.find("m"), nullptr);
    EXPECT_EQ(cat.find("m")->targets, (std::vector<target_id>{1, 3, 5, 0, 2, 4}));
}

TEST(Catalog, NegativeAndLargePriorities) {
    config::root cfg;
    cfg.regions.push_back(region("a", "", config::region_kind::azure, {dep("m", "a", 100)}));
    cfg.regions.push_back(region("b", "", config::region_kind::azure, {dep("m", "b", -1)}));
    cfg.regions.push_back(region("c", "", config::region_kind::azure, {dep("m", "c", 5)}));
    catalog cat(cfg);
    EXPECT_EQ(cat.find("m")->targets, (std::vector<target_id>{1, 2, 0}));
}

TEST(Catalog, EmptyConfig) {
    config::root cfg;
    catalog cat(cfg);
    EXPECT_EQ(cat.size(), 0u);
    EXPECT_TRUE(cat.models().empty());
    EXPECT_EQ(cat.find("gpt-4o"), nullptr);
}

TEST(Catalog, RegionWithoutDeploymentsAddsNothing) {
    config::root cfg;
    cfg.regions.push_back(region("empty", "us", config::region_kind::azure, {}));
    cfg.regions.push_back(region("full", "us", config::region_kind::azure, {dep("m", "d", 0)}));
    catalog cat(cfg);
    ASSERT_EQ(cat.size(), 1u);
    EXPECT_EQ(cat.at(0).region_index, 1u);
    EXPECT_EQ(cat.at(0).region, &cfg.regions[1]);
}

// ---------------------------------------------------------------------------------------------
// picks over the catalog, as the proxy's retry loop makes them

TEST_F(RoutingTest, RetryLoopVisitsEveryTargetOnceTierByTier) {
    EXPECT_EQ(order("gpt-4o", "", 0.25), (std::vector<target_id>{2, 4, 0}));
    EXPECT_EQ(order("gpt-4o", "", 0.75), (std::vector<target_id>{4, 2, 0}));
    EXPECT_EQ(order("text-embedding-3-small", "", 0.25), (std::vector<target_id>{1, 5, 3}));
    EXPECT_EQ(order("text-embedding-3-small", "", 0.75), (std::vector<target_id>{5, 1, 3}));
}

TEST_F(RoutingTest, SkipsTriedTargetsInAnyOrderWhateverElseIsInTried) {
    EXPECT_EQ(pick("gpt-4o", {4}), std::optional<target_id>(2));
    EXPECT_EQ(pick("gpt-4o", {4, 2}), std::optional<target_id>(0));
    EXPECT_EQ(pick("gpt-4o", {2, 4}), std::optional<target_id>(0));
    EXPECT_EQ(pick("gpt-4o", {0}, "", 0.75), std::optional<target_id>(4)) << "a tried spill-over target changes nothing";
    // Ids of other models' targets in `tried` change nothing either.
    EXPECT_EQ(order("gpt-4o", "", 0.25, {1, 3, 5}), (std::vector<target_id>{2, 4, 0}));
    EXPECT_EQ(pick("gpt-4o", {0, 1, 2, 3, 4, 5}), std::nullopt);
}

TEST_F(RoutingTest, RetryLoopStaysInTheDataZone) {
    EXPECT_EQ(order("gpt-4o", "eu"), (std::vector<target_id>{2}));
    EXPECT_EQ(order("gpt-4o", "us"), (std::vector<target_id>{4, 0}));
    EXPECT_EQ(order("text-embedding-3-small", "eu"), (std::vector<target_id>{3}));
    EXPECT_EQ(order("text-embedding-3-small", "us"), (std::vector<target_id>{1, 5}));
    EXPECT_EQ(pick("gpt-4o", {2}, "eu"), std::nullopt) << "never leaves the zone, even when the zone is exhausted";
}

TEST_F(RoutingTest, BalancedRouterWorksThroughTheRouterInterface) {
    core::scripted_random random{{0.5}};
    std::unique_ptr<router> r = std::make_unique<balanced_router>(view_, random);
    std::vector<target_id> tried{2};
    EXPECT_EQ(r->pick(cat_, model("gpt-4o"), request_facts{}, tried), std::optional<target_id>(4));
}

TEST(InZone, EmptyRequestZoneMatchesEverything) {
    config::region zoned = region("a", "eu", config::region_kind::azure, {});
    config::region unzoned = region("b", "", config::region_kind::azure, {});
    target tz{0, 0, &zoned, nullptr};
    target tu{1, 1, &unzoned, nullptr};
    EXPECT_TRUE(in_zone(tz, ""));
    EXPECT_TRUE(in_zone(tu, ""));
    EXPECT_TRUE(in_zone(tz, "eu"));
    EXPECT_FALSE(in_zone(tz, "us"));
    EXPECT_FALSE(in_zone(tz, "EU")) << "zones are compared exactly";
    EXPECT_FALSE(in_zone(tu, "eu")) << "a region without a zone is not in every zone";
}

}  // namespace
}  // namespace spillway::routing
