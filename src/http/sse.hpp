// Server-sent events (text/event-stream) that spillway writes itself into a relayed stream,
// e.g. the error event that ends a client's stream cleanly when the upstream breaks mid-response.
#pragma once

#include <string>
#include <string_view>

namespace spillway::http {

// `data: <payload>\n\n`. The payload goes out as one data line, so it must not contain line
// breaks (\r or \n): compact JSON qualifies.
std::string sse_data_event(std::string_view payload);

}  // namespace spillway::http
