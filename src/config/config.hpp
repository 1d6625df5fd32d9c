// The typed, immutable configuration (SPEC §2). JSON appears only in this module; everything
// else takes `const config::root&` (a reload swaps one shared_ptr<const root>).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::config {

using std::chrono::milliseconds;

struct tls_files {
    std::string cert_file;
    std::string key_file;
};

struct listener {
    std::string address = "0.0.0.0";  // an IPv4 or IPv6 literal (the loader rejects host names)
    std::uint16_t port = 8080;
    std::optional<tls_files> tls;  // absent = plain HTTP
};

struct client_key {
    std::string name;
    std::string key;                  // resolved secret (from `key` or `key_env`)
    std::optional<std::uint32_t> rpm;  // per-client limits (enforced by quota/)
    std::optional<std::uint32_t> tpm;
};

enum class auth_mode { keys, none };

struct auth {
    auth_mode mode = auth_mode::keys;
    std::vector<client_key> keys;
};

enum class region_kind { azure, openai };
enum class sku { standard, provisioned, global_standard, data_zone_standard };

struct deployment {
    std::string model;  // the name clients use
    std::string name;   // the deployment (azure) or upstream model id (openai) in its region
    std::string model_version;
    std::string api_version = "2024-10-21";
    config::sku sku = sku::standard;
    std::optional<std::uint64_t> tpm;
    std::optional<std::uint64_t> rpm;  // defaults to tpm/1000*6 when tpm is set
    int priority = 0;                  // lower = preferred
    double weight = 1.0;               // > 0
};

// A parsed `endpoint` URL.
struct endpoint {
    bool tls = false;
    std::string host;
    std::uint16_t port = 0;
    std::string path_prefix;  // without trailing '/', may be empty
};

struct region {
    std::string name;
    endpoint upstream;
    std::string endpoint_url;  // as written, for display
    region_kind kind = region_kind::azure;
    std::string api_key;  // resolved secret; never logged or shown
    std::string data_zone;
    int priority = 0;
    double weight = 1.0;
    bool tls_verify = true;
    std::string ca_file;  // extra CA bundle for this upstream; empty = system store
    std::vector<deployment> deployments;
};

struct routing {
    int max_attempts = 3;
    milliseconds request_timeout{600000};
    milliseconds connect_timeout{3000};
    // The longest an upstream may go silent while its answer's body (an SSE stream's events) is
    // relayed; 0 = only request_timeout bounds it. Generous by default: a reasoning model may
    // think for minutes between its first chunk and its first token.
    milliseconds stream_idle_timeout{300000};
    std::vector<int> retry_on{408, 429, 500, 502, 503, 504};
    milliseconds max_wait{0};
    std::uint64_t default_max_tokens = 1024;
};

struct health {
    milliseconds default_cooldown{10000};
    milliseconds max_cooldown{300000};
    int failure_threshold = 3;
    milliseconds open{15000};
    double latency_ewma_alpha = 0.2;
};

struct limits {
    std::uint64_t max_body_bytes = 33554432;
    milliseconds header_timeout{10000};
    milliseconds idle_timeout{120000};
    std::uint32_t max_connections = 20000;
    std::uint32_t max_header_bytes = 65536;         // extension: request header block limit
    std::uint32_t upstream_idle_per_region = 256;  // extension: idle pool size per worker and region
};

struct logging {
    std::string level = "info";      // trace|debug|info|warn|error|off
    std::string format = "text";     // text|json (diagnostics on stderr)
    bool access_log = true;          // one JSON line per request on stdout
};

struct root {
    listener listen;
    listener admin{"127.0.0.1", 9090, std::nullopt};
    unsigned workers = 0;  // 0 = one per core
    config::auth auth;
    std::vector<region> regions;
    config::routing routing;
    config::health health;
    config::limits limits;
    config::logging log;

    // Lookup helpers: the effective rpm of a deployment (explicit, or derived from tpm as Azure does).
    // Azure never sells less than 1000 tpm; the floor of 1 keeps a smaller configured tpm from
    // deriving a deployment that could never be picked.
    static std::optional<std::uint64_t> effective_rpm(const deployment& d) {
        if (d.rpm) return d.rpm;
        if (d.tpm) return std::max<std::uint64_t>(1, *d.tpm / 1000 * 6);
        return std::nullopt;
    }
};

std::string_view to_string(region_kind k);
std::string_view to_string(sku s);

}  // namespace spillway::config
