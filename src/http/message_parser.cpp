#include "http/message_parser.hpp"

#include "http/field_name.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace spillway::http {

namespace {

using boost::beast::http::error;

// A chunk's size line (with any extensions) and the trailer are bounded like the head.
constexpr std::size_t max_chunk_line = 4096;

// What each byte may be: part of a field name or method (RFC 9110 tchar), of a field value or
// reason phrase (VCHAR, SP, HTAB, obs-text), of a request target (VCHAR, obs-text, as Beast
// allowed), or none of them.
constexpr unsigned char token_char = 1;
constexpr unsigned char value_char = 2;
constexpr unsigned char target_char = 4;

constexpr std::array<unsigned char, 256> make_char_classes() {
    std::array<unsigned char, 256> t{};
    for (int c = 0; c < 256; ++c) {
        bool vchar = (c > 0x20 && c < 0x7f) || c >= 0x80;
        if (vchar || c == ' ' || c == '\t') t[c] |= value_char;
        if (vchar) t[c] |= target_char;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (alnum || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos)
            t[c] |= token_char;
    }
    return t;
}
constexpr std::array<unsigned char, 256> char_classes = make_char_classes();

bool digit(char c) { return c >= '0' && c <= '9'; }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool is(char c, unsigned char cls) { return char_classes[static_cast<unsigned char>(c)] & cls; }

// Bytes of one class from `from` on: the index of the first byte that is not.
std::size_t span_of(std::string_view in, std::size_t from, unsigned char cls) {
    while (from < in.size() && is(in[from], cls)) ++from;
    return from;
}

// The part of a start line that has a fixed shape ('#': a digit), matched as far as it has
// arrived: 1 when it all matched, 0 when it is still arriving, -1 (with `ec`) when it differs.
int match_shape(std::string_view in, std::size_t at, std::string_view shape, error_code& ec, error wrong) {
    const std::size_t known = std::min(in.size() - std::min(at, in.size()), shape.size());
    for (std::size_t i = 0; i < known; ++i) {
        const bool ok = shape[i] == '#' ? digit(in[at + i]) : in[at + i] == shape[i];
        if (!ok) return ec = wrong, -1;
    }
    return known == shape.size() ? 1 : 0;
}

// The end of the line that starts at `from`: the index of its '\n', npos when it has not all
// arrived. A '\n' without the '\r' before it is an error.
std::size_t line_end(std::string_view in, std::size_t from, error_code& ec) {
    if (from >= in.size()) return std::string_view::npos;
    const void* nl = std::memchr(in.data() + from, '\n', in.size() - from);
    if (!nl) return std::string_view::npos;
    std::size_t at = static_cast<std::size_t>(static_cast<const char*>(nl) - in.data());
    if (at == from || in[at - 1] != '\r') ec = error::bad_line_ending;
    return at;
}

// The end of a field value or reason phrase that starts at `from`: the index of the CR of its
// CRLF, npos when it has not all arrived. Every byte is checked on the way (HTAB, SP, VCHAR and
// obs-text are allowed), eight at a time for a control character (below 0x20, or DEL); only a
// word that has one is looked at byte by byte.
std::size_t line_value_end(std::string_view in, std::size_t from, error_code& ec) {
    constexpr std::uint64_t ones = 0x0101010101010101ull;
    constexpr std::uint64_t highs = 0x8080808080808080ull;
    std::size_t i = from;
    for (;;) {
        for (; i + 8 <= in.size(); i += 8) {
            std::uint64_t word;
            std::memcpy(&word, in.data() + i, 8);
            const std::uint64_t below_space = (word - ones * 0x20) & ~word & highs;
            const std::uint64_t del = word ^ (ones * 0x7f);
            if (below_space | ((del - ones) & ~del & highs)) break;
        }
        while (i < in.size() && static_cast<unsigned char>(in[i]) >= 0x20 && in[i] != 0x7f) ++i;
        if (i == in.size()) return std::string_view::npos;
        if (in[i] == '\t') {
            ++i;
            continue;
        }
        if (in[i] == '\n') return ec = error::bad_line_ending, 0;
        if (in[i] != '\r') return ec = error::bad_value, 0;
        if (i + 1 == in.size()) return std::string_view::npos;
        if (in[i + 1] != '\n') return ec = error::bad_value, 0;
        return i;
    }
}

}  // namespace

