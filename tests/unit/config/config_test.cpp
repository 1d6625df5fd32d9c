// The small pieces of config.hpp: enum names as written in JSON, and rpm derivation.
#include "config/config.hpp"

#include <gtest/gtest.h>

namespace spillway::config {
namespace {

TEST(config_names, region_kinds_are_spelled_as_in_json) {
    EXPECT_EQ(to_string(region_kind::azure), "azure");
    EXPECT_EQ(to_string(region_kind::openai), "openai");
}

TEST(config_names, skus_are_spelled_as_in_json) {
    EXPECT_EQ(to_string(sku::standard), "standard");
    EXPECT_EQ(to_string(sku::provisioned), "provisioned");
    EXPECT_EQ(to_string(sku::global_standard), "global-standard");
    EXPECT_EQ(to_string(sku::data_zone_standard), "data-zone-standard");
}

TEST(config_effective_rpm, derives_six_requests_per_thousand_tokens_like_azure) {
    deployment d;
    EXPECT_FALSE(root::effective_rpm(d).has_value());  // no quota known
    d.tpm = 80000;
    EXPECT_EQ(root::effective_rpm(d), 480u);
    d.tpm = 1000;
    EXPECT_EQ(root::effective_rpm(d), 6u);
    d.tpm = 2500;  // Azure counts whole thousands
    EXPECT_EQ(root::effective_rpm(d), 12u);
}

TEST(config_effective_rpm, never_derives_zero) {
    deployment d;
    d.tpm = 999;
    EXPECT_EQ(root::effective_rpm(d), 1u);
}

TEST(config_effective_rpm, explicit_rpm_wins) {
    deployment d;
    d.tpm = 80000;
    d.rpm = 7;
    EXPECT_EQ(root::effective_rpm(d), 7u);
}

}  // namespace
}  // namespace spillway::config
