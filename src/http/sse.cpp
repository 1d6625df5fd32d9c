#include "http/sse.hpp"

namespace spillway::http {

std::string sse_data_event(std::string_view payload) {
    std::string out;
    out.reserve(payload.size() + 8);
    out.append("data: ").append(payload).append("\n\n");
    return out;
}

}  // namespace spillway::http
