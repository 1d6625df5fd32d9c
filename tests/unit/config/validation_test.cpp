// What an invalid config reports: every problem at once, each with its JSON path — unknown keys,
// wrong types, out-of-range values, missing or conflicting secrets, name clashes, bad JSON.
#include "config_test_support.hpp"

#include <gmock/gmock.h>

using testing::Contains;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::StartsWith;
using testing::UnorderedElementsAre;

namespace spillway::config::test {
namespace {

TEST(validation_all_problems, four_mistakes_give_four_problems_with_exact_paths) {
    auto problems = problems_of(R"({
      "auth": { "mode": "none" },
      "listen": { "prot": 8080 },
      "regions": [
        { "name": "eastus", "endpoint": "https://e.example.com", "api_key_env": "AOAI_KEY_EASTUS",
          "deployments": [ { "model": "gpt-4o", "name": "gpt4o-eastus", "tpm": 1000 } ] },
        { "name": "westus", "endpoint": "https://w.example.com", "api_key": "k",
          "deployments": [ { "model": "gpt-4o", "name": "gpt4o-westus", "tpm": 0 } ] }
      ],
      "routing": { "max_attempts": "3" }
    })");
    EXPECT_THAT(problems, UnorderedElementsAre("listen.prot: unknown key (did you mean \"port\"?)",
                                               "regions[0].api_key_env: environment variable AOAI_KEY_EASTUS is not set",
                                               "regions[1].deployments[0].tpm: must be > 0",
                                               "routing.max_attempts: must be an integer"));
}

TEST(validation_all_problems, problems_in_many_regions_and_deployments_are_all_listed) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k",
          "deployments": [ { "model": "m", "name": "d1", "weight": 0 }, { "model": "m", "name": "d2", "rpm": -5 } ] },
        { "name": "b", "endpoint": "https://b.example.com", "api_key": "k", "weight": -1,
          "deployments": [ { "model": "", "name": "d3" }, { "name": "d4" } ] } ] })");
    EXPECT_THAT(problems, UnorderedElementsAre("regions[0].deployments[0].weight: must be > 0",
                                               "regions[0].deployments[1].rpm: must be > 0",
                                               "regions[1].weight: must be > 0",
                                               "regions[1].deployments[0].model: must not be empty",
                                               "regions[1].deployments[1].model: is required"));
}

TEST(validation_unknown_keys, are_reported_at_every_level) {
    auto problems = problems_of(R"({
      "listn": {},
      "auth": { "mode": "keys", "keys": [ { "name": "a", "key": "sk-a", "nmae": "x" } ], "extra": 1 },
      "admin": { "address": "127.0.0.1", "tls": { "cert_file": "a", "key_file": "b" } },
      "regions": [ { "name": "eastus", "endpoint": "https://e.example.com", "api_key": "k",
                     "deploymnets": [],
                     "deployments": [ { "model": "m", "name": "d", "tmp": 1000 } ] } ],
      "routing": { "retry": [429] },
      "health": { "open": 10 },
      "limits": { "max_body": 1 },
      "log": { "levle": "info" }
    })");
    EXPECT_THAT(problems, UnorderedElementsAre(
                              "listn: unknown key (did you mean \"listen\"?)",
                              "auth.keys[0].nmae: unknown key (did you mean \"name\"?)",
                              "auth.extra: unknown key",
                              "admin.tls: unknown key",  // the admin port has no TLS
                              "regions[0].deploymnets: unknown key (did you mean \"deployments\"?)",
                              "regions[0].deployments[0].tmp: unknown key (did you mean \"tpm\"?)",
                              "routing.retry: unknown key (did you mean \"retry_on\"?)",
                              "health.open: unknown key (did you mean \"open_ms\"?)",
                              "limits.max_body: unknown key (did you mean \"max_body_bytes\"?)",
                              "log.levle: unknown key (did you mean \"level\"?)"));
}

TEST(validation_unknown_keys, a_misspelled_required_key_reports_both) {
    auto problems = problems_of(replaced(config_with(), "\"deployments\"", "\"deploymnets\""));
    EXPECT_THAT(problems, UnorderedElementsAre("regions[0].deploymnets: unknown key (did you mean \"deployments\"?)",
                                               "regions[0].deployments: is required"));
}

