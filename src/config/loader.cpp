// Parsing and validation of the JSON config (SPEC §2). One pass over the document fills a
// config::root and collects every problem with its JSON path; the config is handed out only when
// there are none. Secrets (region and client keys) never appear in a problem message: messages
// name fields and environment variables, never echo key values.
#include "config/loader.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <utility>

namespace spillway::config {
namespace {

using json = nlohmann::json;
using std::int64_t;

// ---------------------------------------------------------------------------------------------
// Paths and small text helpers

std::string member_path(std::string_view parent, std::string_view key) {
    std::string p{parent};
    if (!p.empty()) p += '.';
    p += key;
    return p;
}

std::string element_path(std::string_view parent, std::size_t i) {
    return std::string{parent} + '[' + std::to_string(i) + ']';
}

std::string in_quotes(std::string_view s) { return "\"" + std::string{s} + '"'; }

// A value the user typed, echoed back in a message: cut, so a pasted blob cannot flood the terminal.
std::string in_quotes_cut(std::string_view s) {
    constexpr std::size_t max_shown = 40;
    return s.size() <= max_shown ? in_quotes(s) : in_quotes(std::string{s.substr(0, max_shown)} + "...");
}

// Edits (insert, delete, substitute, swap two neighbours) between a and b.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// The known key a typo most likely meant: a close misspelling, or a key the typo is the start of
// ("retry" for "retry_on").
std::optional<std::string> closest_key(std::string_view typo, const std::vector<std::string>& known) {
    std::optional<std::string> best;
    std::size_t best_distance = std::min<std::size_t>(3, typo.size() / 2 + 1);
    for (const auto& k : known) {
        if (auto d = edit_distance(typo, k); d < best_distance) {
            best_distance = d;
            best = k;
        }
    }
    if (best || typo.size() < 3) return best;
    for (const auto& k : known)
        if (k.starts_with(typo)) return k;
    return std::nullopt;
}

bool is_env_name(std::string_view s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Users do paste the key itself where the variable's name belongs. A "name" that is long and has
// no '_' is almost surely a key (Azure keys are 32+ alphanumerics), so it is never echoed.
bool looks_like_secret(std::string_view s) {
    return s.size() >= 24 && s.find('_') == std::string_view::npos;
}

bool is_readable_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return false;
    std::ifstream in(path, std::ios::binary);
    return in.good();
}

bool is_ip_literal(const std::string& address) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, address.c_str(), buf) == 1 || inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

bool is_wildcard(std::string_view address) { return address == "0.0.0.0" || address == "::"; }

// ---------------------------------------------------------------------------------------------
// Problem collection and typed reads of single JSON values

struct context {
    std::vector<problem>& problems;
    const env_lookup& env;

    void fail(std::string path, std::string message) {
        problems.push_back({std::move(path), std::move(message)});
    }
};

// An inclusive range for an integer field; its bounds shape the message ("must be > 0").
struct int_range {
    int64_t min;
    int64_t max;
};

constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();
constexpr int64_t day_ms = 24LL * 60 * 60 * 1000;

constexpr int_range any_int{INT_MIN, INT_MAX};
constexpr int_range positive_int{1, INT_MAX};
constexpr int_range positive_u32{1, UINT32_MAX};
constexpr int_range positive_count{1, int64_max};
// Token and request quotas: far above any real deployment, low enough that quota arithmetic
// (tokens x 1000, sums over regions) cannot overflow.
constexpr int_range quota_range{1, 1'000'000'000'000};
// Durations are capped at a day: nothing sensible waits longer, and the cap keeps every later
// conversion to nanoseconds and every deadline addition far from overflow.
constexpr int_range duration_ms{1, day_ms};
constexpr int_range wait_ms{0, day_ms};
constexpr int_range port_range{0, 65535};
constexpr int_range worker_range{0, 256};
constexpr int_range http_status{100, 599};
// A head's size: HTTP's parser keeps offsets into a head in 32 bits and takes at most 16 MiB
// (http/message_parser.hpp), far above any real head.
constexpr int_range header_bytes{1, 16 << 20};

std::string range_message(int_range r, int64_t v) {
    if (v < r.min) return r.min == 1 ? "must be > 0" : "must be >= " + std::to_string(r.min);
    return "must be <= " + std::to_string(r.max);
}

std::optional<int64_t> as_integer(context& ctx, const json& v, const std::string& path, int_range r) {
    if (!v.is_number_integer()) {
        ctx.fail(path, "must be an integer");
        return std::nullopt;
    }
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(r.max)) {
        ctx.fail(path, "must be <= " + std::to_string(r.max));
        return std::nullopt;
    }
    auto x = v.get<int64_t>();
    if (x < r.min || x > r.max) {
        ctx.fail(path, range_message(r, x));
        return std::nullopt;
    }
    return x;
}

