// Microbenchmarks of per-request work on the hot path: body inspection, route classification,
// and the routing pick (pick_bench.cpp); header rewrite and SSE relay are in relay_bench.cpp.
#include "proxy/api_route.hpp"
#include "proxy/client_auth.hpp"
#include "proxy/request_body.hpp"

#include <benchmark/benchmark.h>

#include <string>

using namespace spillway;

namespace {

const std::string small_chat =
    R"({"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},)"
    R"({"role":"user","content":"What is the capital of France? Answer in one word."}],"max_tokens":50,"temperature":0.2})";

void inspect_small_chat(benchmark::State& state) {
    proxy::body_facts facts;
    for (auto _ : state) {
        auto err = proxy::inspect_body(small_chat, facts);
        benchmark::DoNotOptimize(err);
        benchmark::DoNotOptimize(facts.prompt_chars);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * small_chat.size()));
}
BENCHMARK(inspect_small_chat);

void inspect_large_prompt(benchmark::State& state) {
    std::string body = R"({"model":"gpt-4o","messages":[{"role":"user","content":")" +
                       std::string(static_cast<std::size_t>(state.range(0)), 'x') + R"("}]})";
    proxy::body_facts facts;
    for (auto _ : state) benchmark::DoNotOptimize(proxy::inspect_body(body, facts));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(inspect_large_prompt)->Arg(4096)->Arg(256 * 1024);

void classify_azure_route(benchmark::State& state) {
    for (auto _ : state)
        benchmark::DoNotOptimize(proxy::classify_route(
            true, false, "/openai/deployments/gpt4o-eastus/chat/completions?api-version=2024-10-21"));
}
BENCHMARK(classify_azure_route);

// The client key check of every request: three configured keys, the presented one the last.
void check_client_key(benchmark::State& state) {
    config::auth cfg;
    for (const char* key : {"sk-team-alpha-0123456789", "sk-team-beta-0123456789", "sk-team-gamma-0123456789"})
        cfg.keys.push_back({.name = key, .key = key, .rpm = {}, .tpm = {}});
    const proxy::client_auth auth(cfg);
    for (auto _ : state) benchmark::DoNotOptimize(auth.check("sk-team-gamma-0123456789"));
}
BENCHMARK(check_client_key);

}  // namespace

BENCHMARK_MAIN();
