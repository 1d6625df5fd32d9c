// Byte-level answer generation. Field order and quirks follow dumps of real Azure answers
// (AZURE.md §5): prompt_filter_results, content_filter_results, usage:null with include_usage.
#include "mock/replies.hpp"

#include <array>
#include <cstdio>
#include <cstring>

namespace spillway::mock {

namespace {

constexpr std::string_view safe_filters =
    R"({"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},)"
    R"("sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}})";

constexpr std::array<std::string_view, 12> filler = {" and", " the", " quick", " brown", " fox",  " jumps",
                                                     " over", " the", " lazy",  " dog",   " again", "."};

void append_uint(std::string& out, std::uint64_t v) { out += std::to_string(v); }

void append_usage(std::string& out, const answer_context& ctx) {
    out += R"({"prompt_tokens":)";
    append_uint(out, ctx.prompt_tokens);
    out += R"(,"completion_tokens":)";
    append_uint(out, ctx.completion_tokens);
    out += R"(,"total_tokens":)";
    append_uint(out, ctx.prompt_tokens + ctx.completion_tokens);
    out += '}';
}

void append_content(std::string& out, const answer_context& ctx) {
    std::string text;
    for (const auto& t : answer_tokens(ctx.region, ctx.deployment, ctx.completion_tokens)) text += t;
    append_json_string(out, text);
}

std::string_view finish_reason(const answer_context& ctx) { return ctx.truncated ? "length" : "stop"; }

// "id", "created", "model" shared by every completion object and chunk.
void append_header_fields(std::string& out, const answer_context& ctx, std::string_view object) {
    out += R"("id":)";
    append_json_string(out, ctx.id);
    out += R"(,"object":")";
    out += object;
    out += R"(","created":)";
    out += std::to_string(ctx.created);
    out += R"(,"model":)";
    append_json_string(out, ctx.model);
}

std::string data_event(std::string_view json) {
    std::string e;
    e.reserve(json.size() + 8);
    e += "data: ";
    e += json;
    e += "\n\n";
    return e;
}

std::string named_event(std::string_view name, std::string_view json) {
    std::string e = "event: ";
    e += name;
    e += '\n';
    e += data_event(json);
    return e;
}

std::string prompt_filter_event() {
    std::string j = R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":)";
    j += safe_filters;
    j += "}]}";
    return data_event(j);
}

// One chat.completion.chunk; `delta` is raw JSON, `finish` raw JSON ("null" or "\"stop\"").
std::string chat_chunk(const answer_context& ctx, std::string_view delta, std::string_view filters,
                       std::string_view finish, bool include_usage) {
    std::string j = "{";
    append_header_fields(j, ctx, "chat.completion.chunk");
    j += R"(,"system_fingerprint":"fp_mock","choices":[{"index":0,"content_filter_results":)";
    j += filters;
    j += R"(,"delta":)";
    j += delta;
    j += R"(,"finish_reason":)";
    j += finish;
    j += R"(,"logprobs":null}])";
    if (include_usage) j += R"(,"usage":null)";
    j += '}';
    return data_event(j);
}

std::string text_chunk(const answer_context& ctx, std::string_view text, std::string_view finish,
                       bool include_usage) {
    std::string j = "{";
    append_header_fields(j, ctx, "text_completion");
    j += R"(,"choices":[{"text":)";
    append_json_string(j, text);
    j += R"(,"index":0,"finish_reason":)";
    j += finish;
    j += R"(,"logprobs":null,"content_filter_results":)";
    j += finish == "null" ? safe_filters : std::string_view{"{}"};
    j += "}]";
    if (include_usage) j += R"(,"usage":null)";
    j += '}';
    return data_event(j);
}

std::string usage_chunk(const answer_context& ctx, std::string_view object) {
    std::string j = "{";
    append_header_fields(j, ctx, object);
    j += R"(,"choices":[],"usage":)";
    append_usage(j, ctx);
    j += '}';
    return data_event(j);
}

