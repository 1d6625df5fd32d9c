// Config parsing: defaults, every problem with its JSON path, unknown keys rejected.
#include "mock/mock_config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace spillway::mock {
namespace {

bool has(const std::vector<std::string>& problems, std::string_view text) {
    return std::any_of(problems.begin(), problems.end(), [&](const std::string& p) { return p.find(text) != p.npos; });
}

TEST(mock_config, parses_a_full_config) {
    mock_config cfg;
    auto problems = parse_mock_config(R"({
        "control": {"address": "127.0.0.1", "port": 18080},
        "threads": 2,
        "regions": [{"name": "eastus", "port": 18081, "api_key": "k", "ttft_ms": 150, "token_ms": 20,
                     "completion_tokens": 8, "default_max_tokens": 256,
                     "deployments": [{"name": "gpt4o-eastus", "model": "gpt-4o", "tpm": 30000},
                                     {"name": "emb", "model": "text-embedding-3-small", "tpm": 120000, "rpm": 60}]}]
    })",
                                      cfg);
    ASSERT_TRUE(problems.empty()) << problems.front();
    EXPECT_EQ(cfg.control_port, 18080);
    EXPECT_EQ(cfg.threads, 2u);
    ASSERT_EQ(cfg.regions.size(), 1u);
    const auto& r = cfg.regions[0];
    EXPECT_EQ(r.name, "eastus");
    EXPECT_EQ(r.address, "127.0.0.1");
    EXPECT_EQ(r.port, 18081);
    EXPECT_EQ(r.api_key, "k");
    EXPECT_EQ(r.latency.ttft, std::chrono::milliseconds{150});
    EXPECT_EQ(r.latency.per_token, std::chrono::milliseconds{20});
    EXPECT_EQ(r.completion_tokens, 8u);
    EXPECT_EQ(r.default_max_tokens, 256u);
    ASSERT_EQ(r.deployments.size(), 2u);
    EXPECT_EQ(r.deployments[0].model, "gpt-4o");
    EXPECT_EQ(effective_rpm(r.deployments[0]), 180u);  // Azure: 6 RPM per 1000 TPM
    EXPECT_EQ(effective_rpm(r.deployments[1]), 60u);
}

TEST(mock_config, reports_every_problem_with_its_path) {
    mock_config cfg;
    auto problems = parse_mock_config(R"({
        "treads": 2,
        "regions": [{"name": "a", "port": "x", "deployments": [{"name": "d", "tmp": 5}]},
                    {"deployments": [{"model": "m"}]}]
    })",
                                      cfg);
    EXPECT_TRUE(has(problems, "treads: unknown key"));
    EXPECT_TRUE(has(problems, "regions[0].port: must be an unsigned integer"));
    EXPECT_TRUE(has(problems, "regions[0].deployments[0].tmp: unknown key"));
    EXPECT_TRUE(has(problems, "regions[1].name: is required"));
    EXPECT_TRUE(has(problems, "regions[1].deployments[0].name: is required"));
    EXPECT_EQ(problems.size(), 5u);
}

TEST(mock_config, structural_checks) {
    mock_config cfg;
    auto problems = parse_mock_config(R"({"regions": [
        {"name": "a", "port": 9000, "deployments": [{"name": "d"}, {"name": "d"}]},
        {"name": "a", "port": 9000, "deployments": []}]})",
                                      cfg);
    EXPECT_TRUE(has(problems, "regions[0].deployments[1].name: duplicate deployment 'd'"));
    EXPECT_TRUE(has(problems, "regions[1].name: duplicate region 'a'"));
    EXPECT_TRUE(has(problems, "regions[1].port: 9000 is already used"));
    EXPECT_TRUE(has(problems, "regions[1].deployments: at least one deployment is required"));

    EXPECT_TRUE(has(parse_mock_config("{}", cfg), "regions: at least one region is required"));
    EXPECT_TRUE(has(parse_mock_config("{oops", cfg), "not valid JSON"));
    EXPECT_TRUE(has(parse_mock_config(R"({"regions":[{"name":"a","port":70000,"deployments":[{"name":"d"}]}]})", cfg),
                    "regions[0].port: must be <= 65535"));
}

TEST(mock_config, model_defaults_to_the_deployment_name_and_rpm_to_unlimited_without_tpm) {
    mock_config cfg;
    ASSERT_TRUE(parse_mock_config(R"({"regions":[{"name":"a","deployments":[{"name":"gpt-4o"}]}]})", cfg).empty());
    EXPECT_EQ(cfg.regions[0].deployments[0].model, "gpt-4o");
    EXPECT_EQ(effective_rpm(cfg.regions[0].deployments[0]), 0u);
    EXPECT_EQ(cfg.regions[0].api_key, "mock-key");
    EXPECT_EQ(cfg.regions[0].completion_tokens, 16u);
}

TEST(mock_config, the_demo_config_is_valid) {
    // This file lives in tests/unit/mock/; the demo config in config/ at the repository root.
    auto path = std::filesystem::path{__FILE__}.parent_path() / "../../../config/mock-demo.json";
    std::ifstream in{path};
    ASSERT_TRUE(in) << "config/mock-demo.json missing";
    std::stringstream text;
    text << in.rdbuf();
    mock_config cfg;
    auto problems = parse_mock_config(text.str(), cfg);
    ASSERT_TRUE(problems.empty()) << problems.front();
    ASSERT_EQ(cfg.regions.size(), 3u);
    EXPECT_EQ(cfg.control_port, 18080);
    EXPECT_EQ(cfg.regions[1].name, "swedencentral");
    EXPECT_EQ(cfg.regions[1].port, 18082);
    EXPECT_EQ(cfg.regions[1].deployments[0].tpm, 60000u);
}

}  // namespace
}  // namespace spillway::mock
