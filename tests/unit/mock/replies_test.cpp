// Generated bodies are valid JSON of the right shape, and streams follow Azure's event sequence.
#include "mock/replies.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace spillway::mock {
namespace {

using json = nlohmann::json;

answer_context context(unsigned tokens) {
    return {.region = "eastus",
            .deployment = "gpt4o-eastus",
            .model = "gpt-4o",
            .id = "chatcmpl-1",
            .created = 1700000000,
            .prompt_tokens = 7,
            .completion_tokens = tokens};
}

json event_json(const sse_event& e) {
    EXPECT_TRUE(e.bytes.starts_with("data: ")) << e.bytes;
    EXPECT_TRUE(e.bytes.ends_with("\n\n")) << e.bytes;
    return json::parse(e.bytes.substr(6, e.bytes.size() - 8));
}

TEST(replies, answer_tokens_name_region_and_deployment_and_pad_to_length) {
    auto t = answer_tokens("eastus", "gpt4o-eastus", 6);
    ASSERT_EQ(t.size(), 6u);
    std::string text;
    for (const auto& s : t) text += s;
    EXPECT_TRUE(text.starts_with("Hello from eastus/gpt4o-eastus")) << text;
    EXPECT_EQ(answer_tokens("a", "b", 2).size(), 2u);
    EXPECT_TRUE(answer_tokens("a", "b", 0).empty());
}

TEST(replies, chat_completion_has_content_and_usage) {
    auto j = json::parse(chat_completion_body(context(5)));
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "gpt-4o");
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_TRUE(j["choices"][0]["message"]["content"].get<std::string>().starts_with("Hello from eastus/gpt4o-eastus"));
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
    EXPECT_EQ(j["usage"]["completion_tokens"], 5);
    EXPECT_EQ(j["usage"]["total_tokens"], 12);
}

TEST(replies, truncated_answers_finish_with_length) {
    auto ctx = context(3);
    ctx.truncated = true;
    EXPECT_EQ(json::parse(chat_completion_body(ctx))["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(json::parse(text_completion_body(ctx))["choices"][0]["finish_reason"], "length");
}

TEST(replies, text_completion_and_response_shapes) {
    auto c = json::parse(text_completion_body(context(4)));
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_TRUE(c["choices"][0]["text"].get<std::string>().starts_with("Hello from"));
    EXPECT_EQ(c["usage"]["total_tokens"], 11);

    auto ctx = context(4);
    ctx.id = "resp_1";
    auto r = json::parse(response_body(ctx));
    EXPECT_EQ(r["object"], "response");
    EXPECT_EQ(r["status"], "completed");
    EXPECT_EQ(r["output"][0]["content"][0]["type"], "output_text");
    EXPECT_TRUE(r["output"][0]["content"][0]["text"].get<std::string>().starts_with("Hello from"));
    EXPECT_EQ(r["usage"]["input_tokens"], 7);
    EXPECT_EQ(r["usage"]["output_tokens"], 4);
}

TEST(replies, embeddings_one_vector_per_input_as_floats_or_base64) {
    auto ctx = context(0);
    auto j = json::parse(embeddings_body(ctx, 3, false));
    ASSERT_EQ(j["data"].size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(j["data"][i]["object"], "embedding");
        EXPECT_EQ(j["data"][i]["index"], i);
        EXPECT_EQ(j["data"][i]["embedding"].size(), 8u);
    }
    EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
    EXPECT_EQ(j["usage"]["total_tokens"], 7);

    auto b = json::parse(embeddings_body(ctx, 1, true));
    // 8 float32 = 32 bytes = 44 base64 characters with one '=' of padding.
    std::string e = b["data"][0]["embedding"];
    EXPECT_EQ(e.size(), 44u);
    EXPECT_EQ(e.back(), '=');
}

TEST(replies, chat_stream_follows_azure_sequence) {
    auto events = stream_events(operation::chat_completions, context(4), true);
    // filter event, role, 4 tokens, finish, usage, [DONE]
    ASSERT_EQ(events.size(), 9u);

    auto first = event_json(events[0]);
    EXPECT_EQ(first["id"], "");
    EXPECT_EQ(first["object"], "");
    EXPECT_EQ(first["created"], 0);
    EXPECT_TRUE(first["choices"].empty());
    EXPECT_EQ(first["prompt_filter_results"].size(), 1u);

    auto role = event_json(events[1]);
    EXPECT_EQ(role["object"], "chat.completion.chunk");
    EXPECT_EQ(role["choices"][0]["delta"]["role"], "assistant");
    EXPECT_TRUE(role["usage"].is_null());
    EXPECT_TRUE(role.contains("usage"));

    std::string text;
    for (std::size_t i = 2; i < 6; ++i) {
        auto c = event_json(events[i]);
        EXPECT_EQ(c["object"], "chat.completion.chunk");
        EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
        EXPECT_TRUE(c["choices"][0].contains("content_filter_results"));
        EXPECT_TRUE(c["usage"].is_null());
        text += c["choices"][0]["delta"]["content"].get<std::string>();
    }
    EXPECT_EQ(text, "Hello from eastus/gpt4o-eastus and");

    auto finish = event_json(events[6]);
    EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
    auto usage = event_json(events[7]);
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], 4);
    EXPECT_EQ(usage["usage"]["total_tokens"], 11);
    EXPECT_EQ(events[8].bytes, "data: [DONE]\n\n");

    // Pacing: everything up to the first token goes at ttft; later tokens and the finish are paced.
    std::vector<bool> paced;
    for (const auto& e : events) paced.push_back(e.paced);
    EXPECT_EQ(paced, (std::vector<bool>{false, false, false, true, true, true, true, false, false}));
}

