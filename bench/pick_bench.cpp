// Microbenchmarks of the routing pick (balanced_router::pick) over one model with 16 deployments
// in two priority tiers of 8, all available: the router's own cost against a constant fake state
// view, and the cost with the real shared deployment states (a lock, the cooldown, breaker and
// headroom checks per candidate) on the real steady clock. Linked into bench_hot_path, which
// provides main(). Target: well under 1 µs per pick.
#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/random.hpp"
#include "proxy/deployment_state.hpp"
#include "routing/balanced_router.hpp"
#include "routing/catalog.hpp"

#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace spillway;

namespace {

// 8 regions, each with a priority-0 and a priority-1 deployment of gpt-4o (PTU first, pay-go as
// spill-over), with different weights so the draw does real arithmetic.
config::root sixteen_deployments() {
    config::root cfg;
    for (int r = 0; r < 8; ++r) {
        config::region reg;
        reg.name = "region" + std::to_string(r);
        reg.endpoint_url = "https://" + reg.name + ".openai.azure.com";
        reg.upstream = {true, reg.name + ".openai.azure.com", 443, ""};
        reg.data_zone = r < 4 ? "us" : "eu";
        reg.api_key = "key";
        for (int p = 0; p < 2; ++p) {
            config::deployment d;
            d.model = "gpt-4o";
            d.name = "gpt4o-" + reg.name + "-p" + std::to_string(p);
            d.priority = p;
            d.weight = 1.0 + r % 3;
            d.tpm = 10'000'000;  // never the limit in these runs
            reg.deployments.push_back(d);
        }
        cfg.regions.push_back(std::move(reg));
    }
    return cfg;
}

// The same answer for every target: measures the router alone.
class constant_view final : public routing::state_view {
public:
    routing::target_status status(routing::target_id id, std::uint64_t) override {
        routing::target_status s;
        s.headroom_fraction = 0.5 + 0.05 * static_cast<double>(id % 8);
        s.latency_ms = 200.0 + 10.0 * static_cast<double>(id % 8);
        return s;
    }
};

// The proxy's shape: the router asks the shared per-deployment states.
class deployment_states_view final : public routing::state_view {
public:
    explicit deployment_states_view(const std::vector<std::shared_ptr<proxy::deployment_state>>& states)
        : states_(states) {}
    routing::target_status status(routing::target_id id, std::uint64_t estimated_tokens) override {
        return states_[id]->status(estimated_tokens);
    }

private:
    const std::vector<std::shared_ptr<proxy::deployment_state>>& states_;
};

void pick_16_deployments_fake_view(benchmark::State& state) {
    const config::root cfg = sixteen_deployments();
    const routing::catalog cat{cfg};
    const routing::model_entry& model = *cat.find("gpt-4o");
    constant_view view;
    core::prng random{42};
    routing::balanced_router router{view, random};
    const routing::request_facts facts{.data_zone = "", .estimated_tokens = 1500};
    for (auto _ : state) {
        auto id = router.pick(cat, model, facts, {});
        benchmark::DoNotOptimize(id);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(pick_16_deployments_fake_view);

void pick_16_deployments_real_states(benchmark::State& state) {
    const config::root cfg = sixteen_deployments();
    const routing::catalog cat{cfg};
    const routing::model_entry& model = *cat.find("gpt-4o");
    core::steady_clock clock;
    proxy::state_registry registry{clock};
    std::vector<std::pair<const config::region*, const config::deployment*>> targets;
    for (std::size_t id = 0; id < cat.size(); ++id) targets.emplace_back(cat.at(id).region, cat.at(id).deployment);
    const auto states = registry.bind(cfg, targets);
    // Some traffic already accounted for and a header seen, so the headroom windows have work to do.
    for (std::size_t id = 0; id < states.size(); ++id) {
        for (int i = 0; i < 20; ++i) {
            auto r = states[id]->begin(1500);
            states[id]->on_headers({.remaining_tokens = 9'000'000, .remaining_requests = 9000}, std::chrono::milliseconds(80));
            if (r) states[id]->on_succeeded(std::chrono::milliseconds(200 + 10 * static_cast<int>(id % 8)));
        }
    }
    deployment_states_view view{states};
    core::prng random{42};
    routing::balanced_router router{view, random};
    const routing::request_facts facts{.data_zone = "", .estimated_tokens = 1500};
    for (auto _ : state) {
        auto id = router.pick(cat, model, facts, {});
        benchmark::DoNotOptimize(id);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(pick_16_deployments_real_states);

}  // namespace
