// Unit tests for proxy/usage_scan: token usage read from the tail of an upstream answer, and the
// tail buffer that keeps it.
#include "proxy/usage_scan.hpp"

#include <gtest/gtest.h>

#include <string>

namespace spillway::proxy {
namespace {

TEST(FindUsage, ReadsAChatCompletionsUsageObject) {
    auto u = find_usage(R"({"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}})");
    EXPECT_EQ(u.prompt, 12u);
    EXPECT_EQ(u.completion, 34u);
}

TEST(FindUsage, ReadsTheResponsesApiNames) {
    auto u = find_usage(R"({"output":[],"usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14}})");
    EXPECT_EQ(u.prompt, 5u);
    EXPECT_EQ(u.completion, 9u);
}

TEST(FindUsage, OnlyTheUsageObjectsOwnMembersCount) {
    auto u = find_usage(R"({"usage":{"prompt_tokens_details":{"cached_tokens":3},"prompt_tokens":7,)"
                        R"("completion_tokens_details":{"reasoning_tokens":2},"completion_tokens":8}})");
    EXPECT_EQ(u.prompt, 7u);
    EXPECT_EQ(u.completion, 8u);
    // Members after the usage object are not its own.
    auto after = find_usage(R"({"usage":{"total_tokens":1},"x":{"prompt_tokens":99}})");
    EXPECT_FALSE(after.prompt.has_value());
}

TEST(FindUsage, TheLastUsageOfAStreamWins) {
    const std::string stream = "data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n"
                               "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
                               "data: [DONE]\n\n";
    auto u = find_usage(stream);
    EXPECT_EQ(u.prompt, 3u);
    EXPECT_EQ(u.completion, 4u);
}

TEST(FindUsage, NullOrMissingUsageGivesNothing) {
    EXPECT_FALSE(find_usage(R"({"choices":[],"usage":null})").prompt.has_value());
    EXPECT_FALSE(find_usage(R"({"choices":[]})").completion.has_value());
    EXPECT_FALSE(find_usage("").prompt.has_value());
}

TEST(FindUsage, WhitespaceAroundNamesAndValuesIsAllowed) {
    auto u = find_usage("{\"usage\" : {\n  \"prompt_tokens\" : 21,\n  \"completion_tokens\":\t22\n}}");
    EXPECT_EQ(u.prompt, 21u);
    EXPECT_EQ(u.completion, 22u);
}

TEST(FindUsage, NamesMustMatchWhole) {
    auto u = find_usage(R"({"usage":{"xprompt_tokens":1,"prompt_tokensx":2,"completion_tokens":3}})");
    EXPECT_FALSE(u.prompt.has_value());
    EXPECT_EQ(u.completion, 3u);
}

TEST(FindUsage, ATailCutInsideTheUsageObjectStillGivesWhatItHolds) {
    auto u = find_usage(R"("usage":{"prompt_tokens":40,"completion_tok)");
    EXPECT_EQ(u.prompt, 40u);
    EXPECT_FALSE(u.completion.has_value());
}

TEST(TailBuffer, KeepsTheLastCapacityBytes) {
    tail_buffer tail;
    tail.append("abc");
    tail.append("def");
    EXPECT_EQ(tail.view(), "abcdef");
    const std::string big(tail_buffer::capacity + 10, 'x');
    tail.append(big + "END");
    EXPECT_EQ(tail.view().size(), tail_buffer::capacity);
    EXPECT_TRUE(tail.view().ends_with("xxEND"));
    tail.append("!");
    EXPECT_TRUE(tail.view().ends_with("xEND!"));
    EXPECT_EQ(tail.view().size(), tail_buffer::capacity);
}

}  // namespace
}  // namespace spillway::proxy
