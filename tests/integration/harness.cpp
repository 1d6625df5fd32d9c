#include "harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

namespace spillway::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

child_process::child_process(std::vector<std::string> argv, std::map<std::string, std::string> env) {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_reader_ = std::thread([this, fd = out[0]] { read_loop(fd, false); });
    err_reader_ = std::thread([this, fd = err[0]] { read_loop(fd, true); });
}

child_process::~child_process() {
    if (!wait_exit(0ms)) {
        signal(SIGTERM);
        if (!wait_exit(10s)) {
            signal(SIGKILL);
            wait_exit(10s);
        }
    }
    if (out_reader_.joinable()) out_reader_.join();
    if (err_reader_.joinable()) err_reader_.join();
}

void child_process::read_loop(int fd, bool is_stderr) {
    std::string partial;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
            std::lock_guard lock(mutex_);
            (is_stderr ? err_lines_ : out_lines_).push_back(partial.substr(0, nl));
            partial.erase(0, nl + 1);
            changed_.notify_all();
        }
    }
    ::close(fd);
}

std::optional<std::string> child_process::wait_for_line(std::string_view needle, bool on_stderr,
                                                         std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mutex_);
    std::size_t seen = 0;
    for (;;) {
        const auto& lines = on_stderr ? err_lines_ : out_lines_;
        for (; seen < lines.size(); ++seen)
            if (lines[seen].find(needle) != std::string::npos) return lines[seen];
        if (changed_.wait_until(lock, until) == std::cv_status::timeout) return std::nullopt;
    }
}

std::vector<std::string> child_process::lines(bool on_stderr) const {
    std::lock_guard lock(mutex_);
    return on_stderr ? err_lines_ : out_lines_;
}

void child_process::signal(int sig) {
    if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_code_) return exit_code_;
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return exit_code_;
        }
        if (std::chrono::steady_clock::now() >= until) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

std::string write_temp_file(const std::string& content, const std::string& suffix) {
    std::string pattern = "/tmp/spillway-test-XXXXXX" + suffix;
    int fd = mkstemps(pattern.data(), static_cast<int>(suffix.size()));
    if (fd < 0) throw std::runtime_error("mkstemps failed");
    ::close(fd);
    std::ofstream(pattern) << content;
    return pattern;
}

mock_server::mock_server(const json& config) {
    auto path = write_temp_file(config.dump(2));
    process_ = std::make_unique<child_process>(std::vector<std::string>{SPILLWAY_MOCK_BIN, "--config", path});
    auto line = process_->wait_for_line("control_port", false);
    if (!line) throw std::runtime_error("spillway-mock did not start");
    auto j = json::parse(*line);
    control_port_ = j.at("control_port").get<std::uint16_t>();
    ports_ = j.at("regions");
}

void mock_server::fault(const std::string& region, const json& spec) {
    auto r = http_call(control_port_, "POST", "/regions/" + region + "/fault", spec.dump());
    if (r.status != 200) throw std::runtime_error("mock fault failed: " + r.body);
}

void mock_server::latency(const std::string& region, int ttft_ms, int token_ms) {
    auto r = http_call(control_port_, "POST", "/regions/" + region + "/latency",
                       json{{"ttft_ms", ttft_ms}, {"token_ms", token_ms}}.dump());
    if (r.status != 200) throw std::runtime_error("mock latency failed: " + r.body);
}

json mock_server::stats(const std::string& region) {
    return http_call(control_port_, "GET", "/regions/" + region + "/stats").json_body();
}

void mock_server::reset() { http_call(control_port_, "POST", "/reset"); }

proxy_server::proxy_server(json config, std::map<std::string, std::string> env) {
    if (!config.contains("listen")) config["listen"] = {{"address", "127.0.0.1"}, {"port", 0}};
    if (!config.contains("admin")) config["admin"] = {{"address", "127.0.0.1"}, {"port", 0}};
    config_path_ = write_temp_file(config.dump(2));
    process_ = std::make_unique<child_process>(std::vector<std::string>{SPILLWAY_BIN, "--config", config_path_}, env);
    auto line = process_->wait_for_line("listening: data", true);
    if (!line) {
        std::string log;
        for (const auto& l : process_->lines(true)) log += l + "\n";
        throw std::runtime_error("spillway did not start:\n" + log);
    }
    // "listening: data 127.0.0.1:PORT (...), admin 127.0.0.1:PORT"
    auto port_after = [&](std::string_view marker) {
        auto at = line->find(marker);
        auto colon = line->find(':', at + marker.size());
        return static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)));
    };
    port_ = port_after("data ");
    admin_port_ = port_after("admin ");
}

namespace {

tcp::socket connect_to(net::io_context& io, std::uint16_t port) {
    tcp::socket s(io);
    s.connect({net::ip::make_address("127.0.0.1"), port});
    return s;
}

template <class Message>
std::map<std::string, std::string> header_map(const Message& m) {
    std::map<std::string, std::string> h;
    for (const auto& f : m) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        h[name] = std::string(f.value());
    }
    return h;
}

