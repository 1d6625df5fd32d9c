// Which OpenAI operation a request target names, in any of the URL forms SPEC §3 accepts:
// /v1/{op}, /openai/v1/{op} (model in the body) and /openai/deployments/{name}/{op} (in the path).
#pragma once

#include <cstddef>
#include <string_view>

namespace spillway::proxy {

enum class operation { chat_completions, completions, embeddings, responses };
inline constexpr std::size_t operation_count = 4;
static_assert(static_cast<std::size_t>(operation::responses) + 1 == operation_count, "operation_count is the last + 1");

std::string_view op_path(operation op);       // "chat/completions", "completions", ...
std::string_view op_azure_name(operation op);  // "ChatCompletions_Create", ... (for messages)

struct api_route {
    enum class kind { not_found, method_not_allowed, list_models, inference } what = kind::not_found;
    operation op = operation::chat_completions;
    std::string_view path_deployment;  // set for the /openai/deployments/{name}/ form (a view into the target)
};

// `is_post` / `is_get`: the request method; `target` as received (query string allowed).
api_route classify_route(bool is_post, bool is_get, std::string_view target);

}  // namespace spillway::proxy
