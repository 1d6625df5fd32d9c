// The routing table `spillway --check-config` prints: models sorted, deployments by priority then
// region, derived rpm marked, listeners and auth summarised without secrets.
#include "config_test_support.hpp"

#include <gmock/gmock.h>

using testing::HasSubstr;
using testing::Not;

namespace spillway::config::test {
namespace {

constexpr std::string_view two_models = R"({
  "listen": { "address": "::", "port": 8443 },
  "admin": { "port": 9191 },
  "workers": 2,
  "auth": { "keys": [ { "name": "web", "key": "sk-web-secret", "rpm": 60, "tpm": 5000 },
                      { "name": "batch", "key": "sk-batch-secret" } ] },
  "regions": [
    { "name": "westus", "endpoint": "https://west.example.com/", "api_key": "west-secret", "priority": 1,
      "deployments": [ { "model": "gpt-4o", "name": "gpt4o-west", "tpm": 80000 } ] },
    { "name": "swedencentral", "endpoint": "http://sweden.example.com:8080/prefix", "kind": "openai",
      "data_zone": "eu", "weight": 2,
      "deployments": [ { "model": "gpt-4o", "name": "gpt-4o", "rpm": 100, "sku": "global-standard" },
                       { "model": "ada", "name": "ada-sweden" } ] },
    { "name": "eastus", "endpoint": "https://east.example.com", "api_key": "east-secret",
      "deployments": [ { "model": "gpt-4o", "name": "gpt4o-east", "tpm": 1000, "weight": 0.5 } ] }
  ],
  "routing": { "retry_on": [429, 503] }
})";

TEST(describe_routing_table, prints_the_whole_table) {
    auto cfg = parse_ok(two_models);
    ASSERT_TRUE(cfg);
    EXPECT_EQ(describe_routing_table(*cfg),
              "listen   [::]:8443 (http)\n"
              "admin    127.0.0.1:9191\n"
              "workers  2\n"
              "auth     keys: web (rpm 60, tpm 5000), batch\n"
              "routing  max_attempts 3, request timeout 600000 ms, retry on 429 503\n"
              "\n"
              "model ada\n"
              "  aliases: ada-sweden\n"
              "  PRIORITY  REGION         DEPLOYMENT  KIND    SKU       WEIGHT  TPM  RPM  DATA_ZONE  ENDPOINT\n"
              "  0         swedencentral  ada-sweden  openai  standard  2       -    -    eu         http://sweden.example.com:8080/prefix\n"
              "\n"
              "model gpt-4o\n"
              "  aliases: gpt4o-east, gpt4o-west\n"
              "  PRIORITY  REGION         DEPLOYMENT  KIND    SKU              WEIGHT  TPM    RPM   DATA_ZONE  ENDPOINT\n"
              "  0         eastus         gpt4o-east  azure   standard         0.5     1000   6*    -          https://east.example.com\n"
              "  0         swedencentral  gpt-4o      openai  global-standard  2       -      100   eu         http://sweden.example.com:8080/prefix\n"
              "  1         westus         gpt4o-west  azure   standard         1       80000  480*  -          https://west.example.com\n"
              "\n"
              "* rpm derived from tpm (tpm / 1000 x 6, as Azure does)\n");
}

TEST(describe_routing_table, never_prints_keys) {
    auto cfg = parse_ok(two_models);
    ASSERT_TRUE(cfg);
    auto table = describe_routing_table(*cfg);
    for (const char* secret : {"sk-web-secret", "sk-batch-secret", "west-secret", "east-secret"})
        EXPECT_THAT(table, Not(HasSubstr(secret)));
}

TEST(describe_routing_table, shows_tls_and_auth_none) {
    scratch_dir dir;
    auto cert = dir.write("c.pem", "c");
    auto key = dir.write("k.pem", "k");
    auto cfg = parse_ok(config_with(R"("listen": { "port": 443, "tls": { "cert_file": ")" + cert +
                                    R"(", "key_file": ")" + key + R"(" } })"));
    ASSERT_TRUE(cfg);
    auto table = describe_routing_table(*cfg);
    EXPECT_THAT(table, HasSubstr("listen   0.0.0.0:443 (https)\n"));
    EXPECT_THAT(table, HasSubstr("auth     none (requests need no key)\n"));
    EXPECT_THAT(table, HasSubstr("workers  one per core\n"));
    // Nothing is derived here, so there is no footnote.
    EXPECT_THAT(table, Not(HasSubstr("derived")));
}

}  // namespace
}  // namespace spillway::config::test
