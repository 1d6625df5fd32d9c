#include "http/sse.hpp"

namespace spillway::http {

bool sse_scanner::end_line() {
    if (line_.empty()) {
        if (!has_data_) return false;  // blank line with no data: nothing to dispatch
        ++events_;
        return true;
    }
    std::string_view line(line_);
    if (line.starts_with("data:")) {
        line.remove_prefix(5);
        if (line.starts_with(' ')) line.remove_prefix(1);
        if (has_data_) data_.push_back('\n');
        data_.append(line);
        has_data_ = true;
    }
    // Comments (":..."), event:, id: and retry: lines carry nothing spillway needs.
    line_.clear();
    return false;
}

std::string sse_data_event(std::string_view payload) {
    std::string out;
    out.reserve(payload.size() + 8);
    out.append("data: ").append(payload).append("\n\n");
    return out;
}

}  // namespace spillway::http
