// Unit tests for http/field_name: folding case by setting one bit is exact for every byte a
// parsed head can hold, against every byte a known lowercase name can hold.
#include "http/field_name.hpp"

#include <gtest/gtest.h>

#include <string>

namespace spillway::http {
namespace {

bool may_be_in_a_head(int c) { return c == '\t' || c >= 0x20; }  // no other control character passes the parsers

TEST(FieldName, OneBitFoldsCaseExactlyForEveryByteOfAHead) {
    const std::string known = "abcdefghijklmnopqrstuvwxyz0123456789-";
    for (char w : known) {
        for (int c = 0; c < 256; ++c) {
            if (!may_be_in_a_head(c)) continue;
            const char received = static_cast<char>(c);
            const bool same_letter = received == w || (c >= 'A' && c <= 'Z' && c + ('a' - 'A') == w);
            EXPECT_EQ(name_is(std::string_view(&received, 1), std::string_view(&w, 1)), same_letter)
                << "byte " << c << " against '" << w << "'";
        }
    }
}

TEST(FieldName, ComparesWholeNamesOfAnyLength) {
    EXPECT_TRUE(name_is("TE", "te"));
    EXPECT_TRUE(name_is("Api-Key", "api-key"));
    EXPECT_TRUE(name_is("Retry-After", "retry-after"));  // a word and three more bytes
    EXPECT_TRUE(name_is("X-RateLimit-Remaining-Requests", "x-ratelimit-remaining-requests"));
    EXPECT_FALSE(name_is("X-RateLimit-Remaining-Requestz", "x-ratelimit-remaining-requests"));
    EXPECT_FALSE(name_is("Y-RateLimit-Remaining-Requests", "x-ratelimit-remaining-requests"));
    EXPECT_FALSE(name_is("x-ratelimit-remaining-tokens", "x-ratelimit-remaining-requests"));
    EXPECT_FALSE(name_is("content-lengt", "content-length"));
    EXPECT_FALSE(name_is("", "te"));
    EXPECT_TRUE(name_is("", ""));
    EXPECT_TRUE(name_starts_with("X-Spillway-Region", "x-spillway-"));
    EXPECT_FALSE(name_starts_with("X-Spillwa", "x-spillway-"));
    EXPECT_FALSE(name_starts_with("X_Spillway-Region", "x-spillway-"));
}

}  // namespace
}  // namespace spillway::http