template <class T, class U>
void assign(T& out, std::optional<U> v) {
    if (v) out = static_cast<T>(std::move(*v));
}

enum class need {
    optional,   // may be absent; a string may be empty
    non_empty,  // may be absent; a string, when given, must not be empty
    required,   // must be present (and a string non-empty)
};

// Reads one JSON object. Every accessor records its key as known, so finish() can report the
// remaining keys as unknown: the keys a section reads are, by construction, the keys it accepts.
class object_reader {
public:
    // `value` null means the section is absent: every read yields nothing and defaults stand.
    object_reader(context& ctx, const json* value, std::string path) : ctx_(ctx), path_(std::move(path)) {
        if (value && !value->is_object()) {
            ctx_.fail(path_, path_.empty() ? "the config must be a JSON object" : "must be an object");
            malformed_ = true;
        } else {
            object_ = value;
        }
    }

    bool present() const { return object_ != nullptr; }
    bool malformed() const { return malformed_; }  // given, but not an object (already reported)
    bool has(std::string_view key) const { return object_ && object_->contains(std::string{key}); }
    const std::string& path() const { return path_; }
    std::string path_of(std::string_view key) const { return member_path(path_, key); }
    context& ctx() { return ctx_; }

    void fail(std::string_view key, std::string message) { ctx_.fail(path_of(key), std::move(message)); }
    void fail_here(std::string message) { ctx_.fail(path_, std::move(message)); }

    std::optional<std::string> string(std::string_view key, need n = need::optional) {
        const json* v = claim(key, n);
        if (!v) return std::nullopt;
        if (!v->is_string()) {
            fail(key, "must be a string");
            return std::nullopt;
        }
        auto s = v->get<std::string>();
        if (s.empty() && n != need::optional) {
            fail(key, "must not be empty");
            return std::nullopt;
        }
        return s;
    }

    std::optional<int64_t> integer(std::string_view key, int_range r, need n = need::optional) {
        const json* v = claim(key, n);
        if (!v) return std::nullopt;
        return as_integer(ctx_, *v, path_of(key), r);
    }

    std::optional<double> number(std::string_view key) {
        const json* v = claim(key, need::optional);
        if (!v) return std::nullopt;
        if (!v->is_number() || !std::isfinite(v->get<double>())) {
            fail(key, "must be a number");
            return std::nullopt;
        }
        return v->get<double>();
    }

    // A number > 0 (weights).
    std::optional<double> positive_number(std::string_view key) {
        auto v = number(key);
        if (v && *v <= 0) {
            fail(key, "must be > 0");
            return std::nullopt;
        }
        return v;
    }

    std::optional<bool> boolean(std::string_view key) {
        const json* v = claim(key, need::optional);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) {
            fail(key, "must be true or false");
            return std::nullopt;
        }
        return v->get<bool>();
    }

    // A string from a fixed set, mapped to its typed value.
    template <class E>
    std::optional<E> choice(std::string_view key, std::initializer_list<std::pair<std::string_view, E>> options) {
        std::string expected;
        for (const auto& [text, value] : options) {
            if (!expected.empty()) expected += " | ";
            expected += in_quotes(text);
        }
        const json* v = claim(key, need::optional);
        if (!v) return std::nullopt;
        if (v->is_string()) {
            const auto& s = v->get_ref<const std::string&>();
            for (const auto& [text, value] : options)
                if (s == text) return value;
            fail(key, "must be one of " + expected + " (got " + in_quotes_cut(s) + ")");
        } else {
            fail(key, "must be one of " + expected);
        }
        return std::nullopt;
    }

    const json* array(std::string_view key, need n = need::optional) {
        const json* v = claim(key, n);
        if (v && !v->is_array()) {
            fail(key, "must be an array");
            return nullptr;
        }
        return v;
    }

    object_reader object(std::string_view key) { return object_reader{ctx_, claim(key, need::optional), path_of(key)}; }

    void finish() {
        if (!object_) return;
        for (auto it = object_->begin(); it != object_->end(); ++it) {
            if (std::find(known_.begin(), known_.end(), it.key()) != known_.end()) continue;
            std::string message = "unknown key";
            if (auto hint = closest_key(it.key(), known_)) message += " (did you mean " + in_quotes(*hint) + "?)";
            ctx_.fail(path_of(it.key()), std::move(message));
        }
    }

