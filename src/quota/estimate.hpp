// The cost of a request as Azure estimates it at admission (AZURE.md §3): prompt characters / 4
// plus the completion budget. spillway uses the same number to keep within each deployment's
// TPM before Azure has to refuse anything.
#pragma once

#include <cstdint>
#include <optional>

namespace spillway::quota {

struct request_shape {
    std::uint64_t prompt_chars = 0;
    std::optional<std::uint64_t> max_tokens;  // max_tokens / max_completion_tokens / max_output_tokens
    bool has_completion = true;               // false for embeddings: no completion budget
};

inline std::uint64_t estimate_tokens(const request_shape& r, std::uint64_t default_max_tokens) {
    std::uint64_t completion = r.has_completion ? r.max_tokens.value_or(default_max_tokens) : 0;
    return r.prompt_chars / 4 + completion;
}

}  // namespace spillway::quota