void message_parser::reset() {
    state_ = state::head;
    head_parsed_ = 0;
    fields_at_.clear();
    start_parts_[0] = start_parts_[1] = {};
    got_some_ = false;
    head_.clear();
    fields_.clear();
    method_ = target_ = reason_ = {};
    status_ = 0;
    version_ = 11;
    chunked_ = connection_close_ = connection_keep_alive_ = keep_alive_ = false;
    line_scanned_ = 0;
    content_length_.reset();
    left_ = 0;
    trailer_bytes_ = 0;
    connection_options_ = 0;
    window_ = {};
}

std::string_view message_parser::operator[](std::string_view name) const noexcept {
    for (const auto& f : fields_)
        if (f.name.size() == name.size() && boost::beast::iequals(f.name, name)) return f.value;
    return {};
}

std::size_t message_parser::put(net::const_buffer buffer, error_code& ec) {
    ec = {};
    const std::string_view in(static_cast<const char*>(buffer.data()), buffer.size());
    if (!in.empty()) got_some_ = true;
    // The head ends a call, as with Beast: the caller looks at it before any body is read.
    if (state_ == state::head) return put_head(in, ec);

    std::size_t used = 0;
    while (!ec && state_ != state::done) {
        const std::size_t avail = in.size() - used;
        const char* p = in.data() + used;
        switch (state_) {
            case state::length_body:
            case state::chunk_data:
            case state::eof_body: {
                if (avail == 0) return ec = error::need_more, used;
                if (window_.size == 0) {
                    if (used == 0) ec = error::need_buffer;  // only when it could do nothing
                    return used;
                }
                if (state_ == state::eof_body) {
                    std::uint64_t unbounded = std::numeric_limits<std::uint64_t>::max();
                    used += copy_body(p, avail, unbounded);
                    break;
                }
                used += copy_body(p, avail, left_);
                if (left_ == 0) state_ = state_ == state::length_body ? state::done : state::chunk_crlf;
                break;
            }
            case state::chunk_crlf:
                if (avail < 2) return ec = error::need_more, used;
                if (p[0] != '\r' || p[1] != '\n') return ec = error::bad_chunk, used;
                used += 2;
                state_ = state::chunk_size;
                break;
            case state::chunk_size: {
                const std::size_t end = line_arrived(in, used) ? line_end(in, used, ec) : std::string_view::npos;
                if (ec) return used;
                if (end == std::string_view::npos) {
                    line_scanned_ = avail;
                    ec = avail > max_chunk_line ? error::bad_chunk : error::need_more;
                    return used;
                }
                if ((ec = parse_chunk_size(in.substr(used, end - 1 - used), left_))) return used;
                used = end + 1;
                state_ = left_ == 0 ? state::trailer : state::chunk_data;
                break;
            }
            case state::trailer: {
                const std::size_t next = parse_trailer_line(in, used, ec);
                if (ec) return used;
                if (next == std::string_view::npos) {
                    line_scanned_ = avail;
                    ec = trailer_bytes_ + avail > header_limit_ ? error::header_limit : error::need_more;
                    return used;
                }
                trailer_bytes_ += next - used;
                if (trailer_bytes_ > header_limit_) return ec = error::header_limit, used;
                used = next;
                break;
            }
            case state::head:
            case state::done:
                break;
        }
    }
    return used;
}