private:
    const json* claim(std::string_view key, need n) {
        known_.emplace_back(key);
        if (!object_) return nullptr;
        auto it = object_->find(std::string{key});
        if (it == object_->end()) {
            if (n == need::required) fail(key, "is required");
            return nullptr;
        }
        return &*it;
    }

    context& ctx_;
    std::string path_;
    const json* object_ = nullptr;
    bool malformed_ = false;
    std::vector<std::string> known_;
};

template <class Fn>
void for_each_element(const json* array, const std::string& path, Fn&& fn) {
    if (!array) return;
    for (std::size_t i = 0; i < array->size(); ++i) fn((*array)[i], element_path(path, i));
}

// ---------------------------------------------------------------------------------------------
// Secrets

struct secret {
    bool given = false;  // either field is present (even if it turned out invalid)
    std::optional<std::string> value;
};

// A secret written inline (`literal_key`) or, preferably, named by an environment variable
// (`env_key`). An unset variable is an error naming it: a silent empty key would only surface
// later as a confusing 401 from upstream.
secret read_secret(object_reader& r, std::string_view env_key, std::string_view literal_key) {
    secret s;
    s.given = r.has(env_key) || r.has(literal_key);
    auto env_name = r.string(env_key, need::non_empty);
    auto literal = r.string(literal_key, need::non_empty);
    if (r.has(env_key) && r.has(literal_key)) {
        r.fail_here(std::string{env_key} + " and " + std::string{literal_key} + " are both set; keep one (" +
                    std::string{env_key} + " is preferred)");
        return s;
    }
    if (env_name) {
        if (!is_env_name(*env_name) || looks_like_secret(*env_name)) {
            r.fail(env_key, "must be the name of an environment variable (letters, digits, '_'), not the key itself");
            return s;
        }
        auto value = r.ctx().env(*env_name);
        if (!value)
            r.fail(env_key, "environment variable " + *env_name + " is not set");
        else if (value->empty())
            r.fail(env_key, "environment variable " + *env_name + " is empty");
        else
            s.value = std::move(*value);
    } else if (literal) {
        s.value = std::move(*literal);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Upstream URLs

std::string lower(std::string_view s) {
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool has_space_or_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// Splits an upstream URL into what the client needs. IPv6 hosts are written in brackets and
// stored without them. Messages never echo the URL (it might carry credentials).
std::optional<endpoint> parse_endpoint(std::string_view url, std::string& error) {
    endpoint ep;
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        error = "must be an http:// or https:// URL";
        return std::nullopt;
    }
    auto scheme = lower(url.substr(0, scheme_end));
    if (scheme == "https") {
        ep.tls = true;
    } else if (scheme != "http") {
        error = "unsupported scheme " + in_quotes_cut(scheme) + " (use http or https)";
        return std::nullopt;
    }
    auto rest = url.substr(scheme_end + 3);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        error = "must not contain a query or fragment";
        return std::nullopt;
    }
    auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (authority.find('@') != std::string_view::npos) {
        error = "must not contain credentials (user:password@); use api_key_env";
        return std::nullopt;
    }

    std::string_view host = authority;
    std::optional<std::string_view> port_text;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) {
            error = "has an unterminated IPv6 address ('[' without ']')";
            return std::nullopt;
        }
        host = authority.substr(1, close - 1);
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                error = "has unexpected text after the IPv6 address";
                return std::nullopt;
            }
            port_text = after.substr(1);
        }
    } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port_text = authority.substr(colon + 1);
        if (port_text->find(':') != std::string_view::npos) {
            error = "IPv6 addresses must be written in brackets, e.g. http://[::1]:8080";
            return std::nullopt;
        }
    }
    if (host.empty()) {
        error = "has no host";
        return std::nullopt;
    }
    if (has_space_or_control(host) || has_space_or_control(path)) {
        error = "must not contain spaces or control characters";
        return std::nullopt;
    }
    ep.host = std::string{host};

    if (port_text) {
        bool digits = !port_text->empty() && port_text->size() <= 5 &&
                      std::all_of(port_text->begin(), port_text->end(), [](char c) { return c >= '0' && c <= '9'; });
        int port = digits ? std::stoi(std::string{*port_text}) : 0;
        if (port < 1 || port > 65535) {
            error = "has an invalid port (must be 1-65535)";
            return std::nullopt;
        }
        ep.port = static_cast<std::uint16_t>(port);
    } else {
        ep.port = ep.tls ? 443 : 80;
    }

    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    ep.path_prefix = std::string{path};
    return ep;
}

