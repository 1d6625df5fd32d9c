// Parsing and validation of the JSON config. Every problem is reported with its JSON path,
// all at once, so a user fixes a file in one round.
#pragma once

#include "config/config.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::config {

struct problem {
    std::string path;     // e.g. "regions[1].deployments[0].tpm"
    std::string message;  // e.g. "must be > 0"
    std::string to_string() const { return path.empty() ? message : path + ": " + message; }
};

// Reads environment variables (injected so tests need not touch the real environment).
using env_lookup = std::function<std::optional<std::string>(const std::string& name)>;
env_lookup process_env();

struct load_result {
    std::shared_ptr<const root> config;  // set when problems is empty
    std::vector<problem> problems;
};

load_result parse(std::string_view json_text, const env_lookup& env);
load_result load_file(const std::string& path, const env_lookup& env);

// The routing table as `--check-config` prints it: model -> region/deployment, priority, weight, quota.
std::string describe_routing_table(const root& cfg);

}  // namespace spillway::config
