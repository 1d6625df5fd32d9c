#include "proxy/request_body.hpp"

#include <bit>
#include <charconv>
#include <cstring>

namespace spillway::proxy {

namespace {

static_assert(std::endian::native == std::endian::little, "plain_run reads words little-endian");

constexpr int max_depth = 128;  // deeper nesting is refused rather than risking the stack

// Which top-level member the scanner is inside: decides what it records.
enum class member { other, model, stream, stream_options, max_tokens, max_completion_tokens, prompt };

class scanner {
public:
    scanner(std::string_view text, body_facts& out) : s_(text), out_(out) {}

    std::optional<body_error> run() {
        skip_ws();
        if (at_end() || peek() != '{') return fail("request body must be a JSON object");
        if (!object(0, member::other, true)) return error_;
        skip_ws();
        if (!at_end()) return fail("unexpected data after the JSON object");
        return std::nullopt;
    }

private:
    bool at_end() const { return i_ >= s_.size(); }
    char peek() const { return s_[i_]; }
    void skip_ws() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++i_;
    }
    body_error fail_error(std::string_view what) {
        return body_error{"invalid JSON at byte " + std::to_string(i_) + ": " + std::string(what)};
    }
    std::optional<body_error> fail(std::string_view what) { return fail_error(what); }
    bool error(std::string_view what) {
        if (!error_) error_ = fail_error(what);
        return false;
    }
    bool expect(char c) {
        skip_ws();
        if (at_end() || peek() != c) return error(std::string("expected '") + c + "'");
        ++i_;
        return true;
    }

    bool value(int depth, member m) {
        skip_ws();
        if (at_end()) return error("unexpected end of input");
        switch (peek()) {
            case '{': return object(depth + 1, m, false);
            case '[': return array(depth + 1, m);
            case '"': {
                std::size_t begin = i_;
                std::string* decoded = m == member::model && depth == 0 ? &out_.model : nullptr;
                if (decoded) decoded->clear();  // a repeated key: the last one counts, as in most parsers
                std::size_t chars = 0;
                if (!string(decoded, chars)) return false;
                if (m == member::prompt) out_.prompt_chars += chars;
                if (decoded) {
                    out_.has_model = true;
                    out_.model_begin = begin;
                    out_.model_end = i_;
                }
                return true;
            }
            case 't': return literal("true", m, true);
            case 'f': return literal("false", m, false);
            case 'n': return literal("null", m, false);
            default: return number(depth, m);
        }
    }

    bool literal(std::string_view word, member m, bool truth) {
        if (s_.substr(i_, word.size()) != word) return error("invalid literal");
        i_ += word.size();
        if (m == member::stream) out_.stream = truth;  // only ever set for a top-level member
        return true;
    }

    bool number(int depth, member m) {
        std::size_t begin = i_;
        if (!at_end() && peek() == '-') ++i_;
        if (at_end() || !is_digit(peek())) return error("invalid value");
        if (peek() == '0') ++i_;
        else while (!at_end() && is_digit(peek())) ++i_;
        bool integral = true;
        if (!at_end() && peek() == '.') {
            integral = false;
            ++i_;
            if (at_end() || !is_digit(peek())) return error("invalid number");
            while (!at_end() && is_digit(peek())) ++i_;
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            integral = false;
            ++i_;
            if (!at_end() && (peek() == '+' || peek() == '-')) ++i_;
            if (at_end() || !is_digit(peek())) return error("invalid number");
            while (!at_end() && is_digit(peek())) ++i_;
        }
        if ((m == member::max_tokens || m == member::max_completion_tokens) && depth == 0 && integral &&
            s_[begin] != '-') {
            std::uint64_t v = 0;
            auto [p, ec] = std::from_chars(s_.data() + begin, s_.data() + i_, v);
            // max_tokens wins over the newer names whatever the order of members.
            if (ec == std::errc{} && (m == member::max_tokens || !max_tokens_seen_)) out_.max_tokens = v;
            if (m == member::max_tokens) max_tokens_seen_ = true;
        }
        return true;
    }

