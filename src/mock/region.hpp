// One simulated Azure OpenAI region: its deployments' quota windows, the injected fault, latency
// and stats, and the decision of what to answer to a request (`plan`). No I/O here: the simulator's
// sessions execute the returned action (wait, write, stream, hang or reset).
//
// Thread safety: plan() and the control-plane methods may be called from any worker thread; the
// mutable state sits behind one short critical section that is never held across I/O.
#pragma once

#include "core/clock.hpp"
#include "core/random.hpp"
#include "mock/mock_config.hpp"
#include "mock/rate_window.hpp"
#include "mock/replies.hpp"

#include <boost/beast/http/message.hpp>
#include <nlohmann/json_fwd.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::mock {

namespace http = boost::beast::http;

enum class fault_mode { none, down, error, hang, reset, stall, throttle };

std::string_view to_string(fault_mode m) noexcept;

struct fault_spec {
    fault_mode mode = fault_mode::none;
    unsigned status = 500;                 // error: the status to answer
    double rate = 1.0;                     // error: probability per request
    std::uint64_t retry_after_ms = 3000;   // throttle
    bool retry_after_header = true;        // throttle: false omits retry-after(-ms), as Azure sometimes does
    std::uint64_t after_chunks = 3;        // reset, stall: streaming answers stop after this many events
};

// Parses a POST /regions/{name}/fault body; returns problems (unknown keys included).
std::vector<std::string> parse_fault(std::string_view json, fault_spec& out);
// Parses a POST /regions/{name}/latency body onto `out` (fields absent are kept).
std::vector<std::string> parse_latency(std::string_view json, latency_spec& out);

// What a session should do with one request.
struct action {
    enum class kind {
        respond,  // wait `delay`, then write `response`
        stream,   // wait `delay`, write `response`'s header (chunked) and `events`, pacing with per_token
        hang,     // never answer; keep reading until the peer or the simulator closes
        reset,    // close the connection abruptly (RST) without answering
    };
    kind what = kind::respond;
    http::response<http::string_body> response;
    std::chrono::milliseconds delay{0};
    std::chrono::milliseconds per_token{0};
    std::vector<sse_event> events;
    std::optional<std::size_t> reset_after;  // stream: cut after this many events
    // respond: the head and this many bytes of the body, then nothing; stream: nothing after
    // this many events. Either way the connection stays open (an upstream stuck mid-answer).
    std::optional<std::size_t> stall_after;
};

class region {
public:
    region(region_spec spec, const core::clock& clock, std::uint64_t seed);

    const region_spec& spec() const noexcept { return spec_; }
    const std::string& name() const noexcept { return spec_.name; }

    action plan(const http::request<http::string_body>& req);

    void count_connection() noexcept { connections_accepted_.fetch_add(1, std::memory_order_relaxed); }

    fault_spec fault() const;
    void set_fault(const fault_spec& f);
    latency_spec latency() const;
    void set_latency(latency_spec l);
    // Clears fault, stats and quota windows and restores the configured latency.
    void reset();

    // Control-plane views (JSON text). `port`/`listening` come from the listener that owns the socket.
    std::string stats_json() const;
    std::string describe_json(std::uint16_t port, bool listening) const;

private:
    struct deployment_state {
        deployment_spec spec;
        rate_window window;
    };
    struct recorded_request {
        std::string method;
        std::string target;
        std::vector<std::pair<std::string, std::string>> headers;
        std::string body;
    };

    deployment_state* find_deployment(std::string_view name, bool also_model);
    std::string next_request_id();
    void record(const http::request<http::string_body>& req);
    void count_status(unsigned status);
    // A JSON answer with the headers every Azure answer carries.
    http::response<http::string_body> make_response(const http::request<http::string_body>& req,
                                                    const std::string& request_id, unsigned status, std::string body);
    action answer(const http::request<http::string_body>& req, const std::string& request_id, unsigned status,
                  std::string body);
    nlohmann::json stats_locked() const;

    region_spec spec_;
    const core::clock& clock_;
    std::vector<std::unique_ptr<deployment_state>> deployments_;
    std::atomic<std::uint64_t> request_counter_{0};
    std::atomic<std::uint64_t> connections_accepted_{0};

    mutable std::mutex mu_;  // guards everything below and the deployments' windows
    fault_spec fault_;
    latency_spec latency_;
    core::prng rng_;
    std::uint64_t requests_ = 0;
    std::map<unsigned, std::uint64_t> by_status_;
    std::optional<recorded_request> last_request_;
};

}  // namespace spillway::mock
