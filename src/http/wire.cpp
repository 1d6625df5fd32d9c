#include "http/wire.hpp"

#include <charconv>

namespace spillway::http::wire {

namespace {

void append_number(std::size_t n, int base, std::string& out) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n, base);
    out.append(digits, end);
}

}  // namespace

void append_status_line(unsigned version, unsigned status, std::string_view reason, std::string& out) {
    out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    append_number(status, 10, out);
    out.push_back(' ');
    out.append(reason);
    out.append(crlf);
}

void append_field(std::string_view name, std::string_view value, std::string& out) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append(crlf);
}

void append_chunk_size(std::size_t n, std::string& out) {
    append_number(n, 16, out);
    out.append(crlf);
}

}  // namespace spillway::http::wire
