// HTTP/1.x messages parsed incrementally: a client's request (request_parser) and an upstream's
// answer (answer_parser). The head goes into one flat block (its bytes, copied once, and a list
// of name/value views into them); the body is copied piece by piece into a window the caller
// provides, chunked framing removed.
//
// Beast's parser spent about 800 instructions per header field (its own validation, then a heap
// block and a case-insensitive tree insertion per field in basic_fields), more than anything
// else on the proxy's hot path (bench/RESULTS.md). Here a field costs a table lookup per byte of
// its name and a test per eight bytes of its value. The interface follows Beast's parser (put,
// put_eof, need_more, need_buffer, Beast's error codes), so the buffered reads of
// parse_buffered.hpp drive both the same way.
#pragma once

#include "core/net.hpp"
#include "http/small_blocks.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::http {

// A head may name at most this many options in its Connection fields; more is refused
// (bad_value): each one is compared with every field when the head is forwarded.
inline constexpr std::size_t max_connection_options = 64;

// Calls each(token) for the comma-separated, trimmed, non-empty tokens of a list-valued field.
template <class Each>
void for_each_token(std::string_view list, Each each) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        std::string_view token = list.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
        if (!token.empty()) each(token);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

struct head_field {
    std::string_view name;   // as sent
    std::string_view value;  // without the surrounding whitespace
};

class message_parser {
public:
    // Where the next body bytes go: advanced past what put() writes, like Beast's buffer_body.
    struct body_window {
        char* data = nullptr;
        std::size_t size = 0;
    };

    // The fields view into the parser's own copy of the head: it stays where it is.
    message_parser(const message_parser&) = delete;
    message_parser& operator=(const message_parser&) = delete;

    // Ready for a new message on the same connection; memory is kept.
    void reset();
    // A head larger than this fails with header_limit (default 64 KiB, at most 16 MiB: the
    // parser keeps offsets into the head in 32 bits).
    void header_limit(std::size_t bytes) noexcept { header_limit_ = std::min<std::size_t>(bytes, 16 << 20); }

    // Consumes what it can of `in` and returns how much; a call that completes the head ends
    // there. Errors (Beast's http::error): need_more when it stopped for want of input (the
    // head, a chunk's size line), need_buffer when the body window is full, and the framing
    // errors (bad_method, bad_target, bad_version, bad_status, bad_reason, bad_field,
    // bad_value, bad_obs_fold, bad_line_ending, bad_content_length, multiple_content_length,
    // bad_transfer_encoding, bad_chunk, bad_chunk_extension, header_limit).
    std::size_t put(net::const_buffer in, error_code& ec);
    // The connection ended: completes a body delimited by it, or fails with partial_message.
    void put_eof(error_code& ec);

    bool got_some() const noexcept { return got_some_; }
    bool is_header_done() const noexcept { return state_ > state::head; }
    bool is_done() const noexcept { return state_ == state::done; }

    unsigned version() const noexcept { return version_; }  // 10 or 11
    std::span<const head_field> fields() const noexcept { return fields_; }
    // The first field of that name (ASCII case-insensitive), empty if none.
    std::string_view operator[](std::string_view name) const noexcept;

    // Framing, known once the head is done.
    bool chunked() const noexcept { return chunked_; }
    std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
    bool keep_alive() const noexcept { return keep_alive_; }

    body_window& body() noexcept { return window_; }
    const body_window& body() const noexcept { return window_; }

protected:
    enum class kind { request, response };
    explicit message_parser(kind k) noexcept : kind_(k) {}
    ~message_parser() = default;

    // The start line's parts, in the copy of the head.
    std::string_view method_, target_;  // a request's
    std::string_view reason_;           // an answer's
    unsigned status_ = 0;

private:
    enum class state { head, length_body, eof_body, chunk_size, chunk_data, chunk_crlf, trailer, done };

    // Where a name and a value are in the input, while the head is still arriving.
    struct part_at {
        std::uint32_t at = 0, size = 0;
    };
    struct field_at {
        part_at name, value;
    };

    std::size_t put_head(std::string_view in, error_code& ec);
    error_code incomplete_head(std::string_view in) const;
    error_code incomplete_line(std::string_view in, std::size_t at);
    bool line_arrived(std::string_view in, std::size_t at);
    std::size_t parse_request_line(std::string_view in, error_code& ec);
    std::size_t parse_status_line(std::string_view in, error_code& ec);
    std::size_t parse_field_line(std::string_view in, std::size_t at, error_code& ec);
    std::size_t scan_field_line(std::string_view in, std::size_t at, std::string_view& name, std::string_view& value,
                                error_code& ec);
    error_code apply_framing(std::string_view name, std::string_view value);
    static error_code parse_chunk_size(std::string_view line, std::uint64_t& size);
    std::size_t parse_trailer_line(std::string_view in, std::size_t at, error_code& ec);
    void keep_head(std::string_view in, std::size_t head_size);
    error_code begin_body();
    std::size_t copy_body(const char* p, std::size_t n, std::uint64_t& left);

    kind kind_;
    state state_ = state::head;
    std::size_t header_limit_ = 64 * 1024;
    // How far the head is parsed: the input is not consumed until the head is whole, so what
    // is parsed keeps its offsets when the rest arrives and is not parsed again.
    std::size_t head_parsed_ = 0;
    std::size_t line_scanned_ = 0;  // of a line that has not all arrived: bytes known to hold no LF
    bool got_some_ = false;
    // The head's bytes, which the start line's parts and the fields view. Their memory comes
    // from the per-thread block lists (small_blocks.hpp), as a request's parser is new each time.
    std::basic_string<char, std::char_traits<char>, message_allocator<char>> head_;
    std::vector<head_field, message_allocator<head_field>> fields_;
    std::vector<field_at, message_allocator<field_at>> fields_at_;
    part_at start_parts_[2];  // method and target, or the reason phrase
    unsigned version_ = 11;
    bool chunked_ = false;  // Transfer-Encoding: chunked (the only coding accepted)
    bool connection_close_ = false;
    bool connection_keep_alive_ = false;
    bool keep_alive_ = false;
    std::optional<std::uint64_t> content_length_;
    std::uint64_t left_ = 0;  // of the body (length) or of the chunk being read
    std::size_t trailer_bytes_ = 0;
    std::size_t connection_options_ = 0;
    body_window window_;
};

// An upstream's answer. One lives with each upstream connection and keeps its memory from
// answer to answer.
class answer_parser final : public message_parser {
public:
    answer_parser() noexcept : message_parser(kind::response) {}
    unsigned status() const noexcept { return status_; }
    std::string_view reason() const noexcept { return reason_; }
};

// A client's request. A request with neither Content-Length nor Transfer-Encoding has no body.
// Both kinds accept chunked as the only transfer coding, applied once, and never together with
// Content-Length.
class request_parser final : public message_parser {
public:
    request_parser() noexcept : message_parser(kind::request) {}
    std::string_view method() const noexcept { return method_; }
    std::string_view target() const noexcept { return target_; }
};

}  // namespace spillway::http
