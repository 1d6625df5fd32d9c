// What a valid config turns into: defaults, the full SPEC §2 example, inheritance, comments,
// environment-resolved secrets and loading from a file.
#include "config_test_support.hpp"

#include <gmock/gmock.h>

using namespace std::chrono_literals;
using testing::ElementsAre;
using testing::HasSubstr;

namespace spillway::config::test {
namespace {

TEST(loader_defaults, minimal_config_gets_every_default) {
    auto cfg = parse_ok(config_with());
    ASSERT_TRUE(cfg);

    EXPECT_EQ(cfg->listen.address, "0.0.0.0");
    EXPECT_EQ(cfg->listen.port, 8080);
    EXPECT_FALSE(cfg->listen.tls.has_value());
    EXPECT_EQ(cfg->admin.address, "127.0.0.1");
    EXPECT_EQ(cfg->admin.port, 9090);
    EXPECT_FALSE(cfg->admin.tls.has_value());
    EXPECT_EQ(cfg->workers, 0u);

    EXPECT_EQ(cfg->routing.max_attempts, 3);
    EXPECT_EQ(cfg->routing.request_timeout, 600000ms);
    EXPECT_EQ(cfg->routing.connect_timeout, 3000ms);
    EXPECT_EQ(cfg->routing.stream_idle_timeout, 300000ms);
    EXPECT_THAT(cfg->routing.retry_on, ElementsAre(408, 429, 500, 502, 503, 504));
    EXPECT_EQ(cfg->routing.max_wait, 0ms);
    EXPECT_EQ(cfg->routing.default_max_tokens, 1024u);

    EXPECT_EQ(cfg->health.default_cooldown, 10000ms);
    EXPECT_EQ(cfg->health.max_cooldown, 300000ms);
    EXPECT_EQ(cfg->health.failure_threshold, 3);
    EXPECT_EQ(cfg->health.open, 15000ms);
    EXPECT_DOUBLE_EQ(cfg->health.latency_ewma_alpha, 0.2);

    EXPECT_EQ(cfg->limits.max_body_bytes, 33554432u);
    EXPECT_EQ(cfg->limits.header_timeout, 10000ms);
    EXPECT_EQ(cfg->limits.idle_timeout, 120000ms);
    EXPECT_EQ(cfg->limits.max_connections, 20000u);
    EXPECT_EQ(cfg->limits.max_header_bytes, 65536u);
    EXPECT_EQ(cfg->limits.upstream_idle_per_region, 256u);

    EXPECT_EQ(cfg->log.level, "info");
    EXPECT_EQ(cfg->log.format, "text");
    EXPECT_TRUE(cfg->log.access_log);

    ASSERT_EQ(cfg->regions.size(), 1u);
    const auto& reg = cfg->regions[0];
    EXPECT_EQ(reg.kind, region_kind::azure);
    EXPECT_EQ(reg.priority, 0);
    EXPECT_DOUBLE_EQ(reg.weight, 1.0);
    EXPECT_TRUE(reg.tls_verify);
    EXPECT_TRUE(reg.data_zone.empty());
    EXPECT_TRUE(reg.ca_file.empty());

    ASSERT_EQ(reg.deployments.size(), 1u);
    const auto& d = reg.deployments[0];
    EXPECT_EQ(d.model, "gpt-4o");
    EXPECT_EQ(d.name, "gpt4o-eastus");
    EXPECT_TRUE(d.model_version.empty());
    EXPECT_EQ(d.api_version, "2024-10-21");
    EXPECT_EQ(d.sku, sku::standard);
    EXPECT_FALSE(d.tpm.has_value());
    EXPECT_FALSE(d.rpm.has_value());
    EXPECT_FALSE(root::effective_rpm(d).has_value());
    EXPECT_EQ(d.priority, 0);
    EXPECT_DOUBLE_EQ(d.weight, 1.0);
}

TEST(loader_defaults, only_regions_is_required) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" } })");
    EXPECT_THAT(problems, ElementsAre("regions: is required"));
}

