// Server-sent events framing (text/event-stream): splitting a relayed byte stream into events
// as they complete, whatever the chunk boundaries, and writing the events spillway adds itself.
#pragma once

#include <string>
#include <string_view>

namespace spillway::http {

// Incremental: feed bytes as they arrive; each complete event's data (its `data:` lines joined
// by '\n') is handed to the callback. Lines may end in \n, \r\n or \r (the SSE spec allows all).
class sse_scanner {
public:
    template <class OnData>
    void feed(std::string_view bytes, OnData&& on_data) {
        for (char c : bytes) {
            if (skip_lf_) {
                skip_lf_ = false;
                if (c == '\n') continue;
            }
            if (c == '\r' || c == '\n') {
                skip_lf_ = c == '\r';
                if (end_line()) {
                    on_data(std::string_view(data_));
                    data_.clear();
                    has_data_ = false;
                }
                continue;
            }
            line_.push_back(c);
        }
    }

    std::size_t events() const noexcept { return events_; }

private:
    // Handles the line just ended; true when it was the blank line that completes an event.
    bool end_line();

    std::string line_;
    std::string data_;
    bool has_data_ = false;
    bool skip_lf_ = false;
    std::size_t events_ = 0;
};

// `data: <payload>\n\n`
std::string sse_data_event(std::string_view payload);

}  // namespace spillway::http
