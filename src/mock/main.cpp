// spillway-mock: run simulated Azure OpenAI regions until SIGINT/SIGTERM.
// Prints one JSON line with the bound ports on stdout (tests read it when they ask for port 0).
#include "core/clock.hpp"
#include "core/log.hpp"
#include "mock/simulator.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <iostream>
#include <pthread.h>
#include <sstream>

#ifndef SPILLWAY_VERSION
#define SPILLWAY_VERSION "0.0.0"
#endif

using namespace spillway;

namespace {

struct flag_values {
    std::vector<std::string> regions;
    std::vector<std::string> deployments;
    std::uint64_t tpm = 0;
    std::uint64_t rpm = 0;
    std::string api_key = "mock-key";
    std::uint64_t ttft_ms = 0;
    std::uint64_t token_ms = 0;
    unsigned completion_tokens = 16;
    std::uint64_t default_max_tokens = 1024;
    std::uint16_t control_port = 0;
    unsigned threads = 1;
    std::string listen = "127.0.0.1";
    std::uint64_t seed = 0;
};

// Builds the config the flags describe; problems are collected, not thrown.
mock::mock_config config_from_flags(const flag_values& f, std::vector<std::string>& problems) {
    mock::mock_config cfg;
    cfg.control_address = f.listen;
    cfg.control_port = f.control_port;
    cfg.threads = f.threads;
    cfg.seed = f.seed;

    std::vector<mock::deployment_spec> deployments;
    for (const auto& d : f.deployments) {
        auto eq = d.find('=');
        mock::deployment_spec spec;
        spec.model = d.substr(0, eq);
        spec.name = eq == std::string::npos ? spec.model : d.substr(eq + 1);
        if (spec.model.empty() || spec.name.empty()) problems.push_back("--deployment " + d + ": expected MODEL=NAME");
        spec.tpm = f.tpm;
        spec.rpm = f.rpm;
        deployments.push_back(std::move(spec));
    }
    if (deployments.empty()) deployments.push_back({.name = "gpt-4o", .model = "gpt-4o", .tpm = f.tpm, .rpm = f.rpm});

    std::vector<std::string> regions = f.regions;
    if (regions.empty()) regions.push_back("eastus");
    for (const auto& r : regions) {
        mock::region_spec spec;
        auto colon = r.find(':');
        spec.name = r.substr(0, colon);
        if (colon != std::string::npos) {
            try {
                unsigned long port = std::stoul(r.substr(colon + 1));
                if (port > 65535) throw std::out_of_range("port");
                spec.port = static_cast<std::uint16_t>(port);
            } catch (const std::exception&) {
                problems.push_back("--region " + r + ": expected NAME[:PORT]");
            }
        }
        spec.address = f.listen;
        spec.api_key = f.api_key;
        spec.deployments = deployments;
        spec.latency = {std::chrono::milliseconds{f.ttft_ms}, std::chrono::milliseconds{f.token_ms}};
        spec.completion_tokens = f.completion_tokens;
        spec.default_max_tokens = f.default_max_tokens;
        cfg.regions.push_back(std::move(spec));
    }
    auto more = mock::validate_mock_config(cfg);
    problems.insert(problems.end(), more.begin(), more.end());
    return cfg;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"spillway-mock: simulated Azure OpenAI regions (quota, latency, streaming, fault injection)"};
    app.set_version_flag("--version", SPILLWAY_VERSION);
    flag_values f;
    std::string config_file;
    std::string log_level = "warn";
    app.add_option("--config", config_file, "JSON config file (see config/mock-demo.json)");
    std::vector<CLI::Option*> flags = {
        app.add_option("--region", f.regions, "NAME[:PORT], repeatable (default eastus:0)"),
        app.add_option("--deployment", f.deployments, "MODEL=NAME added to every region, repeatable (default gpt-4o=gpt-4o)"),
        app.add_option("--tpm", f.tpm, "tokens per minute per deployment (0 = unlimited)"),
        app.add_option("--rpm", f.rpm, "requests per minute per deployment (default tpm/1000*6)"),
        app.add_option("--api-key", f.api_key, "key every region expects (default mock-key)"),
        app.add_option("--ttft-ms", f.ttft_ms, "time to first token, ms"),
        app.add_option("--token-ms", f.token_ms, "time per completion token, ms"),
        app.add_option("--completion-tokens", f.completion_tokens, "tokens per generated answer (default 16)"),
        app.add_option("--default-max-tokens", f.default_max_tokens, "admission estimate without max_tokens (default 1024)"),
        app.add_option("--control-port", f.control_port, "control plane port (default 0 = any)"),
        app.add_option("--threads", f.threads, "worker threads (default 1)"),
        app.add_option("--listen", f.listen, "address of every listener (default 127.0.0.1)"),
        app.add_option("--seed", f.seed, "seed for the error-rate dice (default random)"),
    };
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (default warn)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 1;
    }
    core::setup_logging(log_level, "text");

    mock::mock_config cfg;
    std::vector<std::string> problems;
    if (!config_file.empty()) {
        for (auto* opt : flags)
            if (opt->count() > 0) problems.push_back(opt->get_name() + ": cannot be combined with --config");
    }
    if (!problems.empty()) {
        for (const auto& p : problems) std::cerr << "spillway-mock: " << p << "\n";
        return 1;
    }
    if (!config_file.empty()) {
        std::ifstream in{config_file};
        if (!in) {
            std::cerr << "spillway-mock: cannot read " << config_file << "\n";
            return 1;
        }
        std::stringstream text;
        text << in.rdbuf();
        problems = mock::parse_mock_config(text.str(), cfg);
    } else {
        cfg = config_from_flags(f, problems);
    }
    if (!problems.empty()) {
        for (const auto& p : problems) std::cerr << "spillway-mock: " << p << "\n";
        return 1;
    }

    // Block the signals before any thread exists so only sigwait below receives them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    core::steady_clock clock;
    mock::simulator sim{cfg, clock};
    try {
        sim.start();
    } catch (const std::exception& e) {
        std::cerr << "spillway-mock: " << e.what() << "\n";
        return 1;
    }

    nlohmann::ordered_json ports;
    ports["control_port"] = sim.control_port();
    ports["regions"] = nlohmann::ordered_json::object();
    for (const auto& r : cfg.regions) ports["regions"][r.name] = sim.region_port(r.name);
    std::cout << ports.dump() << std::endl;  // endl: flush, a test is waiting for this line

    int sig = 0;
    sigwait(&signals, &sig);
    sim.stop();
    return 0;
}