TEST(loader_defaults, auth_defaults_to_keys_and_then_needs_a_key) {
    auto problems = problems_of(R"({ "regions": [ { "name": "eastus", "endpoint": "https://e.example.com",
        "api_key": "k", "deployments": [ { "model": "m", "name": "d" } ] } ] })");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_THAT(problems[0], HasSubstr("auth.keys: at least one key is required"));
    // The message tells the user how to opt out.
    EXPECT_THAT(problems[0], HasSubstr("auth.mode to \"none\""));
}

// The example of SPEC §2, verbatim except for the TLS files, which must exist.
TEST(loader_spec_example, parses_with_environment_supplied_keys) {
    scratch_dir dir;
    const auto cert = dir.write("server.pem", "cert");
    const auto key = dir.write("server.key", "key");
    std::string text = R"({
  "listen":  { "address": "0.0.0.0", "port": 8080,
               "tls": { "cert_file": "CERT", "key_file": "KEY" } },
  "admin":   { "address": "127.0.0.1", "port": 9090 },
  "workers": 0,
  "auth": {
    "mode": "keys",
    "keys": [ { "name": "web-app", "key_env": "SPILLWAY_KEY_WEB" },
              { "name": "batch",   "key": "sk-local-only", "rpm": 600 } ]
  },
  "regions": [
    {
      "name": "eastus",
      "endpoint": "https://contoso-eastus.openai.azure.com",
      "kind": "azure",
      "api_key_env": "AOAI_KEY_EASTUS",
      "data_zone": "us",
      "priority": 0,
      "weight": 1,
      "tls_verify": true,
      "deployments": [
        { "model": "gpt-4o", "name": "gpt4o-deployment", "model_version": "2024-08-06",
          "api_version": "2024-10-21", "sku": "standard", "tpm": 80000, "rpm": 480 },
        { "model": "text-embedding-3-small", "name": "emb-small", "tpm": 120000,
          "priority": 1, "weight": 3 }
      ]
    }
  ],
  "routing": {
    "max_attempts": 3,
    "request_timeout_ms": 600000,
    "connect_timeout_ms": 3000,
    "retry_on": [408, 429, 500, 502, 503, 504],
    "max_wait_ms": 0,
    "default_max_tokens": 1024
  },
  "health": {
    "default_cooldown_ms": 10000,
    "max_cooldown_ms": 300000,
    "failure_threshold": 3,
    "open_ms": 15000,
    "latency_ewma_alpha": 0.2
  },
  "limits": {
    "max_body_bytes": 33554432,
    "header_timeout_ms": 10000,
    "idle_timeout_ms": 120000,
    "max_connections": 20000
  }
})";
    text = replaced(replaced(text, "\"CERT\"", "\"" + cert + "\""), "\"KEY\"", "\"" + key + "\"");

    auto cfg = parse_ok(text, fake_env({{"SPILLWAY_KEY_WEB", "sk-web-from-env"}, {"AOAI_KEY_EASTUS", "aoai-secret"}}));
    ASSERT_TRUE(cfg);

    ASSERT_TRUE(cfg->listen.tls.has_value());
    EXPECT_EQ(cfg->listen.tls->cert_file, cert);
    EXPECT_EQ(cfg->listen.tls->key_file, key);

    EXPECT_EQ(cfg->auth.mode, auth_mode::keys);
    ASSERT_EQ(cfg->auth.keys.size(), 2u);
    EXPECT_EQ(cfg->auth.keys[0].name, "web-app");
    EXPECT_EQ(cfg->auth.keys[0].key, "sk-web-from-env");
    EXPECT_FALSE(cfg->auth.keys[0].rpm.has_value());
    EXPECT_EQ(cfg->auth.keys[1].name, "batch");
    EXPECT_EQ(cfg->auth.keys[1].key, "sk-local-only");
    EXPECT_EQ(cfg->auth.keys[1].rpm, 600u);
    EXPECT_FALSE(cfg->auth.keys[1].tpm.has_value());

    ASSERT_EQ(cfg->regions.size(), 1u);
    const auto& reg = cfg->regions[0];
    EXPECT_EQ(reg.name, "eastus");
    EXPECT_EQ(reg.endpoint_url, "https://contoso-eastus.openai.azure.com");
    EXPECT_TRUE(reg.upstream.tls);
    EXPECT_EQ(reg.upstream.host, "contoso-eastus.openai.azure.com");
    EXPECT_EQ(reg.upstream.port, 443);
    EXPECT_EQ(reg.upstream.path_prefix, "");
    EXPECT_EQ(reg.api_key, "aoai-secret");
    EXPECT_EQ(reg.data_zone, "us");

    ASSERT_EQ(reg.deployments.size(), 2u);
    const auto& chat = reg.deployments[0];
    EXPECT_EQ(chat.model, "gpt-4o");
    EXPECT_EQ(chat.name, "gpt4o-deployment");
    EXPECT_EQ(chat.model_version, "2024-08-06");
    EXPECT_EQ(chat.tpm, 80000u);
    EXPECT_EQ(root::effective_rpm(chat), 480u);
    const auto& emb = reg.deployments[1];
    EXPECT_EQ(emb.model, "text-embedding-3-small");
    EXPECT_EQ(emb.priority, 1);
    EXPECT_DOUBLE_EQ(emb.weight, 3.0);
    EXPECT_FALSE(emb.rpm.has_value());
    EXPECT_EQ(root::effective_rpm(emb), 720u);  // 120000 / 1000 x 6
}

