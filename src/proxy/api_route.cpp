#include "proxy/api_route.hpp"

namespace spillway::proxy {

namespace {

bool consume(std::string_view& s, std::string_view prefix) {
    if (!s.starts_with(prefix)) return false;
    s.remove_prefix(prefix.size());
    return true;
}

bool parse_op(std::string_view s, operation& op) {
    if (s == "chat/completions") op = operation::chat_completions;
    else if (s == "completions") op = operation::completions;
    else if (s == "embeddings") op = operation::embeddings;
    else if (s == "responses") op = operation::responses;
    else return false;
    return true;
}

api_route inference(bool is_post, operation op, std::string_view deployment = {}) {
    api_route r;
    r.what = is_post ? api_route::kind::inference : api_route::kind::method_not_allowed;
    r.op = op;
    r.path_deployment = deployment;
    return r;
}

}  // namespace

std::string_view op_path(operation op) {
    switch (op) {
        case operation::chat_completions: return "chat/completions";
        case operation::completions: return "completions";
        case operation::embeddings: return "embeddings";
        case operation::responses: return "responses";
    }
    return {};
}

std::string_view op_azure_name(operation op) {
    switch (op) {
        case operation::chat_completions: return "ChatCompletions_Create";
        case operation::completions: return "Completions_Create";
        case operation::embeddings: return "Embeddings_Create";
        case operation::responses: return "Responses_Create";
    }
    return {};
}

api_route classify_route(bool is_post, bool is_get, std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);

    operation op;
    std::string_view rest = path;
    if (consume(rest, "/v1/") || consume(rest, "/openai/v1/")) {
        if (rest == "models") {
            api_route r;
            r.what = is_get ? api_route::kind::list_models : api_route::kind::method_not_allowed;
            return r;
        }
        if (parse_op(rest, op)) return inference(is_post, op);
        return {};
    }
    if (consume(rest, "/openai/deployments/")) {
        auto slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0) return {};
        std::string_view name = rest.substr(0, slash);
        if (parse_op(rest.substr(slash + 1), op) && op != operation::responses) return inference(is_post, op, name);
    }
    return {};
}

}  // namespace spillway::proxy
