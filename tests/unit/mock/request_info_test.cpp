// The admission estimate: prompt characters / 4 + max_tokens (or the region default).
#include "mock/request_info.hpp"

#include <gtest/gtest.h>

namespace spillway::mock {
namespace {

TEST(request_info, chat_counts_every_message_content_and_uses_max_tokens) {
    auto r = inspect_request(operation::chat_completions,
                             R"({"model":"gpt-4o","max_tokens":50,"messages":[
                                 {"role":"system","content":"12345678"},
                                 {"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"x"}}]}]})");
    ASSERT_TRUE(r.info) << r.error;
    EXPECT_EQ(r.info->model, "gpt-4o");
    EXPECT_EQ(r.info->prompt_chars, 12u);
    EXPECT_EQ(prompt_tokens(*r.info), 3u);
    EXPECT_EQ(estimate_tokens(operation::chat_completions, *r.info, 1024), 53u);
    EXPECT_FALSE(r.info->stream);
}

TEST(request_info, max_completion_tokens_counts_and_absent_means_region_default) {
    auto r = inspect_request(operation::chat_completions,
                             R"({"messages":[{"role":"user","content":"abcdefgh"}],"max_completion_tokens":7})");
    ASSERT_TRUE(r.info);
    EXPECT_EQ(estimate_tokens(operation::chat_completions, *r.info, 1024), 2u + 7u);

    r = inspect_request(operation::chat_completions, R"({"messages":[{"role":"user","content":"abcdefgh"}]})");
    ASSERT_TRUE(r.info);
    EXPECT_FALSE(r.info->max_tokens);
    EXPECT_EQ(estimate_tokens(operation::chat_completions, *r.info, 1024), 2u + 1024u);
}

TEST(request_info, characters_are_code_points_not_bytes) {
    auto r = inspect_request(operation::completions, R"({"prompt":"h\u00e9h\u00e9","max_tokens":1})");
    ASSERT_TRUE(r.info);
    EXPECT_EQ(r.info->prompt_chars, 4u);  // 6 bytes in UTF-8
}

TEST(request_info, embeddings_have_no_completion_part_and_count_inputs) {
    auto r = inspect_request(operation::embeddings,
                             R"({"input":["aaaa","bbbbbbbb","cccc"],"model":"emb","encoding_format":"base64"})");
    ASSERT_TRUE(r.info);
    EXPECT_EQ(r.info->inputs, 3u);
    EXPECT_TRUE(r.info->base64);
    EXPECT_EQ(estimate_tokens(operation::embeddings, *r.info, 1024), 4u);

    r = inspect_request(operation::embeddings, R"({"input":[1,2,3]})");  // one tokenised input
    ASSERT_TRUE(r.info);
    EXPECT_EQ(r.info->inputs, 1u);
    EXPECT_EQ(prompt_tokens(*r.info), 3u);
}

TEST(request_info, responses_count_input_and_instructions) {
    auto r = inspect_request(operation::responses,
                             R"({"model":"m","input":[{"role":"user","content":"abcdefgh"}],"instructions":"abcd",
                                 "max_output_tokens":10,"stream":true})");
    ASSERT_TRUE(r.info);
    EXPECT_EQ(r.info->prompt_chars, 12u);
    EXPECT_EQ(estimate_tokens(operation::responses, *r.info, 1024), 13u);
    EXPECT_TRUE(r.info->stream);
}

TEST(request_info, stream_options_include_usage) {
    auto r = inspect_request(operation::chat_completions,
                             R"({"messages":[],"stream":true,"stream_options":{"include_usage":true}})");
    ASSERT_TRUE(r.info);
    EXPECT_TRUE(r.info->stream);
    EXPECT_TRUE(r.info->include_usage);
}

TEST(request_info, malformed_bodies_are_errors) {
    EXPECT_FALSE(inspect_request(operation::chat_completions, "{not json").info);
    EXPECT_FALSE(inspect_request(operation::chat_completions, "[1,2]").info);
    auto r = inspect_request(operation::chat_completions, R"({"model":"x"})");
    EXPECT_FALSE(r.info);
    EXPECT_NE(r.error.find("messages"), std::string::npos);
    EXPECT_FALSE(inspect_request(operation::embeddings, R"({"model":"x"})").info);
}

TEST(request_info, completion_tokens_are_capped_by_max_tokens) {
    request_info info;
    EXPECT_EQ(completion_tokens(info, 16), 16u);
    info.max_tokens = 5;
    EXPECT_EQ(completion_tokens(info, 16), 5u);
    info.max_tokens = 500;
    EXPECT_EQ(completion_tokens(info, 16), 16u);
}

TEST(request_info, operation_ids_match_azure_429_messages) {
    EXPECT_EQ(operation_id(operation::chat_completions), "ChatCompletions_Create");
    EXPECT_EQ(operation_id(operation::embeddings), "Embeddings_Create");
    EXPECT_EQ(operation_id(operation::completions), "Completions_Create");
}

}  // namespace
}  // namespace spillway::mock