TEST(validation_types, wrong_types_name_the_expected_type) {
    auto problems = problems_of(R"({
      "listen": { "address": 1, "port": "8080" },
      "workers": 1.5,
      "auth": "none",
      "regions": [ { "name": 7, "endpoint": "https://e.example.com", "api_key": "k", "tls_verify": "yes",
                     "priority": 0.5, "weight": "1", "data_zone": [],
                     "deployments": [ { "model": "m", "name": "d", "sku": 1, "tpm": 1e5 } ] } ],
      "routing": { "retry_on": 429 },
      "health": { "latency_ewma_alpha": "0.2" },
      "log": { "access_log": 1 }
    })");
    EXPECT_THAT(problems, UnorderedElementsAre(
                              "listen.address: must be a string", "listen.port: must be an integer",
                              "workers: must be an integer", "auth: must be an object",
                              "regions[0].name: must be a string", "regions[0].tls_verify: must be true or false",
                              "regions[0].priority: must be an integer", "regions[0].weight: must be a number",
                              "regions[0].data_zone: must be a string",
                              "regions[0].deployments[0].sku: must be one of \"standard\" | \"provisioned\" | "
                              "\"global-standard\" | \"data-zone-standard\"",
                              "regions[0].deployments[0].tpm: must be an integer",
                              "routing.retry_on: must be an array",
                              "health.latency_ewma_alpha: must be a number", "log.access_log: must be true or false"));
}

TEST(validation_types, top_level_must_be_an_object) {
    EXPECT_THAT(problems_of("[]"), ElementsAre("the config must be a JSON object"));
}

TEST(validation_types, regions_must_be_a_non_empty_array_of_objects) {
    EXPECT_THAT(problems_of(R"({ "auth": { "mode": "none" }, "regions": {} })"), ElementsAre("regions: must be an array"));
    EXPECT_THAT(problems_of(R"({ "auth": { "mode": "none" }, "regions": [] })"),
                ElementsAre("regions: must contain at least one region"));
    EXPECT_THAT(problems_of(R"({ "auth": { "mode": "none" }, "regions": [ "eastus" ] })"),
                ElementsAre("regions[0]: must be an object"));
}

TEST(validation_enums, bad_enum_values_list_the_choices) {
    auto problems = problems_of(
        config_with(R"("log": { "level": "verbose", "format": "xml" })", R"("kind": "azur")", R"("sku": "ptu")"));
    EXPECT_THAT(problems, UnorderedElementsAre(
                              "regions[0].kind: must be one of \"azure\" | \"openai\" (got \"azur\")",
                              "regions[0].deployments[0].sku: must be one of \"standard\" | \"provisioned\" | "
                              "\"global-standard\" | \"data-zone-standard\" (got \"ptu\")",
                              "log.level: must be one of \"trace\" | \"debug\" | \"info\" | \"warn\" | \"error\" | "
                              "\"off\" (got \"verbose\")",
                              "log.format: must be one of \"text\" | \"json\" (got \"xml\")"));
}

TEST(validation_region, name_endpoint_and_deployments_are_required) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [ { "api_key": "k" } ] })");
    EXPECT_THAT(problems, UnorderedElementsAre("regions[0].name: is required", "regions[0].endpoint: is required",
                                               "regions[0].deployments: is required"));
}

TEST(validation_region, deployments_must_not_be_empty) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k", "deployments": [] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[0].deployments: must contain at least one deployment"));
}

TEST(validation_region, names_are_unique) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "eastus", "endpoint": "https://a.example.com", "api_key": "k", "deployments": [ { "model": "m", "name": "d" } ] },
        { "name": "eastus", "endpoint": "https://b.example.com", "api_key": "k", "deployments": [ { "model": "m", "name": "d" } ] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[1].name: duplicate region name \"eastus\" (also regions[0])"));
}

TEST(validation_region, azure_region_needs_a_key_openai_region_does_not) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "deployments": [ { "model": "m", "name": "d" } ] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[0]: an azure region needs api_key_env (or api_key)"));

    auto cfg = parse_ok(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "http://127.0.0.1:8000/v1", "kind": "openai", "deployments": [ { "model": "m", "name": "d" } ] } ] })");
    ASSERT_TRUE(cfg);
    EXPECT_TRUE(cfg->regions.at(0).api_key.empty());
}

TEST(validation_region, api_key_env_and_api_key_together_is_an_error) {
    auto problems = problems_of(config_with("", R"("api_key_env": "AOAI_KEY")"), fake_env({{"AOAI_KEY", "x"}}));
    EXPECT_THAT(problems, ElementsAre("regions[0]: api_key_env and api_key are both set; keep one (api_key_env is preferred)"));
}

