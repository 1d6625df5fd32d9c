// Unit tests for quota/estimate: the admission cost Azure uses (AZURE.md §3), prompt characters / 4
// plus the completion budget, and none for embeddings.
#include "quota/estimate.hpp"

#include <gtest/gtest.h>

namespace spillway::quota {
namespace {

constexpr std::uint64_t default_max_tokens = 1024;

TEST(EstimateTokens, PromptCharsOverFourPlusMaxTokens) {
    EXPECT_EQ(estimate_tokens({.prompt_chars = 400, .max_tokens = 50}, default_max_tokens), 150u);
}

TEST(EstimateTokens, PromptCharsAreDividedDownward) {
    EXPECT_EQ(estimate_tokens({.prompt_chars = 403, .max_tokens = 50}, default_max_tokens), 150u);
    EXPECT_EQ(estimate_tokens({.prompt_chars = 404, .max_tokens = 50}, default_max_tokens), 151u);
    EXPECT_EQ(estimate_tokens({.prompt_chars = 3, .max_tokens = 50}, default_max_tokens), 50u);
}

TEST(EstimateTokens, DefaultCompletionBudgetWhenMaxTokensAbsent) {
    EXPECT_EQ(estimate_tokens({.prompt_chars = 400}, default_max_tokens), 100u + 1024u);
    EXPECT_EQ(estimate_tokens({.prompt_chars = 400}, 16), 116u);
}

TEST(EstimateTokens, ExplicitZeroMaxTokensIsNotReplacedByTheDefault) {
    EXPECT_EQ(estimate_tokens({.prompt_chars = 400, .max_tokens = 0}, default_max_tokens), 100u);
}

TEST(EstimateTokens, EmbeddingsHaveNoCompletionPart) {
    EXPECT_EQ(estimate_tokens({.prompt_chars = 400, .has_completion = false}, default_max_tokens), 100u);
    // Even if a client sent max_tokens along with an embeddings request.
    EXPECT_EQ(estimate_tokens({.prompt_chars = 400, .max_tokens = 50, .has_completion = false}, default_max_tokens),
              100u);
}

TEST(EstimateTokens, EmptyPromptCostsOnlyTheCompletionBudget) {
    EXPECT_EQ(estimate_tokens({.prompt_chars = 0, .max_tokens = 7}, default_max_tokens), 7u);
    EXPECT_EQ(estimate_tokens({.prompt_chars = 0, .has_completion = false}, default_max_tokens), 0u);
}

}  // namespace
}  // namespace spillway::quota
