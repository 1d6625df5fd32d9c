// Integration harness: runs the real binaries (spillway, spillway-mock) as child processes on
// loopback port 0, and talks HTTP to them with a small synchronous Beast client.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace spillway::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

class child_process {
public:
    child_process(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // Waits for a line containing `needle` on stdout (or stderr); returns it, or nullopt on timeout/exit.
    std::optional<std::string> wait_for_line(std::string_view needle, bool on_stderr,
                                             std::chrono::milliseconds timeout = 10s);
    std::vector<std::string> lines(bool on_stderr) const;
    void signal(int sig);
    // Waits for exit; returns the exit code (128+signal if killed), nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout = 10s);
    int pid() const { return pid_; }

private:
    void read_loop(int fd, bool is_stderr);

    int pid_ = -1;
    std::optional<int> exit_code_;
    std::thread out_reader_, err_reader_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> out_lines_, err_lines_;
};

std::string write_temp_file(const std::string& content, const std::string& suffix = ".json");

// spillway-mock with the given JSON config (ports 0 are resolved from its first stdout line).
class mock_server {
public:
    explicit mock_server(const json& config);
    std::uint16_t port(const std::string& region) const { return ports_.at(region).get<std::uint16_t>(); }
    std::uint16_t control_port() const { return control_port_; }
    // Control API helpers.
    void fault(const std::string& region, const json& spec);
    void latency(const std::string& region, int ttft_ms, int token_ms);
    json stats(const std::string& region);
    void reset();

private:
    std::unique_ptr<child_process> process_;
    json ports_;
    std::uint16_t control_port_ = 0;
};

// spillway --config with the given JSON config (listen/admin ports 0 unless set).
class proxy_server {
public:
    explicit proxy_server(json config, std::map<std::string, std::string> env = {});
    std::uint16_t port() const { return port_; }
    std::uint16_t admin_port() const { return admin_port_; }
    child_process& process() { return *process_; }
    const std::string& config_path() const { return config_path_; }

private:
    std::unique_ptr<child_process> process_;
    std::string config_path_;
    std::uint16_t port_ = 0;
    std::uint16_t admin_port_ = 0;
};

struct http_reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    json json_body() const { return json::parse(body); }
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

using header_list = std::vector<std::pair<std::string, std::string>>;

// One request on a fresh connection.
http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = {}, const header_list& headers = {});
inline http_reply post_json(std::uint16_t port, const std::string& target, const json& body, const header_list& headers) {
    return http_call(port, "POST", target, body.dump(), headers);
}

// A streaming request: each piece of body is handed over with the time it arrived.
struct timed_piece {
    std::chrono::steady_clock::time_point at;
    std::string data;
};
struct stream_reply {
    int status = 0;
    std::map<std::string, std::string> headers;
    std::chrono::steady_clock::time_point sent_at;
    std::vector<timed_piece> pieces;
    std::string body() const;
    bool clean_end = false;  // the chunked body ended properly
};
stream_reply stream_call(std::uint16_t port, const std::string& target, const json& body, const header_list& headers);

// Raw bytes in, everything the server sends until it closes (or the timeout) out.
struct raw_reply {
    std::string bytes;
    bool closed_by_server = false;
    std::chrono::milliseconds elapsed{0};
};
raw_reply raw_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout = 5s);

// Sends `lines` one by one, `gap` apart, then waits for the server; reports when it closed.
raw_reply trickle(std::uint16_t port, const std::vector<std::string>& lines, std::chrono::milliseconds gap,
                  std::chrono::milliseconds timeout);

// A client connection driven step by step, for exchanges where what the server sends before
// the client has sent everything matters.
class raw_client {
public:
    explicit raw_client(std::uint16_t port);
    ~raw_client();
    bool send(const std::string& bytes);  // false if the server no longer takes them
    // What arrives until `until`, the server closes, or `enough` says so.
    std::string receive(std::chrono::steady_clock::time_point until,
                        const std::function<bool(const std::string&)>& enough = {});
    bool closed_by_server() const { return closed_; }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    bool closed_ = false;
};
// Whether `raw` starts with a whole response that has a Content-Length.
bool holds_whole_response(const std::string& raw);

int count_occurrences(const std::string& haystack, const std::string& needle);

// In Prometheus text: the sum of every series of `name` whose labels include all of `labels`
// (`key="value"` each), nullopt if there is none; and the lines of `name`'s series.
std::optional<double> metric(const std::string& text, const std::string& name, const std::vector<std::string>& labels);
std::string series_of(const std::string& text, const std::string& name);
// HTTP/1.x status lines at the start of a line: how many responses a raw byte stream holds.
int count_status_lines(const std::string& raw);

}  // namespace spillway::testing