// A chunk's size line without its CRLF: hex digits, then only extensions (optional whitespace,
// ';' and anything printable; they carry nothing spillway uses).
error_code message_parser::parse_chunk_size(std::string_view line, std::uint64_t& size) {
    size = 0;
    std::size_t digits = 0;
    for (; digits < line.size(); ++digits) {
        const char c = line[digits];
        unsigned v;
        if (digit(c)) v = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f') v = static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v = static_cast<unsigned>(c - 'A' + 10);
        else break;
        if (size >> 60) return error::bad_chunk;  // would overflow
        size = size * 16 + v;
    }
    if (digits == 0) return error::bad_chunk;
    std::string_view ext = line.substr(digits);
    while (!ext.empty() && is_ows(ext.front())) ext.remove_prefix(1);
    if (!ext.empty() && (ext.front() != ';' || span_of(ext, 0, value_char) != ext.size()))
        return error::bad_chunk_extension;
    return {};
}

// One line of a chunked body's trailer at `at`: a field, checked like the head's and dropped
// (nothing uses them), or the blank line that ends the message. Returns where the next line
// starts, npos when the line has not all arrived.
std::size_t message_parser::parse_trailer_line(std::string_view in, std::size_t at, error_code& ec) {
    if (at < in.size() && in[at] == '\r') {
        if (at + 1 == in.size()) return std::string_view::npos;
        if (in[at + 1] != '\n') return ec = error::bad_line_ending, 0;
        state_ = state::done;
        return at + 2;
    }
    if (!line_arrived(in, at)) return std::string_view::npos;
    std::string_view name, value;
    return scan_field_line(in, at, name, value, ec);
}

void message_parser::put_eof(error_code& ec) {
    ec = {};
    if (state_ == state::eof_body) state_ = state::done;
    if (state_ != state::done) ec = error::partial_message;
}

// Parses the head as far as it has arrived. Nothing is consumed until it is whole; then it is
// copied into the parser, and the fields point into the copy.
std::size_t message_parser::put_head(std::string_view in, error_code& ec) {
    // Empty lines before a request line are ignored (RFC 9112 §2.2: some clients send one after
    // a body). They are consumed one by one, each a call of its own.
    if (kind_ == kind::request && head_parsed_ == 0 && !in.empty() && in[0] == '\r') {
        if (in.size() == 1) return ec = error::need_more, 0;
        if (in[1] == '\n') return 2;
    }
    if (!line_arrived(in, head_parsed_)) return ec = incomplete_head(in), 0;
    if (head_parsed_ == 0) {
        const std::size_t next = kind_ == kind::request ? parse_request_line(in, ec) : parse_status_line(in, ec);
        if (ec) return 0;
        if (next == std::string_view::npos) return ec = incomplete_line(in, 0), 0;
        head_parsed_ = next;
    }
    for (;;) {
        const std::size_t at = head_parsed_;
        if (at < in.size() && in[at] == '\r') {  // the blank line: the head is complete
            if (at + 1 == in.size()) return ec = incomplete_line(in, at), 0;
            if (in[at + 1] != '\n') return ec = error::bad_line_ending, 0;
            const std::size_t head_size = at + 2;
            if (head_size > header_limit_) return ec = error::header_limit, 0;
            if ((ec = begin_body())) return 0;
            keep_head(in, head_size);
            return head_size;
        }
        const std::size_t next = parse_field_line(in, at, ec);
        if (ec) return 0;
        if (next == std::string_view::npos) return ec = incomplete_line(in, at), 0;
        if (next > header_limit_) return ec = error::header_limit, 0;
        head_parsed_ = next;
    }
}

error_code message_parser::incomplete_head(std::string_view in) const {
    return in.size() > header_limit_ ? error::header_limit : error::need_more;
}

// The line at `at` has not all arrived: what of it is here is not searched again.
error_code message_parser::incomplete_line(std::string_view in, std::size_t at) {
    line_scanned_ = in.size() - at;
    return incomplete_head(in);
}

// Whether the rest of a line that did not all arrive before (line_scanned_ bytes of it, from
// `at`) is here now: only the new bytes are searched for its end, so a line that arrives a
// byte at a time costs linear time, not quadratic.
bool message_parser::line_arrived(std::string_view in, std::size_t at) {
    if (line_scanned_ == 0) return true;
    const std::size_t from = at + line_scanned_;
    if (from < in.size() && std::memchr(in.data() + from, '\n', in.size() - from)) {
        line_scanned_ = 0;
        return true;
    }
    line_scanned_ = in.size() - at;
    return false;
}