// The URL as spillway understood it (default port omitted), for --check-config.
std::string endpoint_to_url(const endpoint& ep) {
    std::string url = ep.tls ? "https://" : "http://";
    url += ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
    if (ep.port != (ep.tls ? 443 : 80)) url += ":" + std::to_string(ep.port);
    url += ep.path_prefix;
    return url;
}

// ---------------------------------------------------------------------------------------------
// Sections

// Where each deployment sits, for the cross-region name checks that run after all regions.
struct deployment_site {
    std::string path;
    std::string model;
    std::string name;
};

// An azure deployment name becomes a URL path segment, an api-version a query value.
bool is_url_safe(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
    });
}

deployment read_deployment(context& ctx, const json& value, const std::string& path, const region& reg) {
    deployment d;
    // The region's priority and weight are the defaults for its deployments.
    d.priority = reg.priority;
    d.weight = reg.weight;

    object_reader r{ctx, &value, path};
    assign(d.model, r.string("model", need::required));
    assign(d.name, r.string("name", need::required));
    if (reg.kind == region_kind::azure && !d.name.empty() && !is_url_safe(d.name))
        r.fail("name", "an azure deployment name may only contain letters, digits, '-', '_', '.' and '~'");
    assign(d.model_version, r.string("model_version"));
    if (auto v = r.string("api_version", need::non_empty)) {
        if (is_url_safe(*v))
            d.api_version = std::move(*v);
        else
            r.fail("api_version", "must look like 2024-10-21 or 2025-01-01-preview");
    }
    assign(d.sku, r.choice<sku>("sku", {{"standard", sku::standard},
                                        {"provisioned", sku::provisioned},
                                        {"global-standard", sku::global_standard},
                                        {"data-zone-standard", sku::data_zone_standard}}));
    assign(d.tpm, r.integer("tpm", quota_range));
    assign(d.rpm, r.integer("rpm", quota_range));
    assign(d.priority, r.integer("priority", any_int));
    assign(d.weight, r.positive_number("weight"));
    r.finish();
    return d;
}

region read_region(context& ctx, const json& value, const std::string& path, std::vector<deployment_site>& sites) {
    region reg;
    object_reader r{ctx, &value, path};
    if (!r.present()) return reg;

    assign(reg.name, r.string("name", need::required));
    if (auto url = r.string("endpoint", need::required)) {
        std::string error;
        if (auto ep = parse_endpoint(*url, error)) {
            reg.upstream = std::move(*ep);
            reg.endpoint_url = std::move(*url);
        } else {
            r.fail("endpoint", std::move(error));
        }
    }
    assign(reg.kind, r.choice<region_kind>("kind", {{"azure", region_kind::azure}, {"openai", region_kind::openai}}));

    auto key = read_secret(r, "api_key_env", "api_key");
    if (key.value)
        reg.api_key = std::move(*key.value);
    else if (!key.given && reg.kind == region_kind::azure)
        r.fail_here("an azure region needs api_key_env (or api_key)");

    assign(reg.data_zone, r.string("data_zone"));
    assign(reg.priority, r.integer("priority", any_int));
    assign(reg.weight, r.positive_number("weight"));
    assign(reg.tls_verify, r.boolean("tls_verify"));
    if (auto ca = r.string("ca_file", need::non_empty)) {
        if (!is_readable_file(*ca)) r.fail("ca_file", "cannot read file " + in_quotes(*ca));
        reg.ca_file = std::move(*ca);
    }

    const std::string deployments_path = r.path_of("deployments");
    if (const json* list = r.array("deployments", need::required)) {
        if (list->empty()) r.fail("deployments", "must contain at least one deployment");
        std::map<std::string, std::string> seen;  // deployment name -> its path
        for_each_element(list, deployments_path, [&](const json& item, const std::string& item_path) {
            deployment d = read_deployment(ctx, item, item_path, reg);
            if (!d.name.empty()) {
                auto [it, inserted] = seen.emplace(d.name, item_path);
                if (!inserted)
                    ctx.fail(member_path(item_path, "name"),
                             "duplicate deployment name " + in_quotes(d.name) + " in this region (also " + it->second + ")");
            }
            if (!d.model.empty() && !d.name.empty()) sites.push_back({item_path, d.model, d.name});
            reg.deployments.push_back(std::move(d));
        });
    }
    r.finish();
    return reg;
}

