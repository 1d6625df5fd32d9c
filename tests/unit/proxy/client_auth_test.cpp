// Unit tests for proxy/client_auth: where the client's key is found, and which keys pass.
#include "proxy/client_auth.hpp"

#include <gtest/gtest.h>

#include <string>

namespace spillway::proxy {
namespace {

config::auth keys_auth() {
    config::auth a;
    a.mode = config::auth_mode::keys;
    a.keys.push_back(config::client_key{"web-app", "k-web-0123456789", std::nullopt, std::nullopt});
    a.keys.push_back(config::client_key{"batch", "sk-local-only", 600u, std::nullopt});
    a.keys.push_back(config::client_key{"short", "x", std::nullopt, 1000u});
    return a;
}

TEST(PresentedKey, ApiKeyHeader) {
    EXPECT_EQ(client_auth::presented_key("k1", ""), "k1");
}

TEST(PresentedKey, ApiKeyIsPreferredOverAuthorization) {
    EXPECT_EQ(client_auth::presented_key("k1", "Bearer k2"), "k1");
}

TEST(PresentedKey, BearerTokenWithAnyCaseOfTheScheme) {
    EXPECT_EQ(client_auth::presented_key("", "Bearer k2"), "k2");
    EXPECT_EQ(client_auth::presented_key("", "bearer k2"), "k2");
    EXPECT_EQ(client_auth::presented_key("", "BEARER k2"), "k2");
    EXPECT_EQ(client_auth::presented_key("", "bEaReR k2"), "k2");
    EXPECT_EQ(client_auth::presented_key("", "Bearer sk-proj-abc.def_ghi=="), "sk-proj-abc.def_ghi==");
}

TEST(PresentedKey, OtherSchemesAndMalformedAuthorizationYieldNothing) {
    for (std::string_view auth : {"Basic dXNlcjpwYXNz", "Token k2", "Digest k2", "k2", "Bearer", "Bearer ",
                                  "Bearerk2", "Bearer\tk2", "Bear k2", "XBearer k2", ""}) {
        EXPECT_TRUE(client_auth::presented_key("", auth).empty()) << "[" << auth << "]";
    }
}

TEST(PresentedKey, NeitherHeader) {
    EXPECT_TRUE(client_auth::presented_key("", "").empty());
}

TEST(ClientAuthCheck, ModeNoneAllowsEverything) {
    config::auth a;
    a.mode = config::auth_mode::none;
    client_auth auth(a);
    for (std::string_view key : {"", "anything", "sk-local-only"}) {
        auto v = auth.check(key);
        EXPECT_TRUE(v.allowed) << key;
        EXPECT_FALSE(v.key_index.has_value()) << key;
    }
}

TEST(ClientAuthCheck, ModeNoneIgnoresConfiguredKeys) {
    config::auth a = keys_auth();
    a.mode = config::auth_mode::none;
    client_auth auth(a);
    auto v = auth.check("wrong");
    EXPECT_TRUE(v.allowed);
    EXPECT_FALSE(v.key_index.has_value());
}

TEST(ClientAuthCheck, RightKeyIsAllowedWithItsIndex) {
    client_auth auth(keys_auth());
    auto web = auth.check("k-web-0123456789");
    EXPECT_TRUE(web.allowed);
    EXPECT_EQ(web.key_index, std::optional<std::size_t>(0));
    auto batch = auth.check("sk-local-only");
    EXPECT_TRUE(batch.allowed);
    EXPECT_EQ(batch.key_index, std::optional<std::size_t>(1));
    auto shrt = auth.check("x");
    EXPECT_TRUE(shrt.allowed);
    EXPECT_EQ(shrt.key_index, std::optional<std::size_t>(2));
}

TEST(ClientAuthCheck, WrongKeysAreRefused) {
    client_auth auth(keys_auth());
    for (std::string_view key : {"", "wrong", "sk-local-onl", "sk-local", "s", "sk-local-only ", " sk-local-only",
                                 "sk-local-only2", "SK-LOCAL-ONLY", "sk-local-onlyk-web-0123456789", "xx", "X",
                                 "Bearer sk-local-only"}) {
        auto v = auth.check(key);
        EXPECT_FALSE(v.allowed) << "[" << key << "]";
        EXPECT_FALSE(v.key_index.has_value()) << "[" << key << "]";
    }
}

TEST(ClientAuthCheck, KeyWithEmbeddedNulIsComparedWhole) {
    client_auth auth(keys_auth());
    EXPECT_FALSE(auth.check(std::string_view("x\0tail", 6)).allowed);
    EXPECT_FALSE(auth.check(std::string_view("sk-local-only\0", 14)).allowed);
}

TEST(ClientAuthCheck, KeysModeWithoutKeysRefusesEverything) {
    config::auth a;
    a.mode = config::auth_mode::keys;
    client_auth auth(a);
    EXPECT_FALSE(auth.check("").allowed);
    EXPECT_FALSE(auth.check("anything").allowed);
}

TEST(ClientAuthCheck, EndToEndWithHeaders) {
    client_auth auth(keys_auth());
    EXPECT_TRUE(auth.check(client_auth::presented_key("", "Bearer sk-local-only")).allowed);
    EXPECT_TRUE(auth.check(client_auth::presented_key("sk-local-only", "Bearer wrong")).allowed);
    EXPECT_FALSE(auth.check(client_auth::presented_key("wrong", "Bearer sk-local-only")).allowed)
        << "api-key wins even when it is the wrong one";
    EXPECT_FALSE(auth.check(client_auth::presented_key("", "Basic sk-local-only")).allowed);
}

}  // namespace
}  // namespace spillway::proxy