TEST(loader_values, every_non_default_value_is_taken) {
    auto cfg = parse_ok(R"({
      "listen": { "address": "::", "port": 0 },
      "admin": { "address": "127.0.0.1", "port": 0 },
      "workers": 4,
      "auth": { "mode": "none" },
      "regions": [ { "name": "local", "endpoint": "http://127.0.0.1:18081", "kind": "openai",
                     "tls_verify": false,
                     "deployments": [ { "model": "llama", "name": "meta/llama-3", "sku": "global-standard" },
                                      { "model": "small", "name": "small", "sku": "data-zone-standard" },
                                      { "model": "ptu", "name": "ptu", "sku": "provisioned" } ] } ],
      "routing": { "max_attempts": 1, "request_timeout_ms": 5000, "connect_timeout_ms": 100,
                   "stream_idle_timeout_ms": 700, "retry_on": [429], "max_wait_ms": 250, "default_max_tokens": 16 },
      "health": { "default_cooldown_ms": 1, "max_cooldown_ms": 1, "failure_threshold": 1, "open_ms": 2,
                  "latency_ewma_alpha": 1 },
      "limits": { "max_body_bytes": 1, "header_timeout_ms": 2, "idle_timeout_ms": 3, "max_connections": 4,
                  "max_header_bytes": 5, "upstream_idle_per_region": 6 },
      "log": { "level": "debug", "format": "json", "access_log": false }
    })");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->listen.address, "::");
    EXPECT_EQ(cfg->listen.port, 0);  // ephemeral, as tests use it
    EXPECT_EQ(cfg->admin.port, 0);
    EXPECT_EQ(cfg->workers, 4u);
    EXPECT_EQ(cfg->auth.mode, auth_mode::none);
    const auto& reg = cfg->regions.at(0);
    EXPECT_EQ(reg.kind, region_kind::openai);
    EXPECT_TRUE(reg.api_key.empty());  // an openai-kind region may need no key
    EXPECT_FALSE(reg.tls_verify);
    EXPECT_EQ(reg.deployments.at(0).name, "meta/llama-3");  // openai model ids may contain '/'
    EXPECT_EQ(reg.deployments.at(0).sku, sku::global_standard);
    EXPECT_EQ(reg.deployments.at(1).sku, sku::data_zone_standard);
    EXPECT_EQ(reg.deployments.at(2).sku, sku::provisioned);
    EXPECT_EQ(cfg->routing.max_attempts, 1);
    EXPECT_EQ(cfg->routing.request_timeout, 5000ms);
    EXPECT_EQ(cfg->routing.connect_timeout, 100ms);
    EXPECT_EQ(cfg->routing.stream_idle_timeout, 700ms);
    EXPECT_THAT(cfg->routing.retry_on, ElementsAre(429));
    EXPECT_EQ(cfg->routing.max_wait, 250ms);
    EXPECT_EQ(cfg->routing.default_max_tokens, 16u);
    EXPECT_EQ(cfg->health.default_cooldown, 1ms);
    EXPECT_EQ(cfg->health.max_cooldown, 1ms);
    EXPECT_EQ(cfg->health.failure_threshold, 1);
    EXPECT_EQ(cfg->health.open, 2ms);
    EXPECT_DOUBLE_EQ(cfg->health.latency_ewma_alpha, 1.0);
    EXPECT_EQ(cfg->limits.max_body_bytes, 1u);
    EXPECT_EQ(cfg->limits.header_timeout, 2ms);
    EXPECT_EQ(cfg->limits.idle_timeout, 3ms);
    EXPECT_EQ(cfg->limits.max_connections, 4u);
    EXPECT_EQ(cfg->limits.max_header_bytes, 5u);
    EXPECT_EQ(cfg->limits.upstream_idle_per_region, 6u);
    EXPECT_EQ(cfg->log.level, "debug");
    EXPECT_EQ(cfg->log.format, "json");
    EXPECT_FALSE(cfg->log.access_log);
}

