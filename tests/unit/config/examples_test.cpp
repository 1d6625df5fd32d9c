// Every example config shipped in config/ must load cleanly, so the examples cannot rot.
#include "config_test_support.hpp"

#include <gmock/gmock.h>

#include <algorithm>
#include <set>

using testing::IsSupersetOf;

namespace spillway::config::test {
namespace {

// tests/unit/config/ -> repository root -> config/
std::filesystem::path examples_dir() {
    return std::filesystem::path{__FILE__}.parent_path().parent_path().parent_path().parent_path() / "config";
}

// Every variable the examples name resolves to a distinct placeholder; which variables a file
// needs is its own business, the test checks the file is otherwise valid.
env_lookup any_env() {
    return [](const std::string& name) -> std::optional<std::string> { return "test-value-for-" + name; };
}

// spillway-mock's configs (mock-*.json) share the directory but are not spillway configs.
std::vector<std::filesystem::path> spillway_examples() {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator{examples_dir()}) {
        const auto name = entry.path().filename().string();
        if (entry.path().extension() == ".json" && !name.starts_with("mock")) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

TEST(examples, the_documented_examples_exist) {
    std::vector<std::string> names;
    for (const auto& p : spillway_examples()) names.push_back(p.filename().string());
    EXPECT_THAT(names, IsSupersetOf({"active-active.json", "active-passive.json", "demo.json"}));
}

TEST(examples, every_example_loads_without_problems) {
    for (const auto& path : spillway_examples()) {
        SCOPED_TRACE(path.string());
        auto r = load_file(path.string(), any_env());
        for (const auto& p : r.problems) ADD_FAILURE() << p.to_string();
        EXPECT_TRUE(r.config);
    }
}

TEST(examples, active_active_spreads_one_model_over_regions_by_weight) {
    auto r = load_file((examples_dir() / "active-active.json").string(), any_env());
    ASSERT_TRUE(r.config);
    std::set<std::string> models;
    std::set<int> priorities;
    std::set<double> weights;
    for (const auto& reg : r.config->regions)
        for (const auto& d : reg.deployments) {
            models.insert(d.model);
            priorities.insert(d.priority);
            weights.insert(d.weight);
        }
    EXPECT_GE(r.config->regions.size(), 2u);
    EXPECT_EQ(models.size(), 1u);      // one model...
    EXPECT_EQ(priorities.size(), 1u);  // ...in a single tier...
    EXPECT_GT(weights.size(), 1u);     // ...with unequal shares
}

TEST(examples, active_passive_has_a_provisioned_primary_and_standard_spill_over) {
    auto r = load_file((examples_dir() / "active-passive.json").string(), any_env());
    ASSERT_TRUE(r.config);
    bool ptu_primary = false, standard_secondary = false, embeddings = false;
    for (const auto& reg : r.config->regions)
        for (const auto& d : reg.deployments) {
            if (d.model == "gpt-4o" && d.sku == sku::provisioned && d.priority == 0) ptu_primary = true;
            if (d.model == "gpt-4o" && d.sku != sku::provisioned && d.priority == 1) standard_secondary = true;
            if (d.model.starts_with("text-embedding")) embeddings = true;
        }
    EXPECT_TRUE(ptu_primary);
    EXPECT_TRUE(standard_secondary);
    EXPECT_TRUE(embeddings);
}

TEST(examples, demo_targets_the_local_mock_regions) {
    // The demo needs no environment at all.
    auto r = load_file((examples_dir() / "demo.json").string(), fake_env());
    ASSERT_TRUE(r.config);
    const auto& cfg = *r.config;
    EXPECT_EQ(cfg.listen.port, 8080);
    EXPECT_EQ(cfg.admin.port, 9090);
    ASSERT_EQ(cfg.auth.keys.size(), 1u);
    EXPECT_EQ(cfg.auth.keys[0].name, "demo");
    EXPECT_EQ(cfg.auth.keys[0].key, "sk-demo");
    ASSERT_EQ(cfg.regions.size(), 3u);
    const std::pair<std::string, std::uint16_t> expected[] = {{"eastus", 18081}, {"swedencentral", 18082}, {"westus", 18083}};
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& reg = cfg.regions[i];
        EXPECT_EQ(reg.name, expected[i].first);
        EXPECT_EQ(reg.upstream.host, "127.0.0.1");
        EXPECT_EQ(reg.upstream.port, expected[i].second);
        EXPECT_FALSE(reg.upstream.tls);
        EXPECT_EQ(reg.api_key, "mock-key");
        std::set<std::string> models;
        for (const auto& d : reg.deployments) models.insert(d.model);
        EXPECT_EQ(models, (std::set<std::string>{"gpt-4o", "text-embedding-3-small"}));
    }
}

}  // namespace
}  // namespace spillway::config::test