bhttp::request<bhttp::string_body> make_request(std::uint16_t port, const std::string& method,
                                                const std::string& target, const std::string& body,
                                                const header_list& headers) {
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    return req;
}

}  // namespace

http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body, const header_list& headers) {
    net::io_context io;
    beast::tcp_stream stream(connect_to(io, port));
    stream.expires_after(30s);
    auto req = make_request(port, method, target, body, headers);
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    bhttp::read(stream, buffer, parser);
    http_reply reply;
    reply.status = parser.get().result_int();
    reply.headers = header_map(parser.get());
    reply.body = parser.get().body();
    return reply;
}

std::string stream_reply::body() const {
    std::string all;
    for (const auto& p : pieces) all += p.data;
    return all;
}

stream_reply stream_call(std::uint16_t port, const std::string& target, const json& body, const header_list& headers) {
    net::io_context io;
    beast::tcp_stream stream(connect_to(io, port));
    stream.expires_after(60s);
    auto req = make_request(port, "POST", target, body.dump(), headers);
    stream_reply reply;
    reply.sent_at = std::chrono::steady_clock::now();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    bhttp::read_header(stream, buffer, parser);
    reply.status = parser.get().result_int();
    reply.headers = header_map(parser.get());
    char chunk[16384];
    while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        beast::error_code ec;
        bhttp::read_some(stream, buffer, parser, ec);
        if (ec == bhttp::error::need_buffer) ec = {};
        std::size_t got = sizeof chunk - parser.get().body().size;
        if (got) reply.pieces.push_back({std::chrono::steady_clock::now(), std::string(chunk, got)});
        if (ec) return reply;
    }
    reply.clean_end = true;
    return reply;
}

raw_reply raw_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout) {
    return trickle(port, {bytes}, 0ms, timeout);
}

raw_reply trickle(std::uint16_t port, const std::vector<std::string>& lines, std::chrono::milliseconds gap,
                  std::chrono::milliseconds timeout) {
    auto start = std::chrono::steady_clock::now();
    raw_client client(port);
    for (const auto& l : lines) {
        if (!client.send(l)) break;
        if (gap.count()) std::this_thread::sleep_for(gap);
    }
    raw_reply reply;
    reply.bytes = client.receive(start + timeout);
    reply.closed_by_server = client.closed_by_server();
    reply.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    return reply;
}

struct raw_client::impl {
    net::io_context io;
    tcp::socket socket;
    explicit impl(std::uint16_t port) : socket(connect_to(io, port)) {}
};

raw_client::raw_client(std::uint16_t port) : impl_(std::make_unique<impl>(port)) {}
raw_client::~raw_client() = default;

bool raw_client::send(const std::string& bytes) {
    beast::error_code ec;
    net::write(impl_->socket, net::buffer(bytes), ec);
    return !ec;
}

std::string raw_client::receive(std::chrono::steady_clock::time_point until,
                                const std::function<bool(const std::string&)>& enough) {
    std::string bytes;
    char buf[4096];
    while (!closed_ && !(enough && enough(bytes))) {
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        // Beast's expires_after only bounds asynchronous operations: use SO_RCVTIMEO, and a
        // plain recv (Asio's synchronous read waits in poll() without a timeout after EAGAIN).
        timeval tv{static_cast<time_t>(left.count() / 1000000), static_cast<suseconds_t>(left.count() % 1000000)};
        ::setsockopt(impl_->socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t n = ::recv(impl_->socket.native_handle(), buf, sizeof buf, 0);
        if (n > 0) {
            bytes.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // timed out
        if (n < 0 && errno == EINTR) continue;
        closed_ = true;
    }
    return bytes;
}

bool holds_whole_response(const std::string& raw) {
    const auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    std::string head = raw.substr(0, head_end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string_view name = "\r\ncontent-length:";
    auto at = head.find(name);
    if (at == std::string::npos) return false;
    at += name.size();
    while (at < head.size() && head[at] == ' ') ++at;
    std::size_t length = 0;
    if (std::from_chars(head.data() + at, head.data() + head.size(), length).ec != std::errc{}) return false;
    return raw.size() >= head_end + 4 + length;
}

int count_occurrences(const std::string& haystack, const std::string& needle) {
    int n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
    return n;
}

int count_status_lines(const std::string& raw) {
    int n = raw.starts_with("HTTP/1.") ? 1 : 0;
    return n + count_occurrences(raw, "\r\nHTTP/1.");
}

// The sum of every series of `name` whose labels include all of `labels` (`key="value"` each),
// in Prometheus text format; nullopt if there is no such series.
std::optional<double> metric(const std::string& text, const std::string& name, const std::vector<std::string>& labels) {
    std::optional<double> sum;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with(name + "{")) continue;
        const auto close = line.find('}');
        const std::string label_text = line.substr(0, close);
        bool all = true;
        for (const auto& l : labels) all = all && label_text.find(l) != std::string::npos;
        if (all) sum = sum.value_or(0) + std::stod(line.substr(close + 1));
    }
    return sum;
}

// The lines of `name`'s series, for failure messages.
std::string series_of(const std::string& text, const std::string& name) {
    std::string out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with(name + "{")) out += line + "\n";
    return out;
}

}  // namespace spillway::testing
