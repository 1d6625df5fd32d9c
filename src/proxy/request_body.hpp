// What spillway needs from an OpenAI request body, found in one pass without building a DOM:
// the top-level `model` (and where it sits, so it can be replaced in place), `stream`, the
// token limits and the prompt's size for the cost estimate. The pass also validates the JSON,
// so a malformed body is refused here and never reaches an upstream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spillway::proxy {

struct body_facts {
    std::string model;                 // decoded value of the top-level "model", empty if absent
    std::size_t model_begin = 0;       // byte span of the model's JSON string token, quotes included
    std::size_t model_end = 0;
    bool has_model = false;
    bool stream = false;               // "stream": true
    bool include_usage = false;        // "stream_options": {"include_usage": true}
    std::optional<std::uint64_t> max_tokens;             // max_tokens, else max_completion_tokens / max_output_tokens
    std::uint64_t prompt_chars = 0;    // characters in strings under messages/prompt/input/instructions
};

struct body_error {
    std::string message;  // e.g. "invalid JSON at byte 17: expected ':'"
};

// Returns the facts, or why the body is not a JSON object.
std::optional<body_error> inspect_body(std::string_view body, body_facts& out);

// The body with its top-level model replaced by `model` (JSON-escaped here).
std::string replace_model(std::string_view body, const body_facts& facts, std::string_view model);
// The body with `model` as its top-level model: replaced if there is a string model, else
// added as the last member (so it also wins over a non-string "model" for last-wins parsers).
std::string with_model(std::string_view body, const body_facts& facts, std::string_view model);

}  // namespace spillway::proxy
