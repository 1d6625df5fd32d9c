// Answer bodies and SSE event sequences as Azure OpenAI sends them, built by string appends
// (no JSON DOM) because they sit on the benchmark path. Pure: same inputs, same bytes.
#pragma once

#include "mock/rate_window.hpp"
#include "mock/request_info.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::mock {

struct answer_context {
    std::string_view region;
    std::string_view deployment;
    std::string_view model;
    std::string_view id;  // "chatcmpl-…", "cmpl-…", "resp_…" — unique per request
    std::int64_t created = 0;  // unix seconds
    std::uint64_t prompt_tokens = 0;
    unsigned completion_tokens = 0;
    bool truncated = false;  // cut by max_tokens: finish_reason "length"
};

// The generated answer split in tokens: "Hello", " from", " eastus/gpt4o", then filler words.
std::vector<std::string> answer_tokens(std::string_view region, std::string_view deployment, unsigned count);

std::string chat_completion_body(const answer_context& ctx);
std::string text_completion_body(const answer_context& ctx);
std::string response_body(const answer_context& ctx);
// One 8-float vector per input; base64 = little-endian float32 bytes as openai-node asks by default.
std::string embeddings_body(const answer_context& ctx, std::size_t inputs, bool base64);

struct sse_event {
    std::string bytes;   // the complete event text, "data: …\n\n"
    bool paced = false;  // sent one per-token interval after the previous event (else immediately)
};

// The whole stream after the response headers. The first event goes out at ttft; the first content
// token right after it, every later token and the final chunk one per-token interval apart.
//   chat:        {"choices":[],"prompt_filter_results":…}, role chunk, one chunk per token,
//                finish_reason chunk, [usage chunk if include_usage], data: [DONE]
//   completions: same shape with text_completion chunks
//   responses:   response.created, response.output_text.delta per token, response.completed
std::vector<sse_event> stream_events(operation op, const answer_context& ctx, bool include_usage);

// {"error":{"code":"…","message":"…"}} — Azure's envelope (code is a string, no type).
std::string azure_error_body(std::string_view code, std::string_view message);
// OpenAI's envelope, which Azure uses for request validation errors (400).
std::string invalid_request_body(std::string_view message);
// Azure's 429 message: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API
// version V have exceeded token rate limit of your current OpenAI S0 pricing tier. …"
std::string throttle_body(operation op, limit_kind kind, std::string_view api_version, std::uint64_t retry_after_s);

// Appends s as a JSON string literal (quotes included).
void append_json_string(std::string& out, std::string_view s);

}  // namespace spillway::mock