void message_parser::keep_head(std::string_view in, std::size_t head_size) {
    head_.assign(in.data(), head_size);
    auto view = [&](part_at p) { return std::string_view(head_).substr(p.at, p.size); };
    if (kind_ == kind::request) {
        method_ = view(start_parts_[0]);
        target_ = view(start_parts_[1]);
    } else {
        reason_ = view(start_parts_[0]);
    }
    fields_.reserve(fields_at_.size());
    for (const auto& f : fields_at_) fields_.push_back({view(f.name), view(f.value)});
}

// "POST /v1/chat/completions HTTP/1.1\r\n". Returns where the next line starts, npos when the
// line has not all arrived.
std::size_t message_parser::parse_request_line(std::string_view in, error_code& ec) {
    const std::size_t method_end = span_of(in, 0, token_char);
    if (method_end == in.size()) return std::string_view::npos;
    if (method_end == 0 || in[method_end] != ' ') return ec = error::bad_method, 0;
    const std::size_t target_end = span_of(in, method_end + 1, target_char);
    if (target_end == in.size()) return std::string_view::npos;
    if (target_end == method_end + 1 || in[target_end] != ' ') return ec = error::bad_target, 0;
    const std::size_t version = target_end + 1;
    const int shape = match_shape(in, version, "HTTP/#.#\r\n", ec, error::bad_version);
    if (shape <= 0) return shape < 0 ? 0 : std::string_view::npos;
    if (in[version + 5] != '1') return ec = error::bad_version, 0;
    version_ = in[version + 7] == '0' ? 10 : 11;
    start_parts_[0] = {0, static_cast<std::uint32_t>(method_end)};
    start_parts_[1] = {static_cast<std::uint32_t>(method_end + 1), static_cast<std::uint32_t>(target_end - method_end - 1)};
    return version + 10;
}

