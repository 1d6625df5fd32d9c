// HTTP/1.1 message heads and chunk framing written straight into one string. The relay sends a
// head plus body pieces with a single scatter-write; measured, this costs a fraction of Beast's
// serializer, whose per-field buffer sequences dominated the proxy's profile (bench/RESULTS.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace spillway::http::wire {

inline constexpr std::string_view crlf = "\r\n";
inline constexpr std::string_view last_chunk = "0\r\n\r\n";

// "HTTP/1.1 200 OK\r\n"; fields as "Name: value\r\n" (no terminating blank line).
void append_status_line(unsigned version, unsigned status, std::string_view reason, std::string& out);
void append_field(std::string_view name, std::string_view value, std::string& out);
// The size line of a chunk: "1a2b\r\n".
void append_chunk_size(std::size_t n, std::string& out);

}  // namespace spillway::http::wire
