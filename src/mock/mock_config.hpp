// Typed configuration of spillway-mock: which simulated Azure OpenAI regions to run, their
// deployments, quotas and latency. Parsed from JSON (--config) or assembled from CLI flags.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::mock {

struct deployment_spec {
    std::string name;   // the Azure deployment name (path segment / v1 body "model")
    std::string model;  // the model it serves; v1 requests may also name it
    std::uint64_t tpm = 0;  // 0 = unlimited
    std::uint64_t rpm = 0;  // 0 = tpm/1000*6 as Azure does, or unlimited if tpm is 0
};

struct latency_spec {
    std::chrono::milliseconds ttft{0};       // before the headers / first event
    std::chrono::milliseconds per_token{0};  // between completion tokens
};

struct region_spec {
    std::string name;
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  // 0 = pick a free one
    std::string api_key = "mock-key";
    std::vector<deployment_spec> deployments;
    latency_spec latency;
    unsigned completion_tokens = 16;  // length of every generated answer
    std::uint64_t default_max_tokens = 1024;  // admission estimate when the request has none
};

struct mock_config {
    std::vector<region_spec> regions;
    std::string control_address = "127.0.0.1";
    std::uint16_t control_port = 0;
    unsigned threads = 1;    // worker io_contexts, one thread each
    std::uint64_t seed = 0;  // for the error-rate dice; 0 = seeded from std::random_device
};

// Parses the JSON form of mock_config into `out`. Returns every problem found, each prefixed by
// its JSON path (`regions[0].deployments[1].tpm: must be an unsigned integer`); unknown keys are
// problems too, so typos are not silently ignored. `out` is only meaningful when none are returned.
std::vector<std::string> parse_mock_config(std::string_view json, mock_config& out);

// Checks a config however it was built (the CLI path skips JSON): names, ports, threads.
std::vector<std::string> validate_mock_config(const mock_config& cfg);

// Requests per minute the deployment enforces (0 = unlimited), resolving the Azure default.
std::uint64_t effective_rpm(const deployment_spec& d);

}  // namespace spillway::mock
