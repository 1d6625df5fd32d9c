// spillway: command line entry (SPEC §1).
#include "app/application.hpp"
#include "app/demo.hpp"
#include "config/loader.hpp"
#include "core/log.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <optional>

#ifndef SPILLWAY_VERSION
#define SPILLWAY_VERSION "0.0.0"
#endif

using namespace spillway;

namespace {

int check_config(const std::string& path) {
    auto loaded = config::load_file(path, config::process_env());
    if (!loaded.problems.empty()) {
        std::fprintf(stderr, "%s: %zu problem%s\n", path.c_str(), loaded.problems.size(),
                     loaded.problems.size() == 1 ? "" : "s");
        for (const auto& p : loaded.problems) std::fprintf(stderr, "  %s\n", p.to_string().c_str());
        return 1;
    }
    std::printf("%s: OK\n\n%s", path.c_str(), config::describe_routing_table(*loaded.config).c_str());
    return 0;
}

int run(const std::string& path) {
    auto loaded = config::load_file(path, config::process_env());
    if (!loaded.problems.empty()) {
        std::fprintf(stderr, "spillway: invalid config %s:\n", path.c_str());
        for (const auto& p : loaded.problems) std::fprintf(stderr, "  %s\n", p.to_string().c_str());
        return 1;
    }
    core::setup_logging(loaded.config->log.level, loaded.config->log.format);
    // Building the first snapshot can fail too (upstream TLS, the key digests), not only listening.
    std::optional<app::application> app;
    try {
        app.emplace(loaded.config, path);
        app->start();
    } catch (const std::exception& e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }
    app->wait();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"spillway: a multi-region load-balancing proxy for OpenAI and Azure OpenAI APIs"};
    std::string config_path;
    std::string check_path;
    bool demo = false;
    std::uint16_t demo_port = 8080;
    std::uint16_t demo_admin_port = 9090;
    cli.add_option("--config", config_path, "Run the proxy with this config file (env SPILLWAY_CONFIG)");
    cli.add_option("--check-config", check_path, "Validate a config file and print its routing table");
    cli.add_flag("--demo", demo, "Run simulated Azure regions in-process with the proxy in front");
    cli.add_option("--port", demo_port, "Data port for --demo")->capture_default_str();
    cli.add_option("--admin-port", demo_admin_port, "Admin port for --demo")->capture_default_str();
    cli.set_version_flag("--version", std::string("spillway ") + SPILLWAY_VERSION);
    CLI11_PARSE(cli, argc, argv);

    if (!check_path.empty()) return check_config(check_path);
    if (demo) {
        core::setup_logging("warn", "text");
        return app::run_demo(demo_port, demo_admin_port);
    }
    if (config_path.empty()) {
        if (const char* env = std::getenv("SPILLWAY_CONFIG")) config_path = env;
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "spillway: no config given; use --config FILE (or SPILLWAY_CONFIG), --demo, or --help\n");
        return 2;
    }
    core::setup_logging("info", "text");
    return run(config_path);
}
