// JSON -> mock_config, collecting every problem with its JSON path instead of stopping at the first.
#include "mock/mock_config.hpp"

#include <nlohmann/json.hpp>

#include <limits>
#include <set>

namespace spillway::mock {

namespace {

using json = nlohmann::json;

// Walks one JSON object: typed getters record a problem (with path) instead of throwing,
// and finish() reports every key nobody asked for.
class object_reader {
public:
    object_reader(const json& j, std::string path, std::vector<std::string>& problems)
        : j_(j), path_(std::move(path)), problems_(problems) {}

    std::string key_path(std::string_view key) const {
        return path_.empty() ? std::string{key} : path_ + "." + std::string{key};
    }

    const json* find(std::string_view key) {
        seen_.insert(std::string{key});
        auto it = j_.find(key);
        return it == j_.end() ? nullptr : &*it;
    }

    void get_string(std::string_view key, std::string& out, bool required = false) {
        const json* v = find(key);
        if (!v) {
            if (required) problems_.push_back(key_path(key) + ": is required");
            return;
        }
        if (!v->is_string()) {
            problems_.push_back(key_path(key) + ": must be a string");
            return;
        }
        out = v->get<std::string>();
    }

    template <class T>
    void get_unsigned(std::string_view key, T& out, std::uint64_t max = std::numeric_limits<T>::max()) {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<std::int64_t>() >= 0)) {
            problems_.push_back(key_path(key) + ": must be an unsigned integer");
            return;
        }
        auto n = v->get<std::uint64_t>();
        if (n > max) {
            problems_.push_back(key_path(key) + ": must be <= " + std::to_string(max));
            return;
        }
        out = static_cast<T>(n);
    }

    void get_ms(std::string_view key, std::chrono::milliseconds& out) {
        std::uint64_t ms = static_cast<std::uint64_t>(out.count());
        get_unsigned(key, ms, 24ULL * 3600 * 1000);
        out = std::chrono::milliseconds{ms};
    }

    void finish() {
        for (const auto& [k, v] : j_.items())
            if (!seen_.contains(k)) problems_.push_back(key_path(k) + ": unknown key");
    }

private:
    const json& j_;
    std::string path_;
    std::vector<std::string>& problems_;
    std::set<std::string, std::less<>> seen_;
};

void parse_deployment(const json& j, const std::string& path, deployment_spec& d,
                      std::vector<std::string>& problems) {
    if (!j.is_object()) {
        problems.push_back(path + ": must be an object");
        return;
    }
    object_reader r{j, path, problems};
    r.get_string("name", d.name, true);
    r.get_string("model", d.model);
    r.get_unsigned("tpm", d.tpm);
    r.get_unsigned("rpm", d.rpm);
    r.finish();
    if (d.model.empty()) d.model = d.name;
}

void parse_region(const json& j, const std::string& path, region_spec& rs, std::vector<std::string>& problems) {
    if (!j.is_object()) {
        problems.push_back(path + ": must be an object");
        return;
    }
    object_reader r{j, path, problems};
    r.get_string("name", rs.name, true);
    r.get_string("address", rs.address);
    r.get_unsigned("port", rs.port);
    r.get_string("api_key", rs.api_key);
    r.get_ms("ttft_ms", rs.latency.ttft);
    r.get_ms("token_ms", rs.latency.per_token);
    r.get_unsigned("completion_tokens", rs.completion_tokens, 100'000);
    r.get_unsigned("default_max_tokens", rs.default_max_tokens);
    if (const json* deps = r.find("deployments")) {
        if (!deps->is_array()) {
            problems.push_back(r.key_path("deployments") + ": must be an array");
        } else {
            for (std::size_t i = 0; i < deps->size(); ++i) {
                deployment_spec d;
                parse_deployment((*deps)[i], r.key_path("deployments") + "[" + std::to_string(i) + "]", d, problems);
                rs.deployments.push_back(std::move(d));
            }
        }
    }
    r.finish();
}

}  // namespace

std::uint64_t effective_rpm(const deployment_spec& d) {
    if (d.rpm != 0) return d.rpm;
    return d.tpm / 1000 * 6;  // Azure's classic ratio; tpm 0 stays unlimited
}

std::vector<std::string> parse_mock_config(std::string_view text, mock_config& out) {
    std::vector<std::string> problems;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return {"config: not valid JSON"};
    if (!j.is_object()) return {"config: must be a JSON object"};

    mock_config cfg;
    object_reader r{j, "", problems};
    if (const json* control = r.find("control")) {
        if (!control->is_object()) {
            problems.push_back("control: must be an object");
        } else {
            object_reader c{*control, "control", problems};
            c.get_string("address", cfg.control_address);
            c.get_unsigned("port", cfg.control_port);
            c.finish();
        }
    }
    r.get_unsigned("threads", cfg.threads, 256);
    r.get_unsigned("seed", cfg.seed);
    if (const json* regions = r.find("regions")) {
        if (!regions->is_array()) {
            problems.push_back("regions: must be an array");
        } else {
            for (std::size_t i = 0; i < regions->size(); ++i) {
                region_spec rs;
                parse_region((*regions)[i], "regions[" + std::to_string(i) + "]", rs, problems);
                cfg.regions.push_back(std::move(rs));
            }
        }
    }
    r.finish();

    // Structural checks only make sense on what parsed; don't repeat "required" complaints.
    if (problems.empty()) {
        auto more = validate_mock_config(cfg);
        problems.insert(problems.end(), more.begin(), more.end());
    }
    if (problems.empty()) out = std::move(cfg);
    return problems;
}

std::vector<std::string> validate_mock_config(const mock_config& cfg) {
    std::vector<std::string> problems;
    if (cfg.regions.empty()) problems.push_back("regions: at least one region is required");
    if (cfg.threads == 0) problems.push_back("threads: must be >= 1");
    std::set<std::string> names;
    std::set<std::pair<std::string, std::uint16_t>> ports;
    if (cfg.control_port != 0) ports.insert({cfg.control_address, cfg.control_port});
    for (std::size_t i = 0; i < cfg.regions.size(); ++i) {
        const auto& rs = cfg.regions[i];
        std::string path = "regions[" + std::to_string(i) + "]";
        if (rs.name.empty()) problems.push_back(path + ".name: must not be empty");
        else if (!names.insert(rs.name).second) problems.push_back(path + ".name: duplicate region '" + rs.name + "'");
        if (rs.name.find('/') != std::string::npos) problems.push_back(path + ".name: must not contain '/'");
        if (rs.port != 0 && !ports.insert({rs.address, rs.port}).second)
            problems.push_back(path + ".port: " + std::to_string(rs.port) + " is already used");
        if (rs.deployments.empty()) problems.push_back(path + ".deployments: at least one deployment is required");
        std::set<std::string> dep_names;
        for (std::size_t k = 0; k < rs.deployments.size(); ++k) {
            const auto& d = rs.deployments[k];
            std::string dpath = path + ".deployments[" + std::to_string(k) + "]";
            if (d.name.empty()) problems.push_back(dpath + ".name: must not be empty");
            else if (!dep_names.insert(d.name).second)
                problems.push_back(dpath + ".name: duplicate deployment '" + d.name + "'");
        }
    }
    return problems;
}

}  // namespace spillway::mock