// Clients ask for a model by its `model` or by any deployment `name` of it (SPEC §3), so every
// such name must lead to exactly one model.
void check_model_names(context& ctx, const std::vector<deployment_site>& sites) {
    std::set<std::string> models;
    for (const auto& s : sites) models.insert(s.model);
    std::map<std::string, const deployment_site*> alias_owner;
    for (const auto& s : sites) {
        if (s.name != s.model && models.contains(s.name)) {
            ctx.fail(member_path(s.path, "name"), "deployment name " + in_quotes(s.name) +
                                                      " is also the name of another model; a request for it would be ambiguous");
            continue;
        }
        auto [it, inserted] = alias_owner.emplace(s.name, &s);
        if (!inserted && it->second->model != s.model)
            ctx.fail(member_path(s.path, "name"), "deployment name " + in_quotes(s.name) + " already stands for model " +
                                                      in_quotes(it->second->model) + " (" + it->second->path +
                                                      "); one name must route to one model");
    }
}

std::optional<tls_files> read_tls(object_reader r) {
    if (!r.present()) return std::nullopt;
    auto cert = r.string("cert_file", need::required);
    auto key = r.string("key_file", need::required);
    if (cert && !is_readable_file(*cert)) r.fail("cert_file", "cannot read file " + in_quotes(*cert));
    if (key && !is_readable_file(*key)) r.fail("key_file", "cannot read file " + in_quotes(*key));
    r.finish();
    if (!cert || !key) return std::nullopt;
    return tls_files{std::move(*cert), std::move(*key)};
}

// The admin listener has no TLS (it belongs on loopback or a private network), so `tls` is an
// unknown key there rather than a setting that would be silently ignored.
void read_listener(object_reader r, listener& out, bool allow_tls) {
    if (auto address = r.string("address", need::non_empty)) {
        if (is_ip_literal(*address))
            out.address = std::move(*address);
        else
            r.fail("address", "must be an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::)");
    }
    assign(out.port, r.integer("port", port_range));
    if (allow_tls) out.tls = read_tls(r.object("tls"));
    r.finish();
}

void read_client_key(context& ctx, const json& value, const std::string& path, auth& out,
                     std::map<std::string, std::string>& names, std::map<std::string, std::string>& values) {
    client_key k;
    object_reader r{ctx, &value, path};
    if (!r.present()) return;
    if (auto name = r.string("name", need::required)) {
        auto [it, inserted] = names.emplace(*name, path);
        if (!inserted) r.fail("name", "duplicate key name " + in_quotes(*name) + " (also " + it->second + ")");
        k.name = std::move(*name);
    }
    auto s = read_secret(r, "key_env", "key");
    if (!s.given) r.fail_here("needs key_env (or key)");
    assign(k.rpm, r.integer("rpm", positive_u32));
    assign(k.tpm, r.integer("tpm", positive_u32));
    r.finish();
    if (s.value) {
        // Two clients sharing a key could not be told apart in limits or logs.
        auto [it, inserted] = values.emplace(*s.value, path);
        if (!inserted)
            r.fail(r.has("key_env") ? "key_env" : "key", "same key as " + it->second + "; every client needs its own key");
        k.key = std::move(*s.value);
        out.keys.push_back(std::move(k));
    }
}

void read_auth(object_reader r, auth& out) {
    if (r.malformed()) return;
    assign(out.mode, r.choice<auth_mode>("mode", {{"keys", auth_mode::keys}, {"none", auth_mode::none}}));
    std::map<std::string, std::string> names;   // key name -> path
    std::map<std::string, std::string> values;  // key value -> path (never printed)
    const std::string keys_path = r.path_of("keys");
    const json* keys = r.array("keys");
    for_each_element(keys, keys_path, [&](const json& item, const std::string& item_path) {
        read_client_key(r.ctx(), item, item_path, out, names, values);
    });
    const bool keys_malformed = r.has("keys") && !keys;  // already reported
    if (out.mode == auth_mode::keys && !keys_malformed && (!keys || keys->empty()))
        r.ctx().fail(keys_path,
                     "at least one key is required when auth.mode is \"keys\" (the default); "
                     "set auth.mode to \"none\" to accept requests without a key");
    r.finish();
}