void append_response_object(std::string& j, const answer_context& ctx, bool completed) {
    j += R"({"id":)";
    append_json_string(j, ctx.id);
    j += R"(,"object":"response","created_at":)";
    j += std::to_string(ctx.created);
    j += completed ? R"(,"status":"completed")" : R"(,"status":"in_progress")";
    j += R"(,"error":null,"incomplete_details":null,"model":)";
    append_json_string(j, ctx.model);
    j += R"(,"output":[)";
    if (completed) {
        j += R"({"type":"message","id":"msg_)";
        j += ctx.id.substr(ctx.id.find('_') + 1);
        j += R"(","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"text":)";
        append_content(j, ctx);
        j += "}]}";
    }
    j += "]";
    if (completed) {
        j += R"(,"usage":{"input_tokens":)";
        append_uint(j, ctx.prompt_tokens);
        j += R"(,"output_tokens":)";
        append_uint(j, ctx.completion_tokens);
        j += R"(,"total_tokens":)";
        append_uint(j, ctx.prompt_tokens + ctx.completion_tokens);
        j += "}";
    } else {
        j += R"(,"usage":null)";
    }
    j += '}';
}

void append_base64(std::string& out, const unsigned char* data, std::size_t n) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < n; i += 3) {
        std::uint32_t v = std::uint32_t{data[i]} << 16;
        if (i + 1 < n) v |= std::uint32_t{data[i + 1]} << 8;
        if (i + 2 < n) v |= data[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out += i + 2 < n ? alphabet[v & 63] : '=';
    }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

std::vector<std::string> answer_tokens(std::string_view region, std::string_view deployment, unsigned count) {
    std::vector<std::string> tokens;
    tokens.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
        if (i == 0) tokens.emplace_back("Hello");
        else if (i == 1) tokens.emplace_back(" from");
        else if (i == 2) tokens.push_back(" " + std::string{region} + "/" + std::string{deployment});
        else tokens.emplace_back(filler[(i - 3) % filler.size()]);
    }
    return tokens;
}

std::string chat_completion_body(const answer_context& ctx) {
    std::string j;
    j.reserve(1024);
    j += '{';
    append_header_fields(j, ctx, "chat.completion");
    j += R"(,"system_fingerprint":"fp_mock","prompt_filter_results":[{"prompt_index":0,"content_filter_results":)";
    j += safe_filters;
    j += R"(}],"choices":[{"index":0,"finish_reason":")";
    j += finish_reason(ctx);
    j += R"(","logprobs":null,"message":{"role":"assistant","refusal":null,"content":)";
    append_content(j, ctx);
    j += R"(},"content_filter_results":)";
    j += safe_filters;
    j += R"(}],"usage":)";
    append_usage(j, ctx);
    j += '}';
    return j;
}

std::string text_completion_body(const answer_context& ctx) {
    std::string j;
    j.reserve(768);
    j += '{';
    append_header_fields(j, ctx, "text_completion");
    j += R"(,"choices":[{"text":)";
    append_content(j, ctx);
    j += R"(,"index":0,"finish_reason":")";
    j += finish_reason(ctx);
    j += R"(","logprobs":null,"content_filter_results":)";
    j += safe_filters;
    j += R"(}],"usage":)";
    append_usage(j, ctx);
    j += '}';
    return j;
}

std::string response_body(const answer_context& ctx) {
    std::string j;
    j.reserve(768);
    append_response_object(j, ctx, true);
    return j;
}

std::string embeddings_body(const answer_context& ctx, std::size_t inputs, bool base64) {
    // Deterministic per deployment and input index, so tests can compare vectors across calls.
    std::uint32_t seed = 2166136261u;
    for (char c : ctx.deployment) seed = (seed ^ static_cast<unsigned char>(c)) * 16777619u;
    std::string j = R"({"object":"list","data":[)";
    for (std::size_t i = 0; i < inputs; ++i) {
        if (i) j += ',';
        j += R"({"object":"embedding","index":)";
        append_uint(j, i);
        j += R"(,"embedding":)";
        std::array<float, 8> v{};
        for (std::size_t k = 0; k < v.size(); ++k)
            v[k] = static_cast<float>(static_cast<int>((seed + 31 * i + 7 * k) % 2001) - 1000) / 1000.0f;
        if (base64) {
            std::array<unsigned char, sizeof v> bytes{};
            std::memcpy(bytes.data(), v.data(), sizeof v);  // x86/ARM are little-endian, as the SDK expects
            j += '"';
            append_base64(j, bytes.data(), bytes.size());
            j += '"';
        } else {
            j += '[';
            for (std::size_t k = 0; k < v.size(); ++k) {
                if (k) j += ',';
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(v[k]));
                j += buf;
            }
            j += ']';
        }
        j += '}';
    }
    j += R"(],"model":)";
    append_json_string(j, ctx.model);
    j += R"(,"usage":{"prompt_tokens":)";
    append_uint(j, ctx.prompt_tokens);
    j += R"(,"total_tokens":)";
    append_uint(j, ctx.prompt_tokens);
    j += "}}";
    return j;
}