TEST(loader_values, zero_stream_idle_timeout_leaves_only_the_deadline) {
    auto cfg = parse_ok(config_with(R"("routing": { "stream_idle_timeout_ms": 0 })"));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->routing.stream_idle_timeout, 0ms);
}

TEST(loader_values, empty_retry_on_disables_status_retries) {
    auto cfg = parse_ok(config_with(R"("routing": { "retry_on": [] })"));
    ASSERT_TRUE(cfg);
    EXPECT_TRUE(cfg->routing.retry_on.empty());
}

TEST(loader_inheritance, deployments_inherit_region_priority_and_weight_unless_set) {
    // The region's priority/weight come after its deployments in the file: order must not matter.
    auto cfg = parse_ok(R"({ "auth": { "mode": "none" }, "regions": [ {
        "name": "westus", "endpoint": "https://w.example.com", "api_key": "k",
        "deployments": [ { "model": "gpt-4o", "name": "inherits" },
                         { "model": "gpt-4o-mini", "name": "overrides", "priority": -1, "weight": 0.5 },
                         { "model": "o1", "name": "half", "weight": 7 } ],
        "priority": 2, "weight": 5 } ] })");
    ASSERT_TRUE(cfg);
    const auto& deps = cfg->regions.at(0).deployments;
    ASSERT_EQ(deps.size(), 3u);
    EXPECT_EQ(deps[0].priority, 2);
    EXPECT_DOUBLE_EQ(deps[0].weight, 5.0);
    EXPECT_EQ(deps[1].priority, -1);
    EXPECT_DOUBLE_EQ(deps[1].weight, 0.5);
    EXPECT_EQ(deps[2].priority, 2);
    EXPECT_DOUBLE_EQ(deps[2].weight, 7.0);
}

TEST(loader_rpm, rpm_is_left_unset_and_derived_by_effective_rpm) {
    auto cfg = parse_ok(config_with("", "", R"("tpm": 80000)"));
    ASSERT_TRUE(cfg);
    const auto& d = cfg->regions.at(0).deployments.at(0);
    EXPECT_FALSE(d.rpm.has_value());  // the loader does not bake the derivation in
    EXPECT_EQ(root::effective_rpm(d), 480u);
}