void read_routing(object_reader r, routing& out) {
    assign(out.max_attempts, r.integer("max_attempts", positive_int));
    assign(out.request_timeout, r.integer("request_timeout_ms", duration_ms));
    assign(out.connect_timeout, r.integer("connect_timeout_ms", duration_ms));
    assign(out.stream_idle_timeout, r.integer("stream_idle_timeout_ms", wait_ms));
    const std::string retry_path = r.path_of("retry_on");
    if (const json* list = r.array("retry_on")) {
        std::vector<int> codes;
        for_each_element(list, retry_path, [&](const json& item, const std::string& item_path) {
            if (auto code = as_integer(r.ctx(), item, item_path, http_status)) codes.push_back(static_cast<int>(*code));
        });
        out.retry_on = std::move(codes);
    }
    assign(out.max_wait, r.integer("max_wait_ms", wait_ms));
    assign(out.default_max_tokens, r.integer("default_max_tokens", positive_count));
    r.finish();
}

void read_health(object_reader r, health& out) {
    assign(out.default_cooldown, r.integer("default_cooldown_ms", duration_ms));
    auto max_cooldown = r.integer("max_cooldown_ms", duration_ms);
    assign(out.max_cooldown, max_cooldown);
    if (max_cooldown && out.max_cooldown < out.default_cooldown)
        r.fail("max_cooldown_ms", "must be >= default_cooldown_ms (" + std::to_string(out.default_cooldown.count()) + ")");
    else if (!max_cooldown && r.has("default_cooldown_ms") && out.max_cooldown < out.default_cooldown)
        r.fail("default_cooldown_ms", "must be <= max_cooldown_ms (" + std::to_string(out.max_cooldown.count()) + ")");
    assign(out.failure_threshold, r.integer("failure_threshold", positive_int));
    assign(out.open, r.integer("open_ms", duration_ms));
    if (auto alpha = r.number("latency_ewma_alpha")) {
        if (*alpha > 0 && *alpha <= 1)
            out.latency_ewma_alpha = *alpha;
        else
            r.fail("latency_ewma_alpha", "must be > 0 and <= 1");
    }
    r.finish();
}

void read_limits(object_reader r, limits& out) {
    assign(out.max_body_bytes, r.integer("max_body_bytes", positive_count));
    assign(out.header_timeout, r.integer("header_timeout_ms", duration_ms));
    assign(out.idle_timeout, r.integer("idle_timeout_ms", duration_ms));
    assign(out.max_connections, r.integer("max_connections", positive_u32));
    assign(out.max_header_bytes, r.integer("max_header_bytes", header_bytes));
    assign(out.upstream_idle_per_region, r.integer("upstream_idle_per_region", positive_u32));
    r.finish();
}

void read_logging(object_reader r, logging& out) {
    assign(out.level, r.choice<std::string_view>("level", {{"trace", "trace"},
                                                           {"debug", "debug"},
                                                           {"info", "info"},
                                                           {"warn", "warn"},
                                                           {"error", "error"},
                                                           {"off", "off"}}));
    assign(out.format, r.choice<std::string_view>("format", {{"text", "text"}, {"json", "json"}}));
    assign(out.access_log, r.boolean("access_log"));
    r.finish();
}

root read_root(context& ctx, const json& doc, std::vector<deployment_site>& sites) {
    root cfg;
    object_reader r{ctx, &doc, ""};
    if (!r.present()) return cfg;

    read_listener(r.object("listen"), cfg.listen, /*allow_tls=*/true);
    read_listener(r.object("admin"), cfg.admin, /*allow_tls=*/false);
    if (cfg.listen.port != 0 && cfg.listen.port == cfg.admin.port &&
        (cfg.listen.address == cfg.admin.address || is_wildcard(cfg.listen.address) || is_wildcard(cfg.admin.address)))
        ctx.fail("admin.port", "must differ from listen.port (both would bind " + std::to_string(cfg.admin.port) + ")");
    assign(cfg.workers, r.integer("workers", worker_range));
    read_auth(r.object("auth"), cfg.auth);

    if (const json* list = r.array("regions", need::required)) {
        if (list->empty()) r.fail("regions", "must contain at least one region");
        std::map<std::string, std::string> names;  // region name -> its path
        for_each_element(list, "regions", [&](const json& item, const std::string& item_path) {
            region reg = read_region(ctx, item, item_path, sites);
            if (!reg.name.empty()) {
                auto [it, inserted] = names.emplace(reg.name, item_path);
                if (!inserted)
                    ctx.fail(member_path(item_path, "name"),
                             "duplicate region name " + in_quotes(reg.name) + " (also " + it->second + ")");
            }
            cfg.regions.push_back(std::move(reg));
        });
    }

    read_routing(r.object("routing"), cfg.routing);
    read_health(r.object("health"), cfg.health);
    read_limits(r.object("limits"), cfg.limits);
    read_logging(r.object("log"), cfg.log);
    r.finish();
    return cfg;
}

