// Token usage from the end of an upstream answer. OpenAI and Azure put `usage` last in a
// completion body and in the final streamed chunk (include_usage), so keeping the last couple
// of KiB of what was relayed is enough: no body is buffered or parsed whole.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace spillway::proxy {

struct token_usage {
    std::optional<std::uint64_t> prompt;
    std::optional<std::uint64_t> completion;
};

// The last `usage` object in `text`: its prompt_tokens/completion_tokens (or input_tokens/
// output_tokens, as the Responses API names them).
token_usage find_usage(std::string_view text);

// Keeps the last N bytes of a stream of pieces.
class tail_buffer {
public:
    static constexpr std::size_t capacity = 2048;
    void append(std::string_view piece);
    std::string_view view() const { return {data_.data(), size_}; }

private:
    std::array<char, capacity> data_;  // only the first size_ bytes are meaningful
    std::size_t size_ = 0;
};

}  // namespace spillway::proxy