std::vector<sse_event> stream_events(operation op, const answer_context& ctx, bool include_usage) {
    std::vector<sse_event> events;
    auto tokens = answer_tokens(ctx.region, ctx.deployment, ctx.completion_tokens);
    events.reserve(tokens.size() + 5);
    std::string finish = "\"" + std::string{finish_reason(ctx)} + "\"";

    if (op == operation::responses) {
        std::string created = R"({"type":"response.created","sequence_number":0,"response":)";
        append_response_object(created, ctx, false);
        created += '}';
        events.push_back({named_event("response.created", created), false});
        std::string item_id = "msg_" + std::string{ctx.id.substr(ctx.id.find('_') + 1)};
        unsigned seq = 1;
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string d = R"({"type":"response.output_text.delta","sequence_number":)";
            d += std::to_string(seq++);
            d += R"(,"item_id":)";
            append_json_string(d, item_id);
            d += R"(,"output_index":0,"content_index":0,"delta":)";
            append_json_string(d, tokens[i]);
            d += '}';
            events.push_back({named_event("response.output_text.delta", d), i > 0});
        }
        std::string done = R"({"type":"response.completed","sequence_number":)";
        done += std::to_string(seq);
        done += R"(,"response":)";
        append_response_object(done, ctx, true);
        done += '}';
        events.push_back({named_event("response.completed", done), true});
        return events;
    }

    events.push_back({prompt_filter_event(), false});
    if (op == operation::chat_completions) {
        events.push_back({chat_chunk(ctx, R"({"role":"assistant","content":""})", "{}", "null", include_usage), false});
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string delta = R"({"content":)";
            append_json_string(delta, tokens[i]);
            delta += '}';
            events.push_back({chat_chunk(ctx, delta, safe_filters, "null", include_usage), i > 0});
        }
        events.push_back({chat_chunk(ctx, "{}", "{}", finish, include_usage), true});
        if (include_usage) events.push_back({usage_chunk(ctx, "chat.completion.chunk"), false});
    } else {
        for (std::size_t i = 0; i < tokens.size(); ++i)
            events.push_back({text_chunk(ctx, tokens[i], "null", include_usage), i > 0});
        events.push_back({text_chunk(ctx, "", finish, include_usage), true});
        if (include_usage) events.push_back({usage_chunk(ctx, "text_completion"), false});
    }
    events.push_back({"data: [DONE]\n\n", false});
    return events;
}

std::string azure_error_body(std::string_view code, std::string_view message) {
    std::string j = R"({"error":{"code":)";
    append_json_string(j, code);
    j += R"(,"message":)";
    append_json_string(j, message);
    j += "}}";
    return j;
}

std::string invalid_request_body(std::string_view message) {
    std::string j = R"({"error":{"message":)";
    append_json_string(j, message);
    j += R"(,"type":"invalid_request_error","param":null,"code":null}})";
    return j;
}

std::string throttle_body(operation op, limit_kind kind, std::string_view api_version, std::uint64_t retry_after_s) {
    std::string msg = "Requests to the ";
    msg += operation_id(op);
    msg += " Operation under Azure OpenAI API version ";
    msg += api_version;
    msg += kind == limit_kind::requests ? " have exceeded call rate limit" : " have exceeded token rate limit";
    msg += " of your current OpenAI S0 pricing tier. Please retry after ";
    msg += std::to_string(retry_after_s);
    msg += retry_after_s == 1 ? " second." : " seconds.";
    msg += " Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.";
    return azure_error_body("429", msg);
}

}  // namespace spillway::mock