TEST(loader_rpm, explicit_rpm_wins_over_derivation) {
    auto cfg = parse_ok(config_with("", "", R"("tpm": 80000, "rpm": 100)"));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(root::effective_rpm(cfg->regions.at(0).deployments.at(0)), 100u);
}

TEST(loader_comments, line_and_block_comments_are_allowed) {
    auto cfg = parse_ok(R"(// spillway config
{
  /* no client keys: loopback sidecar */
  "auth": { "mode": "none" },   // explicit opt-out
  "regions": [
    { "name": "eastus",            // primary
      "endpoint": "https://e.example.com",
      "api_key": "k",
      "deployments": [ { "model": "gpt-4o", "name": "gpt-4o" } ] }
  ]
}
// trailing comment
)");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->regions.at(0).name, "eastus");
}

TEST(loader_env, api_key_env_is_resolved_through_the_injected_lookup) {
    auto cfg = parse_ok(R"({ "auth": { "mode": "none" }, "regions": [ {
        "name": "eastus", "endpoint": "https://e.example.com", "api_key_env": "AOAI_KEY_EASTUS",
        "deployments": [ { "model": "m", "name": "d" } ] } ] })",
                        fake_env({{"AOAI_KEY_EASTUS", "from-env"}}));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->regions.at(0).api_key, "from-env");
}

TEST(loader_env, unset_variable_is_a_problem_naming_it) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [ {
        "name": "eastus", "endpoint": "https://e.example.com", "api_key_env": "AOAI_KEY_EASTUS",
        "deployments": [ { "model": "m", "name": "d" } ] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[0].api_key_env: environment variable AOAI_KEY_EASTUS is not set"));
}

TEST(loader_env, empty_variable_is_a_problem_naming_it) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [ {
        "name": "eastus", "endpoint": "https://e.example.com", "api_key_env": "AOAI_KEY_EASTUS",
        "deployments": [ { "model": "m", "name": "d" } ] } ] })",
                                fake_env({{"AOAI_KEY_EASTUS", ""}}));
    EXPECT_THAT(problems, ElementsAre("regions[0].api_key_env: environment variable AOAI_KEY_EASTUS is empty"));
}

TEST(loader_env, process_env_reads_the_real_environment) {
    ::setenv("SPILLWAY_CONFIG_TEST_VAR", "value-1", 1);
    auto env = process_env();
    EXPECT_EQ(env("SPILLWAY_CONFIG_TEST_VAR"), "value-1");
    ::unsetenv("SPILLWAY_CONFIG_TEST_VAR");
    EXPECT_EQ(env("SPILLWAY_CONFIG_TEST_VAR"), std::nullopt);
}

TEST(loader_file, loads_a_file) {
    scratch_dir dir;
    auto path = dir.write("spillway.json", config_with());
    auto r = load_file(path, fake_env());
    EXPECT_TRUE(r.problems.empty());
    ASSERT_TRUE(r.config);
    EXPECT_EQ(r.config->regions.at(0).name, "eastus");
}

TEST(loader_file, missing_file_is_one_problem_naming_it) {
    scratch_dir dir;
    auto path = dir.path("nope.json");
    auto r = load_file(path, fake_env());
    EXPECT_EQ(r.config, nullptr);
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_THAT(r.problems[0].to_string(), HasSubstr(path));
    EXPECT_THAT(r.problems[0].to_string(), HasSubstr("cannot read config file"));
}

TEST(loader_file, directory_is_one_problem_naming_it) {
    scratch_dir dir;
    auto path = dir.path("");
    auto r = load_file(path, fake_env());
    EXPECT_EQ(r.config, nullptr);
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_THAT(r.problems[0].to_string(), HasSubstr(path));
}

}  // namespace
}  // namespace spillway::config::test
