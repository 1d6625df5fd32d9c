// Secrets (region keys, client keys, the values of *_env variables) must never reach a problem
// message or the --check-config output, whatever the user got wrong around them.
#include "config_test_support.hpp"

#include <gmock/gmock.h>

using testing::HasSubstr;
using testing::Not;

namespace spillway::config::test {
namespace {

const std::vector<std::string> secrets = {
    "sk-literal-region-secret", "env-region-secret",     "sk-pasted-secret-0123456789abcdef",
    "a1b2c3d4e5f60718293a4b5c6d7e8f90", "sk-client-secret-dup", "env-client-secret",
    "sk-dup-first",             "sk-dup-second",         "sk-client-both",
};

env_lookup secret_env() {
    return fake_env({{"AOAI_A", "env-region-secret"}, {"CLIENT_KEY", "env-client-secret"}});
}

void expect_no_secret(const std::vector<std::string>& texts) {
    for (const auto& text : texts)
        for (const auto& s : secrets) EXPECT_THAT(text, Not(HasSubstr(s))) << "secret leaked into: " << text;
}

TEST(secrets, never_appear_in_problem_messages) {
    auto problems = problems_of(R"({
      "auth": { "keys": [
        { "name": "a", "key": "sk-client-secret-dup" },
        { "name": "b", "key": "sk-client-secret-dup" },
        { "name": "c", "key_env": "CLIENT_KEY", "key": "sk-client-both" },
        { "name": "d", "key_env": "sk-client-secret-dup" } ] },
      "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "sk-literal-region-secret",
          "api_key_env": "AOAI_A", "deployments": [ { "model": "m", "name": "d" } ] },
        { "name": "b", "endpoint": "https://b.example.com", "api_key_env": "sk-pasted-secret-0123456789abcdef",
          "deployments": [ { "model": "m", "name": "d" } ] },
        { "name": "c", "endpoint": "https://c.example.com", "api_key_env": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
          "deployments": [ { "model": "m", "name": "d" } ] },
        { "name": "d", "endpoint": "https://d.example.com", "api_key": "sk-dup-first", "api_key": "sk-dup-second",
          "deployments": [ { "model": "m", "name": "d" } ] }
      ] })",
                                secret_env());
    // Every mistake is reported...
    EXPECT_EQ(problems.size(), 7u) << testing::PrintToString(problems);
    // ...and none of them quotes a secret.
    expect_no_secret(problems);
}

TEST(secrets, a_key_pasted_into_api_key_env_is_not_echoed) {
    auto problems = problems_of(R"({ "auth": { "mode": "none" }, "regions": [
        { "name": "c", "endpoint": "https://c.example.com", "api_key_env": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
          "deployments": [ { "model": "m", "name": "d" } ] } ] })");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_THAT(problems[0], HasSubstr("regions[0].api_key_env: must be the name of an environment variable"));
    expect_no_secret(problems);
}

TEST(secrets, never_appear_in_json_syntax_errors) {
    // The parser's own message quotes the text it choked on; spillway strips that excerpt.
    const std::string broken[] = {
        "{ \"regions\": [ { \"api_key\": \"sk-literal-region-secret",             // unterminated
        "{ \"regions\": [ { \"api_key\": \"sk-literal-region-secret\n\" } ] }",  // raw newline in a string
        "{ \"auth\": { \"keys\": [ { \"key\": \"sk-client-both\\q\" } ] } }",    // bad escape
    };
    for (const auto& text : broken) {
        SCOPED_TRACE(text);
        auto problems = problems_of(text);
        ASSERT_EQ(problems.size(), 1u);
        EXPECT_THAT(problems[0], HasSubstr("not valid JSON: line "));
        expect_no_secret(problems);
    }
}

TEST(secrets, never_appear_in_the_routing_table) {
    auto cfg = parse_ok(R"({
      "auth": { "keys": [ { "name": "web", "key": "sk-client-secret-dup", "rpm": 60 },
                          { "name": "batch", "key_env": "CLIENT_KEY" } ] },
      "regions": [
        { "name": "a", "endpoint": "https://a.example.com", "api_key": "sk-literal-region-secret",
          "deployments": [ { "model": "m", "name": "d" } ] },
        { "name": "b", "endpoint": "https://b.example.com", "api_key_env": "AOAI_A",
          "deployments": [ { "model": "m", "name": "d" } ] } ] })",
                        secret_env());
    ASSERT_TRUE(cfg);
    auto table = describe_routing_table(*cfg);
    expect_no_secret({table});
    // Key names are shown, so the user can still tell which clients are configured.
    EXPECT_THAT(table, HasSubstr("web (rpm 60)"));
    EXPECT_THAT(table, HasSubstr("batch"));
}

}  // namespace
}  // namespace spillway::config::test