    static bool is_digit(char c) { return c >= '0' && c <= '9'; }
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // Validates a string token; counts its characters (code points, escapes as one) and decodes
    // it when asked to. Precondition: peek() == '"'. Runs of plain bytes, nearly all of a
    // prompt, are taken eight at a time (plain_run); only escapes go byte by byte.
    bool string(std::string* decoded, std::size_t& chars) {
        ++i_;
        const char* const text = s_.data();
        const char* const end = text + s_.size();
        for (;;) {
            const char* run = text + i_;
            const char* stop = plain_run(run, end, chars);
            if (decoded) decoded->append(run, stop);
            i_ = static_cast<std::size_t>(stop - text);
            if (stop == end) return error("unterminated string");
            unsigned char c = static_cast<unsigned char>(*stop);
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c < 0x20) return error("control character in string");
            // c == '\\'
            escaped_ = true;
            if (i_ + 1 >= s_.size()) return error("unterminated escape");
            char e = s_[i_ + 1];
            i_ += 2;
            char plain = 0;
            switch (e) {
                case '"': plain = '"'; break;
                case '\\': plain = '\\'; break;
                case '/': plain = '/'; break;
                case 'b': plain = '\b'; break;
                case 'f': plain = '\f'; break;
                case 'n': plain = '\n'; break;
                case 'r': plain = '\r'; break;
                case 't': plain = '\t'; break;
                case 'u': {
                    unsigned cp = 0;
                    if (!hex4(cp)) return error("invalid \\u escape");
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return error("lone low surrogate in \\u escape");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        // A high surrogate must be followed by \uDC00-\uDFFF: together one code point.
                        unsigned low = 0;
                        if (s_.substr(i_, 2) != "\\u") return error("lone high surrogate in \\u escape");
                        i_ += 2;
                        if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return error("invalid surrogate pair");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    if (decoded) append_utf8(*decoded, cp);
                    ++chars;
                    continue;
                }
                default: return error("invalid escape");
            }
            if (decoded) decoded->push_back(plain);
            ++chars;
        }
    }