TEST(replies, chat_stream_without_include_usage_has_no_usage_fields) {
    auto events = stream_events(operation::chat_completions, context(2), false);
    ASSERT_EQ(events.size(), 6u);  // filter, role, 2 tokens, finish, [DONE]
    for (std::size_t i = 1; i < 5; ++i) EXPECT_FALSE(event_json(events[i]).contains("usage"));
    EXPECT_EQ(events.back().bytes, "data: [DONE]\n\n");
}

TEST(replies, completions_stream_ends_with_done) {
    auto events = stream_events(operation::completions, context(3), true);
    ASSERT_EQ(events.size(), 7u);  // filter, 3 tokens, finish, usage, [DONE]
    EXPECT_EQ(event_json(events[1])["choices"][0]["text"], "Hello");
    EXPECT_EQ(event_json(events[4])["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(event_json(events[5])["usage"]["completion_tokens"], 3);
    EXPECT_EQ(events.back().bytes, "data: [DONE]\n\n");
}

TEST(replies, responses_stream_uses_typed_events) {
    auto ctx = context(2);
    ctx.id = "resp_9";
    auto events = stream_events(operation::responses, ctx, false);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_TRUE(events[0].bytes.starts_with("event: response.created\ndata: "));
    EXPECT_TRUE(events[1].bytes.starts_with("event: response.output_text.delta\n"));
    EXPECT_TRUE(events[3].bytes.starts_with("event: response.completed\n"));
    auto done = json::parse(events[3].bytes.substr(events[3].bytes.find("data: ") + 6));
    EXPECT_EQ(done["response"]["status"], "completed");
    EXPECT_EQ(done["response"]["usage"]["output_tokens"], 2);
}

TEST(replies, throttle_body_is_azures) {
    auto j = json::parse(throttle_body(operation::chat_completions, limit_kind::tokens, "2024-10-21", 7));
    EXPECT_EQ(j["error"]["code"], "429");
    std::string msg = j["error"]["message"];
    EXPECT_NE(msg.find("Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
                       "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds."),
              std::string::npos)
        << msg;
    std::string calls = json::parse(throttle_body(operation::embeddings, limit_kind::requests, "v1", 1))["error"]["message"];
    EXPECT_NE(calls.find("Embeddings_Create"), std::string::npos);
    EXPECT_NE(calls.find("call rate limit"), std::string::npos);
}

TEST(replies, json_strings_are_escaped) {
    std::string out;
    append_json_string(out, "a\"b\\c\n\x01");
    EXPECT_EQ(json::parse(out).get<std::string>(), "a\"b\\c\n\x01");
}

}  // namespace
}  // namespace spillway::mock
