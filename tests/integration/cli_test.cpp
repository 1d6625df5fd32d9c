// The command line (SPEC §1): --check-config, --version, --help, and start-up refusals.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

namespace spillway::testing {
namespace {

std::string joined(const std::vector<std::string>& lines) {
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    return all;
}

TEST(CheckConfig, ValidFilePrintsTheRoutingTable) {
    auto path = write_temp_file(R"({
      "auth": {"mode": "none"},
      "regions": [
        {"name": "eastus", "endpoint": "https://contoso-eastus.openai.azure.com", "api_key": "secret-value-1",
         "deployments": [{"model": "gpt-4o", "name": "gpt4o-east", "tpm": 80000}]},
        {"name": "westus", "endpoint": "https://contoso-westus.openai.azure.com", "api_key": "secret-value-2",
         "priority": 1, "deployments": [{"model": "gpt-4o", "name": "gpt4o-west", "tpm": 30000}]}
      ]})");
    child_process p({SPILLWAY_BIN, "--check-config", path});
    ASSERT_EQ(p.wait_exit(), 0);
    p.wait_for_line("", false, 100ms);
    std::string out = joined(p.lines(false));
    EXPECT_NE(out.find("gpt-4o"), std::string::npos) << out;
    EXPECT_NE(out.find("eastus"), std::string::npos) << out;
    EXPECT_NE(out.find("gpt4o-west"), std::string::npos) << out;
    EXPECT_NE(out.find("80000"), std::string::npos) << out;
    EXPECT_EQ(out.find("secret-value"), std::string::npos) << "keys never printed";
}

TEST(CheckConfig, InvalidFileListsEveryProblemWithItsPath) {
    auto path = write_temp_file(R"({
      "auth": {"mode": "none"},
      "routing": {"max_attempts": 0},
      "regions": [
        {"name": "eastus", "endpoint": "https://contoso-eastus.openai.azure.com", "api_key_env": "SPILLWAY_TEST_UNSET_KEY",
         "deployments": [{"model": "gpt-4o", "name": "a", "tpm": 0}]},
        {"name": "westus", "endpoint": "https://x.openai.azure.com", "api_key": "k",
         "deployments": [{"model": "gpt-4o", "name": "b", "weight": -1, "colour": "blue"}]}
      ]})");
    child_process p({SPILLWAY_BIN, "--check-config", path});
    ASSERT_EQ(p.wait_exit(), 1);
    p.wait_for_line("", true, 100ms);
    std::string err = joined(p.lines(true));
    for (std::string expected : {"routing.max_attempts", "regions[0].api_key_env", "SPILLWAY_TEST_UNSET_KEY",
                                 "regions[0].deployments[0].tpm", "regions[1].deployments[0].weight",
                                 "regions[1].deployments[0].colour"})
        EXPECT_NE(err.find(expected), std::string::npos) << "missing " << expected << " in:\n" << err;
}

TEST(CommandLine, VersionAndHelp) {
    child_process v({SPILLWAY_BIN, "--version"});
    EXPECT_EQ(v.wait_exit(), 0);
    EXPECT_TRUE(v.wait_for_line("spillway", false, 2s).has_value());
    child_process h({SPILLWAY_BIN, "--help"});
    EXPECT_EQ(h.wait_exit(), 0);
    EXPECT_TRUE(h.wait_for_line("--check-config", false, 2s).has_value());
}

TEST(CommandLine, RunRefusesAnInvalidConfig) {
    auto path = write_temp_file(R"({"regions": []})");
    child_process p({SPILLWAY_BIN, "--config", path});
    EXPECT_EQ(p.wait_exit(), 1);
}

// A config can pass validation and still fail when the proxy is built from it: here a CA file
// that is readable but holds no certificate. That is an error message and exit status 1.
TEST(CommandLine, RunSaysWhyItCannotStart) {
    auto ca = write_temp_file("not a certificate\n", ".pem");
    auto path = write_temp_file(R"({
      "auth": {"mode": "none"},
      "listen": {"address": "127.0.0.1", "port": 0}, "admin": {"address": "127.0.0.1", "port": 0},
      "regions": [
        {"name": "eastus", "endpoint": "https://127.0.0.1:1", "api_key": "secret-value-1", "ca_file": ")" + ca + R"(",
         "deployments": [{"model": "gpt-4o", "name": "gpt4o-east"}]}
      ]})");
    child_process p({SPILLWAY_BIN, "--config", path});
    EXPECT_EQ(p.wait_exit(), 1);
    p.wait_for_line("", false, 100ms);
    const std::string out = joined(p.lines(false)) + joined(p.lines(true));
    EXPECT_NE(out.find("cannot start"), std::string::npos) << out;
}

// Linked with jemalloc, spillway has jemalloc hand pages back to the kernel from a thread of its
// own, not from a worker in the middle of a request (src/app/jemalloc_conf.cpp).
TEST(Process, ReturnsMemoryFromJemallocsOwnThread) {
#ifndef SPILLWAY_LINKS_JEMALLOC
    GTEST_SKIP() << "spillway is built without jemalloc";
#else
    proxy_server proxy(json{{"auth", {{"mode", "none"}}},
                            {"regions", json::array({{{"name", "eastus"}, {"endpoint", "http://127.0.0.1:1"},
                                                      {"api_key", "k"},
                                                      {"deployments", json::array({{{"model", "gpt-4o"}, {"name", "d"}}})}}})}});
    auto thread_names = [&] {
        std::vector<std::string> names;
        const auto tasks = std::filesystem::path("/proc") / std::to_string(proxy.process().pid()) / "task";
        for (const auto& t : std::filesystem::directory_iterator(tasks)) {
            std::ifstream comm(t.path() / "comm");
            std::string name;
            std::getline(comm, name);
            names.push_back(name);
        }
        return names;
    };
    bool found = false;
    for (int i = 0; i < 30 && !found; ++i) {
        EXPECT_EQ(http_call(proxy.admin_port(), "GET", "/metrics").status, 200);
        auto names = thread_names();
        found = std::find(names.begin(), names.end(), "jemalloc_bg_thd") != names.end();
        if (!found) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(found) << "no jemalloc_bg_thd thread";
#endif
}

}  // namespace
}  // namespace spillway::testing