// ---------------------------------------------------------------------------------------------
// JSON syntax

// nlohmann keeps the last of two equal keys; a duplicated key is as silent as a typo, so it is
// reported too. The parser's callback sees the document as a stream of events; a stack of frames
// rebuilds the JSON path of each key.
class duplicate_key_finder {
public:
    explicit duplicate_key_finder(std::vector<problem>& out) : out_(out) {}

    bool on_event(json::parse_event_t event, const json& parsed) {
        using ev = json::parse_event_t;
        switch (event) {
            case ev::object_start:
            case ev::array_start:
                enter_element();
                frames_.push_back({event == ev::object_start, {}, {}, 0});
                break;
            case ev::key: {
                auto& f = frames_.back();
                auto key = parsed.get<std::string>();
                if (!f.keys.insert(key).second) out_.push_back({member_path(current_object_path(), key), "duplicate key"});
                f.key = std::move(key);
                break;
            }
            case ev::value: enter_element(); break;
            case ev::object_end:
            case ev::array_end: frames_.pop_back(); break;
        }
        return true;
    }

private:
    struct frame {
        bool object;
        std::set<std::string> keys;  // object: keys seen so far
        std::string key;             // object: key of the member being parsed
        std::size_t elements;        // array: elements started so far
    };

    void enter_element() {
        if (!frames_.empty() && !frames_.back().object) ++frames_.back().elements;
    }

    // The path of the innermost object: every enclosing frame contributes its current member.
    std::string current_object_path() const {
        std::string path;
        for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
            const auto& f = frames_[i];
            path = f.object ? member_path(path, f.key) : element_path(path, f.elements - 1);
        }
        return path;
    }

    std::vector<problem>& out_;
    std::vector<frame> frames_;
};

// nlohmann's message, without its exception-id prefix and without the "last read: '...'" excerpt:
// that excerpt is raw file content and may be part of a key.
std::string describe_json_error(const json::exception& e) {
    std::string m = e.what();
    if (auto bracket = m.find("] "); m.starts_with("[json.exception.") && bracket != std::string::npos) m.erase(0, bracket + 2);
    for (std::string_view prefix : {"parse error at ", "parse error: "})
        if (m.starts_with(prefix)) m.erase(0, prefix.size());
    if (auto start = m.find("; last read: '"); start != std::string::npos) {
        auto expected = m.rfind("'; expected ");
        if (expected != std::string::npos && expected > start)
            m.erase(start, expected + 1 - start);
        else
            m.erase(start);
    }
    constexpr std::string_view overflow = "number overflow";  // followed by the raw token
    if (auto start = m.find(overflow); start != std::string::npos) m.erase(start + overflow.size());
    return m;
}

// ---------------------------------------------------------------------------------------------
// Routing table text

std::string format_number(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
}

std::string format_address(const listener& l) {
    std::string host = l.address.find(':') != std::string::npos ? "[" + l.address + "]" : l.address;
    return host + ":" + std::to_string(l.port);
}

// Left-aligned columns, two spaces apart.
std::string format_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line{indent};
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
        }
        out += line + "\n";
    }
    return out;
}

}  // namespace

env_lookup process_env() {
    // getenv is safe here: spillway never modifies its environment after start.
    return [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (!value) return std::nullopt;
        return std::string{value};
    };
}

load_result parse(std::string_view json_text, const env_lookup& env) {
    load_result result;
    json doc;
    try {
        duplicate_key_finder duplicates{result.problems};
        doc = json::parse(
            json_text.begin(), json_text.end(),
            [&duplicates](int /*depth*/, json::parse_event_t event, json& parsed) {
                return duplicates.on_event(event, parsed);
            },
            /*allow_exceptions=*/true, /*ignore_comments=*/true);
    } catch (const json::exception& e) {
        // Duplicates found before the syntax error would only be noise next to it.
        result.problems.clear();
        result.problems.push_back({"", "not valid JSON: " + describe_json_error(e)});
        return result;
    }

    context ctx{result.problems, env};
    std::vector<deployment_site> sites;
    root cfg = read_root(ctx, doc, sites);
    check_model_names(ctx, sites);
    if (result.problems.empty()) result.config = std::make_shared<const root>(std::move(cfg));
    return result;
}