TEST(validation_region, api_key_env_must_be_a_variable_name) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key_env": "",
          "deployments": [ { "model": "m", "name": "d" } ] },
        { "name": "b", "endpoint": "https://b.example.com", "api_key_env": "AOAI KEY",
          "deployments": [ { "model": "m", "name": "e" } ] } ] })");
    EXPECT_THAT(problems,
                UnorderedElementsAre("regions[0].api_key_env: must not be empty",
                                     "regions[1].api_key_env: must be the name of an environment variable (letters, "
                                     "digits, '_'), not the key itself"));
}

TEST(validation_region, ca_file_must_be_readable) {
    scratch_dir dir;
    auto good = dir.write("ca.pem", "ca");
    auto cfg = parse_ok(config_with("", R"("ca_file": ")" + good + "\""));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->regions.at(0).ca_file, good);

    auto missing = dir.path("missing-ca.pem");
    EXPECT_THAT(problems_of(config_with("", R"("ca_file": ")" + missing + "\"")),
                ElementsAre("regions[0].ca_file: cannot read file \"" + missing + "\""));
}

TEST(validation_deployment, azure_deployment_name_must_be_url_safe) {
    EXPECT_THAT(problems_of(replaced(config_with(), "gpt4o-eastus", "gpt/4o")),
                ElementsAre(StartsWith("regions[0].deployments[0].name: an azure deployment name may only contain")));
}

TEST(validation_deployment, api_version_must_be_url_safe_and_non_empty) {
    EXPECT_THAT(problems_of(config_with("", "", R"("api_version": "2024-10-21&x=1")")),
                ElementsAre("regions[0].deployments[0].api_version: must look like 2024-10-21 or 2025-01-01-preview"));
    EXPECT_THAT(problems_of(config_with("", "", R"("api_version": "")")),
                ElementsAre("regions[0].deployments[0].api_version: must not be empty"));
}

TEST(validation_deployment, quotas_are_bounded) {
    EXPECT_THAT(problems_of(config_with("", "", R"("tpm": 1000000000000000)")),
                ElementsAre("regions[0].deployments[0].tpm: must be <= 1000000000000"));
    EXPECT_THAT(problems_of(config_with("", "", R"("rpm": 18446744073709551615)")),
                ElementsAre("regions[0].deployments[0].rpm: must be <= 1000000000000"));
}

TEST(validation_deployment, names_are_unique_within_a_region) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k",
          "deployments": [ { "model": "gpt-4o", "name": "d" }, { "model": "gpt-4o", "name": "d" } ] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[0].deployments[1].name: duplicate deployment name \"d\" in this "
                                      "region (also regions[0].deployments[0])"));
}

TEST(validation_aliases, the_same_deployment_name_for_the_same_model_in_two_regions_is_fine) {
    auto cfg = parse_ok(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k", "deployments": [ { "model": "gpt-4o", "name": "chat" } ] },
        { "name": "b", "endpoint": "https://b.example.com", "api_key": "k", "deployments": [ { "model": "gpt-4o", "name": "chat" } ] } ] })");
    EXPECT_TRUE(cfg);
}

TEST(validation_aliases, one_alias_must_not_map_to_two_models) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k", "deployments": [ { "model": "gpt-4o", "name": "chat" } ] },
        { "name": "b", "endpoint": "https://b.example.com", "api_key": "k", "deployments": [ { "model": "gpt-4o-mini", "name": "chat" } ] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[1].deployments[0].name: deployment name \"chat\" already stands for "
                                      "model \"gpt-4o\" (regions[0].deployments[0]); one name must route to one model"));
}

TEST(validation_aliases, a_deployment_name_must_not_be_another_models_name) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k",
          "deployments": [ { "model": "gpt-4o", "name": "gpt-4o-mini" }, { "model": "gpt-4o-mini", "name": "mini" } ] } ] })");
    EXPECT_THAT(problems, ElementsAre("regions[0].deployments[0].name: deployment name \"gpt-4o-mini\" is also the "
                                      "name of another model; a request for it would be ambiguous"));
}

TEST(validation_auth, keys_need_a_name_and_exactly_one_secret_source) {
    auto problems = problems_of(config_with(R"("auth": { "keys": [
        { "key": "sk-1" },
        { "name": "both", "key": "sk-2", "key_env": "K2" },
        { "name": "neither" },
        { "name": "ok", "key": "sk-4" } ] })"),
                                fake_env({{"K2", "sk-2-env"}}));
    EXPECT_THAT(problems, UnorderedElementsAre("auth.keys[0].name: is required",
                                               "auth.keys[1]: key_env and key are both set; keep one (key_env is preferred)",
                                               "auth.keys[2]: needs key_env (or key)"));
}

