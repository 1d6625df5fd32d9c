// Reads the few fields of an OpenAI request body that admission and answer generation need.
#include "mock/request_info.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace spillway::mock {

namespace {

using json = nlohmann::json;

std::uint64_t code_points(const std::string& s) noexcept {
    // Count UTF-8 lead bytes: "characters" as a user would count them, not bytes.
    return static_cast<std::uint64_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// A message/content value: a string, or an array of parts each with a "text" string.
std::uint64_t content_chars(const json& content) {
    if (content.is_string()) return code_points(content.get_ref<const std::string&>());
    std::uint64_t n = 0;
    if (content.is_array()) {
        for (const auto& part : content) {
            if (part.is_string()) {
                n += code_points(part.get_ref<const std::string&>());
            } else if (part.is_object()) {
                auto t = part.find("text");
                if (t != part.end() && t->is_string()) n += code_points(t->get_ref<const std::string&>());
            }
        }
    }
    return n;
}

// prompt / input: a string, an array of strings, or token ids (each id counts as one token).
std::uint64_t prompt_chars(const json& v) {
    if (v.is_string()) return code_points(v.get_ref<const std::string&>());
    if (v.is_number_integer()) return 4;
    std::uint64_t n = 0;
    if (v.is_array())
        for (const auto& e : v) n += prompt_chars(e);
    return n;
}

// Responses API input: a string, or items that are messages with content.
std::uint64_t responses_input_chars(const json& v) {
    if (v.is_string()) return code_points(v.get_ref<const std::string&>());
    std::uint64_t n = 0;
    if (v.is_array()) {
        for (const auto& item : v) {
            if (item.is_string()) {
                n += code_points(item.get_ref<const std::string&>());
            } else if (item.is_object()) {
                auto c = item.find("content");
                if (c != item.end()) n += content_chars(*c);
            }
        }
    }
    return n;
}

}  // namespace

std::string_view operation_id(operation op) noexcept {
    switch (op) {
        case operation::chat_completions: return "ChatCompletions_Create";
        case operation::completions: return "Completions_Create";
        case operation::embeddings: return "Embeddings_Create";
        case operation::responses: return "Responses_Create";
    }
    return "Unknown";
}

inspect_result inspect_request(operation op, std::string_view body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded()) return {std::nullopt, "We could not parse the JSON body of your request."};
    if (!j.is_object()) return {std::nullopt, "The request body must be a JSON object."};

    request_info info;
    if (auto m = j.find("model"); m != j.end() && m->is_string()) info.model = m->get<std::string>();
    for (const char* key : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
        auto it = j.find(key);
        if (it != j.end() && it->is_number_unsigned()) {
            info.max_tokens = it->get<std::uint64_t>();
            break;
        }
    }
    if (auto s = j.find("stream"); s != j.end() && s->is_boolean()) info.stream = s->get<bool>();
    if (auto so = j.find("stream_options"); so != j.end() && so->is_object()) {
        auto iu = so->find("include_usage");
        info.include_usage = iu != so->end() && iu->is_boolean() && iu->get<bool>();
    }

    switch (op) {
        case operation::chat_completions: {
            auto msgs = j.find("messages");
            if (msgs == j.end() || !msgs->is_array())
                return {std::nullopt, "'messages' is a required property and must be an array."};
            for (const auto& m : *msgs) {
                if (!m.is_object()) continue;
                if (auto c = m.find("content"); c != m.end()) info.prompt_chars += content_chars(*c);
            }
            break;
        }
        case operation::completions:
            if (auto p = j.find("prompt"); p != j.end()) info.prompt_chars = prompt_chars(*p);
            break;
        case operation::embeddings: {
            auto in = j.find("input");
            if (in == j.end()) return {std::nullopt, "'input' is a required property."};
            info.prompt_chars = prompt_chars(*in);
            // An array of strings or of token arrays is a batch; a flat token array is one input.
            if (in->is_array() && !in->empty() && !(*in)[0].is_number()) info.inputs = in->size();
            else info.inputs = 1;
            if (auto f = j.find("encoding_format"); f != j.end() && f->is_string())
                info.base64 = f->get_ref<const std::string&>() == "base64";
            info.stream = false;  // embeddings never stream
            break;
        }
        case operation::responses:
            if (auto in = j.find("input"); in != j.end()) info.prompt_chars = responses_input_chars(*in);
            if (auto ins = j.find("instructions"); ins != j.end() && ins->is_string())
                info.prompt_chars += code_points(ins->get_ref<const std::string&>());
            break;
    }
    return {std::move(info), {}};
}

std::uint64_t prompt_tokens(const request_info& info) noexcept { return info.prompt_chars / 4; }

std::uint64_t estimate_tokens(operation op, const request_info& info, std::uint64_t default_max_tokens) noexcept {
    if (op == operation::embeddings) return prompt_tokens(info);
    return prompt_tokens(info) + info.max_tokens.value_or(default_max_tokens);
}

unsigned completion_tokens(const request_info& info, unsigned region_completion_tokens) noexcept {
    if (info.max_tokens && *info.max_tokens < region_completion_tokens) return static_cast<unsigned>(*info.max_tokens);
    return region_completion_tokens;
}

}  // namespace spillway::mock