// "HTTP/1.1 200 OK\r\n"; the reason phrase may be empty, and so may the space before it.
std::size_t message_parser::parse_status_line(std::string_view in, error_code& ec) {
    const int version = match_shape(in, 0, "HTTP/#.# ", ec, error::bad_version);
    if (version <= 0) return version < 0 ? 0 : std::string_view::npos;
    const int status = match_shape(in, 9, "###", ec, error::bad_status);
    if (status <= 0) return status < 0 ? 0 : std::string_view::npos;
    if (in[5] != '1') return ec = error::bad_version, 0;
    version_ = in[7] == '0' ? 10 : 11;
    if (in[9] == '0') return ec = error::bad_status, 0;
    status_ = static_cast<unsigned>((in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0'));
    std::size_t reason = 12;
    if (in.size() > 12 && in[12] == ' ') reason = 13;
    else if (in.size() > 12 && in[12] != '\r') return ec = error::bad_status, 0;
    const std::size_t end = line_value_end(in, reason, ec);
    if (ec == error::bad_value) ec = error::bad_reason;
    if (ec || end == std::string_view::npos) return end;
    start_parts_[0] = {static_cast<std::uint32_t>(reason), static_cast<std::uint32_t>(end - reason)};
    return end + 2;
}

// One "Name: value\r\n" line of the head at `at`, kept; returns where the next line starts, npos
// when the line has not all arrived.
std::size_t message_parser::parse_field_line(std::string_view in, std::size_t at, error_code& ec) {
    std::string_view name, value;
    const std::size_t next = scan_field_line(in, at, name, value, ec);
    if (ec || next == std::string_view::npos) return next;
    if ((ec = apply_framing(name, value))) return 0;
    if (fields_at_.capacity() == 0) fields_at_.reserve(16);  // one block for a usual head
    auto offset = [&](std::string_view part) {
        return part_at{static_cast<std::uint32_t>(part.data() - in.data()), static_cast<std::uint32_t>(part.size())};
    };
    fields_at_.push_back({offset(name), offset(value)});
    return next;
}

// Checks a field line (of the head or of a chunked body's trailer) and finds its name and value.
std::size_t message_parser::scan_field_line(std::string_view in, std::size_t at, std::string_view& name,
                                            std::string_view& value_out, error_code& ec) {
    if (at >= in.size()) return std::string_view::npos;
    if (is_ows(in[at])) return ec = error::bad_obs_fold, 0;  // a folded continuation line
    const std::size_t colon = span_of(in, at, token_char);
    if (colon == in.size()) return std::string_view::npos;
    if (in[colon] == '\n') return ec = error::bad_line_ending, 0;
    if (in[colon] != ':' || colon == at) return ec = error::bad_field, 0;
    std::size_t value = colon + 1;
    while (value < in.size() && is_ows(in[value])) ++value;
    const std::size_t end = line_value_end(in, value, ec);
    if (ec || end == std::string_view::npos) return end;
    std::size_t value_last = end;
    while (value_last > value && is_ows(in[value_last - 1])) --value_last;
    name = in.substr(at, colon - at);
    value_out = in.substr(value, value_last - value);
    return end + 2;
}

// The fields that decide how the body is framed and whether the connection stays open.
error_code message_parser::apply_framing(std::string_view name, std::string_view value) {
    if (name_is(name, "content-length")) {
        std::uint64_t n = 0;
        if (value.empty()) return error::bad_content_length;
        for (char c : value) {
            if (!digit(c) || n > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return error::bad_content_length;
            n = n * 10 + static_cast<unsigned>(c - '0');
        }
        if (content_length_ && *content_length_ != n) return error::multiple_content_length;
        content_length_ = n;
    } else if (name_is(name, "transfer-encoding")) {
        // chunked, once, is the only transfer coding accepted. Any other would have to be kept
        // (the body passes on with a Content-Length or re-chunked), and neither OpenAI-style
        // APIs nor their SDKs use one; a request's length is unknown without chunked last
        // (RFC 9112 §6.3).
        bool other = value.empty();
        for_each_token(value, [&](std::string_view coding) {
            other = other || !name_is(coding, "chunked") || chunked_;
            chunked_ = true;
        });
        if (other) return error::bad_transfer_encoding;
    } else if (name_is(name, "connection")) {
        for_each_token(value, [&](std::string_view option) {
            ++connection_options_;
            if (name_is(option, "close")) connection_close_ = true;
            else if (name_is(option, "keep-alive")) connection_keep_alive_ = true;
        });
        if (connection_options_ > max_connection_options) return error::bad_value;
    }
    return {};
}

// RFC 9112 §6.3 and §9.3: what follows the head and whether the connection can serve again.
error_code message_parser::begin_body() {
    // Both framings at once is how messages are smuggled (RFC 9112 §6.3): refuse it.
    if (chunked_ && content_length_) return error::bad_transfer_encoding;
    keep_alive_ = !connection_close_ && (version_ == 11 || connection_keep_alive_);
    // HTTP/1.0 has no Transfer-Encoding: its framing is faulty (RFC 9112 §6.1). A request is
    // refused; an answer is read, and its connection not used again.
    if (chunked_ && version_ == 10) {
        if (kind_ == kind::request) return error::bad_transfer_encoding;
        keep_alive_ = false;
    }
    if (kind_ == kind::response && (status_ / 100 == 1 || status_ == 204 || status_ == 304)) {
        chunked_ = false;  // these never have a body, whatever their fields say
        state_ = state::done;
    } else if (chunked_) {
        state_ = state::chunk_size;
    } else if (content_length_) {
        left_ = *content_length_;
        state_ = left_ ? state::length_body : state::done;
    } else if (kind_ == kind::request) {
        state_ = state::done;  // no body
    } else {
        // Delimited by the connection's end.
        keep_alive_ = false;
        state_ = state::eof_body;
    }
    return {};
}

std::size_t message_parser::copy_body(const char* p, std::size_t n, std::uint64_t& left) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>({n, left, window_.size}));
    std::memcpy(window_.data, p, k);
    window_.data += k;
    window_.size -= k;
    left -= k;
    return k;
}

}  // namespace spillway::http
