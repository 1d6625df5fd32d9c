// What the simulator needs to know about a data-plane request body, and Azure's admission estimate.
// Pure functions, unit-tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spillway::mock {

enum class operation { chat_completions, completions, embeddings, responses };

// Azure's operation id as it appears in 429 messages ("ChatCompletions_Create").
std::string_view operation_id(operation op) noexcept;

struct request_info {
    std::string model;                        // body "model" ("" if absent)
    std::uint64_t prompt_chars = 0;           // characters (code points) of every prompt string
    std::optional<std::uint64_t> max_tokens;  // max_tokens / max_completion_tokens / max_output_tokens
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    std::size_t inputs = 1;      // embeddings: one vector per input element
    bool base64 = false;         // embeddings: encoding_format "base64" (the openai-node default)
};

struct inspect_result {
    std::optional<request_info> info;
    std::string error;  // set when info is empty: why the body is a 400
};

inspect_result inspect_request(operation op, std::string_view body);

// Prompt tokens as Azure estimates them at admission: characters / 4.
std::uint64_t prompt_tokens(const request_info& info) noexcept;

// prompt_tokens + (max_tokens, else default_max_tokens); embeddings have no completion part.
std::uint64_t estimate_tokens(operation op, const request_info& info, std::uint64_t default_max_tokens) noexcept;

// Completion tokens the simulator generates: min(max_tokens if given, the region's answer length).
unsigned completion_tokens(const request_info& info, unsigned region_completion_tokens) noexcept;

}  // namespace spillway::mock