TEST(validation_auth, key_names_and_values_are_unique) {
    auto problems = problems_of(config_with(R"("auth": { "keys": [
        { "name": "web", "key": "sk-same" },
        { "name": "web", "key": "sk-other" },
        { "name": "batch", "key_env": "BATCH_KEY" } ] })"),
                                fake_env({{"BATCH_KEY", "sk-same"}}));
    EXPECT_THAT(problems,
                UnorderedElementsAre("auth.keys[1].name: duplicate key name \"web\" (also auth.keys[0])",
                                     "auth.keys[2].key_env: same key as auth.keys[0]; every client needs its own key"));
}

TEST(validation_auth, key_env_unset_names_the_variable_and_limits_are_positive) {
    auto problems = problems_of(config_with(R"("auth": { "keys": [
        { "name": "web", "key_env": "SPILLWAY_KEY_WEB", "rpm": 0, "tpm": 4294967296 } ] })"));
    EXPECT_THAT(problems, UnorderedElementsAre("auth.keys[0].key_env: environment variable SPILLWAY_KEY_WEB is not set",
                                               "auth.keys[0].rpm: must be > 0",
                                               "auth.keys[0].tpm: must be <= 4294967295"));
}

TEST(validation_auth, keys_with_limits_are_read) {
    auto cfg = parse_ok(config_with(R"("auth": { "mode": "keys", "keys": [
        { "name": "web", "key_env": "SPILLWAY_KEY_WEB", "rpm": 60, "tpm": 10000 } ] })"),
                        fake_env({{"SPILLWAY_KEY_WEB", "sk-web"}}));
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->auth.keys.size(), 1u);
    EXPECT_EQ(cfg->auth.keys[0].key, "sk-web");
    EXPECT_EQ(cfg->auth.keys[0].rpm, 60u);
    EXPECT_EQ(cfg->auth.keys[0].tpm, 10000u);
}

TEST(validation_auth, mode_keys_with_an_empty_key_list_is_an_error) {
    auto problems = problems_of(config_with(R"("auth": { "mode": "keys", "keys": [] })"));
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_THAT(problems[0], StartsWith("auth.keys: at least one key is required"));
}