    // The end of the run of plain string bytes at p (not '"', '\\' or a control character),
    // adding its code points (bytes that are not UTF-8 continuation bytes) to `chars`. Eight
    // bytes at a time: in each word, flag the special bytes and the continuation bytes.
    static const char* plain_run(const char* p, const char* end, std::size_t& chars) {
        constexpr std::uint64_t ones = 0x0101010101010101ULL;
        constexpr std::uint64_t highs = 0x8080808080808080ULL;
        // The top bit of each byte of v that is below n (n <= 0x80). Exact up to and including
        // the lowest flagged byte; a borrow may flag bytes above it, which are never used.
        auto below = [](std::uint64_t v, std::uint64_t n) { return (v - ones * n) & ~v & highs; };
        // The number of flagged bytes in a mask of top bits (no popcnt on baseline x86-64).
        auto count = [](std::uint64_t flags) { return static_cast<std::size_t>(((flags >> 7) * ones) >> 56); };
        while (end - p >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);  // little-endian: the byte at p is the lowest
            // A byte equal to '"' or '\\' becomes 0 under the xor; a control character is below 0x20.
            const std::uint64_t special = below(w ^ (ones * '"'), 1) | below(w ^ (ones * '\\'), 1) | below(w, 0x20);
            // Continuation bytes are 10xxxxxx: the top bit set and the next one clear.
            const std::uint64_t continuation = w & ~(w << 1) & highs;
            if (special) {
                const unsigned plain = static_cast<unsigned>(__builtin_ctzll(special)) / 8;  // bytes before it
                const std::uint64_t before = plain ? ~std::uint64_t{0} >> (64 - 8 * plain) : 0;
                chars += plain - count(continuation & before);
                return p + plain;
            }
            chars += 8 - count(continuation);
            p += 8;
        }
        for (; p != end; ++p) {
            unsigned char c = static_cast<unsigned char>(*p);
            if (c == '"' || c == '\\' || c < 0x20) break;
            if ((c & 0xC0) != 0x80) ++chars;
        }
        return p;
    }

    // Reads four hex digits at i_ into cp.
    bool hex4(unsigned& cp) {
        if (i_ + 4 > s_.size()) return false;
        cp = 0;
        for (int k = 0; k < 4; ++k) {
            int h = hex(s_[i_ + static_cast<std::size_t>(k)]);
            if (h < 0) return false;
            cp = cp * 16 + static_cast<unsigned>(h);
        }
        i_ += 4;
        return true;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    }

    static member classify_top_level(std::string_view key) {
        if (key == "model") return member::model;
        if (key == "stream") return member::stream;
        if (key == "stream_options") return member::stream_options;
        if (key == "max_tokens") return member::max_tokens;
        if (key == "max_completion_tokens" || key == "max_output_tokens") return member::max_completion_tokens;
        if (key == "messages" || key == "prompt" || key == "input" || key == "instructions")
            return member::prompt;
        return member::other;
    }

    bool object(int depth, member parent, bool top) {
        if (depth > max_depth) return error("nesting too deep");
        ++i_;  // '{'
        skip_ws();
        if (!at_end() && peek() == '}') {
            ++i_;
            return true;
        }
        for (;;) {
            skip_ws();
            if (at_end() || peek() != '"') return error("expected a member name");
            std::size_t key_begin = i_ + 1;
            std::size_t ignored = 0;
            escaped_ = false;
            if (!string(nullptr, ignored)) return false;
            std::string_view key = s_.substr(key_begin, i_ - key_begin - 1);
            // An escaped name ("mod\u0065l") means the same member to the upstream: decode it so
            // it cannot slip past routing. Rare, so the copy is only made then.
            std::string decoded_key;
            if (escaped_) {
                std::size_t end = i_;
                i_ = key_begin - 1;
                string(&decoded_key, ignored);
                i_ = end;
                key = decoded_key;
            }
            if (!expect(':')) return false;

            member m = parent == member::prompt ? member::prompt : member::other;
            if (top) m = classify_top_level(key);
            if (parent == member::stream_options && depth == 1 && key == "include_usage") {
                skip_ws();
                if (s_.substr(i_, 4) == "true") out_.include_usage = true;
            }
            if (!value(top ? 0 : depth, m)) return false;

            skip_ws();
            if (at_end()) return error("unterminated object");
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == '}') {
                ++i_;
                return true;
            }
            return error("expected ',' or '}'");
        }
    }

    bool array(int depth, member parent) {
        if (depth > max_depth) return error("nesting too deep");
        ++i_;  // '['
        skip_ws();
        if (!at_end() && peek() == ']') {
            ++i_;
            return true;
        }
        member m = parent == member::prompt ? member::prompt : member::other;
        for (;;) {
            if (!value(depth, m)) return false;
            skip_ws();
            if (at_end()) return error("unterminated array");
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == ']') {
                ++i_;
                return true;
            }
            return error("expected ',' or ']'");
        }
    }

    std::string_view s_;
    body_facts& out_;
    std::size_t i_ = 0;
    std::optional<body_error> error_;
    bool max_tokens_seen_ = false;
    bool escaped_ = false;  // the last string read had an escape in it
};

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex_digits[] = "0123456789abcdef";
    out.push_back('"');
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20) {
            out += "\\u00";
            out.push_back(hex_digits[c >> 4]);
            out.push_back(hex_digits[c & 0xF]);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

}  // namespace

std::optional<body_error> inspect_body(std::string_view body, body_facts& out) {
    out = body_facts{};
    if (body.empty()) return body_error{"request body is empty; expected a JSON object"};
    return scanner(body, out).run();
}

std::string replace_model(std::string_view body, const body_facts& facts, std::string_view model) {
    std::string out;
    out.reserve(body.size() + model.size() + 2);
    out.append(body.substr(0, facts.model_begin));
    append_json_string(out, model);
    out.append(body.substr(facts.model_end));
    return out;
}

std::string with_model(std::string_view body, const body_facts& facts, std::string_view model) {
    if (facts.has_model) return replace_model(body, facts, model);
    // inspect_body accepted the body, so it is one object: its last '}' closes it.
    std::size_t close = body.rfind('}');
    std::size_t open = body.find('{');
    bool empty = body.find_first_not_of(" \t\r\n", open + 1) == close;
    std::string out;
    out.reserve(body.size() + model.size() + 12);
    out.append(body.substr(0, close));
    out.append(empty ? "\"model\":" : ",\"model\":");
    append_json_string(out, model);
    out.append(body.substr(close));
    return out;
}

}  // namespace spillway::proxy