load_result load_file(const std::string& path, const env_lookup& env) {
    auto cannot_read = [&](std::string why) {
        load_result r;
        r.problems.push_back({"", "cannot read config file " + in_quotes(path) + ": " + why});
        return r;
    };
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return cannot_read("is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) return cannot_read(std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return cannot_read(std::strerror(errno));
    return parse(text.str(), env);
}

std::string describe_routing_table(const root& cfg) {
    std::string out;
    {
        std::vector<std::vector<std::string>> rows;
        rows.push_back({"listen", format_address(cfg.listen) + (cfg.listen.tls ? " (https)" : " (http)")});
        rows.push_back({"admin", format_address(cfg.admin)});
        rows.push_back({"workers", cfg.workers == 0 ? "one per core" : std::to_string(cfg.workers)});
        std::string auth_text;
        if (cfg.auth.mode == auth_mode::none) {
            auth_text = "none (requests need no key)";
        } else {
            // Names and limits only: key values are never printed.
            auth_text = "keys:";
            for (std::size_t i = 0; i < cfg.auth.keys.size(); ++i) {
                const auto& k = cfg.auth.keys[i];
                auth_text += (i == 0 ? " " : ", ") + k.name;
                std::string limits;
                if (k.rpm) limits += "rpm " + std::to_string(*k.rpm);
                if (k.tpm) limits += (limits.empty() ? "" : ", ") + std::string{"tpm "} + std::to_string(*k.tpm);
                if (!limits.empty()) auth_text += " (" + limits + ")";
            }
        }
        rows.push_back({"auth", auth_text});
        std::string retry;
        for (int code : cfg.routing.retry_on) retry += (retry.empty() ? "" : " ") + std::to_string(code);
        rows.push_back({"routing", "max_attempts " + std::to_string(cfg.routing.max_attempts) + ", request timeout " +
                                       std::to_string(cfg.routing.request_timeout.count()) + " ms, retry on " +
                                       (retry.empty() ? "(nothing)" : retry)});
        out += format_table(rows, "");
    }

    struct entry {
        const region* reg;
        const deployment* dep;
    };
    std::map<std::string, std::vector<entry>> by_model;  // sorted by model name
    for (const auto& reg : cfg.regions)
        for (const auto& dep : reg.deployments) by_model[dep.model].push_back({&reg, &dep});

    bool any_derived_rpm = false;
    for (auto& [model, entries] : by_model) {
        std::stable_sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
            if (a.dep->priority != b.dep->priority) return a.dep->priority < b.dep->priority;
            if (a.reg->name != b.reg->name) return a.reg->name < b.reg->name;
            return a.dep->name < b.dep->name;
        });
        std::set<std::string> aliases;
        for (const auto& e : entries)
            if (e.dep->name != model) aliases.insert(e.dep->name);
        std::string alias_text;
        for (const auto& a : aliases) alias_text += (alias_text.empty() ? "" : ", ") + a;

        out += "\nmodel " + model + "\n";
        out += "  aliases: " + (alias_text.empty() ? std::string{"(none)"} : alias_text) + "\n";
        std::vector<std::vector<std::string>> rows;
        rows.push_back({"PRIORITY", "REGION", "DEPLOYMENT", "KIND", "SKU", "WEIGHT", "TPM", "RPM", "DATA_ZONE", "ENDPOINT"});
        for (const auto& e : entries) {
            const auto& d = *e.dep;
            std::string rpm = "-";
            if (auto r = root::effective_rpm(d)) {
                rpm = std::to_string(*r);
                if (!d.rpm) {
                    rpm += "*";
                    any_derived_rpm = true;
                }
            }
            rows.push_back({std::to_string(d.priority), e.reg->name, d.name, std::string{to_string(e.reg->kind)},
                            std::string{to_string(d.sku)}, format_number(d.weight), d.tpm ? std::to_string(*d.tpm) : "-",
                            rpm, e.reg->data_zone.empty() ? "-" : e.reg->data_zone, endpoint_to_url(e.reg->upstream)});
        }
        out += format_table(rows, "  ");
    }
    if (any_derived_rpm) out += "\n* rpm derived from tpm (tpm / 1000 x 6, as Azure does)\n";
    return out;
}

}  // namespace spillway::config