TEST(validation_listeners, ports_addresses_workers) {
    auto problems = problems_of(config_with(R"("listen": { "address": "localhost", "port": 70000 },
        "admin": { "address": "", "port": -1 }, "workers": 257)"));
    EXPECT_THAT(problems, UnorderedElementsAre(
                              "listen.address: must be an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::)",
                              "listen.port: must be <= 65535", "admin.address: must not be empty",
                              "admin.port: must be >= 0", "workers: must be <= 256"));
}

TEST(validation_listeners, admin_must_not_share_the_listen_port) {
    EXPECT_THAT(problems_of(config_with(R"("listen": { "port": 9000 }, "admin": { "port": 9000 })")),
                ElementsAre("admin.port: must differ from listen.port (both would bind 9000)"));
    // Different specific addresses may share a port; port 0 is always ephemeral.
    EXPECT_TRUE(parse_ok(config_with(R"("listen": { "address": "127.0.0.2", "port": 9000 },
                                         "admin": { "address": "127.0.0.1", "port": 9000 })")));
    EXPECT_TRUE(parse_ok(config_with(R"("listen": { "port": 0 }, "admin": { "port": 0 })")));
}

TEST(validation_listeners, tls_needs_both_files_and_they_must_be_readable) {
    scratch_dir dir;
    auto cert = dir.write("cert.pem", "c");
    auto missing = dir.path("missing.key");
    EXPECT_THAT(problems_of(config_with(R"("listen": { "tls": { "cert_file": ")" + cert + R"(" } })")),
                ElementsAre("listen.tls.key_file: is required"));
    EXPECT_THAT(problems_of(config_with(R"("listen": { "tls": { "cert_file": ")" + cert + R"(", "key_file": ")" +
                                        missing + R"(" } })")),
                ElementsAre("listen.tls.key_file: cannot read file \"" + missing + "\""));
}

TEST(validation_sections, routing_bounds) {
    auto problems = problems_of(config_with(R"("routing": { "max_attempts": 0, "request_timeout_ms": 0,
        "connect_timeout_ms": -3, "stream_idle_timeout_ms": -1, "retry_on": [429, 700, "503", 99], "max_wait_ms": -1,
        "default_max_tokens": 0 })"));
    EXPECT_THAT(problems, UnorderedElementsAre("routing.max_attempts: must be > 0",
                                               "routing.request_timeout_ms: must be > 0",
                                               "routing.connect_timeout_ms: must be > 0",
                                               "routing.stream_idle_timeout_ms: must be >= 0",
                                               "routing.retry_on[1]: must be <= 599",
                                               "routing.retry_on[2]: must be an integer",
                                               "routing.retry_on[3]: must be >= 100",
                                               "routing.max_wait_ms: must be >= 0",
                                               "routing.default_max_tokens: must be > 0"));
}

TEST(validation_sections, durations_are_capped_at_a_day) {
    EXPECT_THAT(problems_of(config_with(R"("routing": { "request_timeout_ms": 86400001 })")),
                ElementsAre("routing.request_timeout_ms: must be <= 86400000"));
}

TEST(validation_sections, health_bounds) {
    auto problems = problems_of(config_with(R"("health": { "default_cooldown_ms": 5000, "max_cooldown_ms": 1000,
        "failure_threshold": 0, "open_ms": 0, "latency_ewma_alpha": 0 })"));
    EXPECT_THAT(problems, UnorderedElementsAre("health.max_cooldown_ms: must be >= default_cooldown_ms (5000)",
                                               "health.failure_threshold: must be > 0", "health.open_ms: must be > 0",
                                               "health.latency_ewma_alpha: must be > 0 and <= 1"));
    EXPECT_THAT(problems_of(config_with(R"("health": { "latency_ewma_alpha": 1.5 })")),
                ElementsAre("health.latency_ewma_alpha: must be > 0 and <= 1"));
    // A default above the (default) maximum is reported on the field the user wrote.
    EXPECT_THAT(problems_of(config_with(R"("health": { "default_cooldown_ms": 400000 })")),
                ElementsAre("health.default_cooldown_ms: must be <= max_cooldown_ms (300000)"));
}

TEST(validation_sections, limits_must_be_positive) {
    auto problems = problems_of(config_with(R"("limits": { "max_body_bytes": 0, "header_timeout_ms": 0,
        "idle_timeout_ms": 0, "max_connections": 0, "max_header_bytes": 0, "upstream_idle_per_region": 0 })"));
    EXPECT_THAT(problems, UnorderedElementsAre(
                              "limits.max_body_bytes: must be > 0", "limits.header_timeout_ms: must be > 0",
                              "limits.idle_timeout_ms: must be > 0", "limits.max_connections: must be > 0",
                              "limits.max_header_bytes: must be > 0", "limits.upstream_idle_per_region: must be > 0"));
}

TEST(validation_sections, max_header_bytes_is_at_most_16_mib) {
    EXPECT_THAT(problems_of(config_with(R"("limits": { "max_header_bytes": 16777217 })")),
                ElementsAre("limits.max_header_bytes: must be <= 16777216"));
    EXPECT_EQ(parse_ok(config_with(R"("limits": { "max_header_bytes": 16777216 })"))->limits.max_header_bytes, 16777216u);
}

TEST(validation_json, syntax_error_is_one_problem_with_its_position) {
    auto r = parse("{\n  \"regions\": [\n    }\n", fake_env());
    EXPECT_EQ(r.config, nullptr);
    ASSERT_EQ(r.problems.size(), 1u);
    EXPECT_EQ(r.problems[0].path, "");
    EXPECT_THAT(r.problems[0].message, StartsWith("not valid JSON: line 3, column 5: syntax error"));
}

TEST(validation_json, empty_text_is_a_syntax_error) {
    auto problems = problems_of("");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_THAT(problems[0], StartsWith("not valid JSON"));
}

TEST(validation_json, duplicate_keys_are_reported_with_their_path) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "k",
          "deployments": [ { "model": "m", "name": "d" }, { "model": "m", "name": "e", "tpm": 1000, "tpm": 2000 } ] },
        { "name": "b", "name": "c", "endpoint": "https://b.example.com", "api_key": "k",
          "deployments": [ { "model": "m", "name": "d" } ] } ],
      "auth": { "mode": "none" } })");
    EXPECT_THAT(problems, UnorderedElementsAre("regions[0].deployments[1].tpm: duplicate key", "regions[1].name: duplicate key",
                                               "auth: duplicate key"));
}

}  // namespace
}  // namespace spillway::config::test
