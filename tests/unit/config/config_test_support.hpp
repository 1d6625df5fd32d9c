// Shared helpers for the config tests: an injected environment, small config builders and a
// scratch directory for files the loader must be able to read (TLS, CA bundles, config files).
#pragma once

#include "config/loader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::config::test {

inline env_lookup fake_env(std::map<std::string, std::string> vars = {}) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

inline std::vector<std::string> problem_texts(const load_result& r) {
    std::vector<std::string> out;
    for (const auto& p : r.problems) out.push_back(p.to_string());
    return out;
}

inline std::vector<std::string> problem_paths(const load_result& r) {
    std::vector<std::string> out;
    for (const auto& p : r.problems) out.push_back(p.path);
    return out;
}

// Parses text that must be valid; fails the test (listing every problem) otherwise.
inline std::shared_ptr<const root> parse_ok(std::string_view text, const env_lookup& env = fake_env()) {
    auto r = parse(text, env);
    for (const auto& p : r.problems) ADD_FAILURE() << "unexpected problem: " << p.to_string();
    EXPECT_TRUE(r.config != nullptr);
    return r.config;
}

// Parses text that must be invalid and returns its problems as "path: message".
inline std::vector<std::string> problems_of(std::string_view text, const env_lookup& env = fake_env()) {
    auto r = parse(text, env);
    EXPECT_EQ(r.config, nullptr) << "expected problems, the config was accepted";
    return problem_texts(r);
}

// A valid one-region config (auth off, an inline region key) with extra members spliced in at
// the top level, the region and its one deployment. Each extra is a comma-free list of members.
inline std::string config_with(std::string_view top = "", std::string_view region = "",
                               std::string_view deployment = "") {
    std::string text = "{\n";
    if (top.find("\"auth\"") == std::string_view::npos) text += R"(  "auth": { "mode": "none" },)" "\n";
    if (!top.empty()) text += "  " + std::string{top} + ",\n";
    text += R"(  "regions": [ { "name": "eastus", "endpoint": "https://eastus.example.com", "api_key": "region-secret",)";
    text += "\n";
    if (!region.empty()) text += "    " + std::string{region} + ",\n";
    text += R"(    "deployments": [ { "model": "gpt-4o", "name": "gpt4o-eastus")";
    if (!deployment.empty()) text += ", " + std::string{deployment};
    text += " } ] } ]\n}\n";
    return text;
}

// `text` with the first `from` replaced by `to` (the test fails if `from` is absent).
inline std::string replaced(std::string text, std::string_view from, std::string_view to) {
    auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << "no \"" << from << "\" in the text";
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

// A directory of its own per test, removed afterwards.
class scratch_dir {
public:
    scratch_dir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = std::filesystem::temp_directory_path() /
                ("spillway-config-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" + info->name());
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;

    std::string write(const std::string& name, std::string_view content) const {
        auto p = path_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p.string();
    }
    std::string path(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

}  // namespace spillway::config::test
