#include "app/demo.hpp"

#include "app/application.hpp"
#include "config/loader.hpp"
#include "mock/simulator.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>
#include <string>

namespace spillway::app {

using namespace std::chrono_literals;

namespace {

constexpr const char* demo_key = "sk-demo";

struct demo_region {
    const char* name;
    const char* zone;
    int priority;
    std::uint64_t tpm;
};
constexpr demo_region regions[] = {
    {"eastus", "us", 0, 30000},
    {"swedencentral", "eu", 0, 60000},
    {"westus", "us", 1, 30000},
};

mock::mock_config simulated_regions() {
    mock::mock_config m;
    for (const auto& r : regions) {
        mock::region_spec spec;
        spec.name = r.name;
        spec.latency.ttft = 150ms;
        spec.latency.per_token = 20ms;
        spec.deployments.push_back({std::string("gpt4o-") + r.name, "gpt-4o", r.tpm, 0});
        spec.deployments.push_back({std::string("emb-") + r.name, "text-embedding-3-small", 120000, 0});
        m.regions.push_back(std::move(spec));
    }
    return m;
}

std::string proxy_config(const mock::simulator& sim, std::uint16_t port, std::uint16_t admin_port) {
    std::string regions_json;
    for (const auto& r : regions) {
        if (!regions_json.empty()) regions_json += ",";
        regions_json += R"({"name":")" + std::string(r.name) + R"(","endpoint":"http://127.0.0.1:)" +
                        std::to_string(sim.region_port(r.name)) + R"(","api_key":"mock-key","data_zone":")" +
                        r.zone + R"(","priority":)" + std::to_string(r.priority) + R"(,"deployments":[)" +
                        R"({"model":"gpt-4o","name":"gpt4o-)" + r.name + R"(","tpm":)" + std::to_string(r.tpm) + "}," +
                        R"({"model":"text-embedding-3-small","name":"emb-)" + r.name + R"(","tpm":120000}]})";
    }
    return R"({"listen":{"address":"127.0.0.1","port":)" + std::to_string(port) +
           R"(},"admin":{"address":"127.0.0.1","port":)" + std::to_string(admin_port) +
           R"(},"workers":2,"auth":{"keys":[{"name":"demo","key":")" + demo_key + R"("}]},"regions":[)" +
           regions_json + "]}";
}

void print_snippets(std::uint16_t port, std::uint16_t admin_port, const std::string& table) {
    std::string base = "http://127.0.0.1:" + std::to_string(port);
    std::printf(R"(
spillway demo: 3 simulated Azure OpenAI regions behind one endpoint.

%s
Try it (the client key is %s):

  curl -s %s/v1/chat/completions -H 'Authorization: Bearer %s' \
    -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}]}' -i

  # streaming, Azure URL form, a regional deployment name as the model:
  curl -sN '%s/openai/deployments/gpt4o-eastus/chat/completions?api-version=2024-10-21' \
    -H 'api-key: %s' -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Stream please"}],"stream":true}'

  curl -s %s/v1/embeddings -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"model":"text-embedding-3-small","input":"hello"}'

Python:
  from openai import OpenAI, AzureOpenAI
  client = OpenAI(base_url="%s/v1", api_key="%s")
  print(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content)
  azure = AzureOpenAI(azure_endpoint="%s", api_key="%s", api_version="2024-10-21")
  print(azure.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content)

Node:
  import OpenAI from "openai";
  const client = new OpenAI({ baseURL: "%s/v1", apiKey: "%s" });
  console.log((await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] })).choices[0].message.content);

Admin: http://127.0.0.1:%u/status  http://127.0.0.1:%u/healthz
Press Ctrl-C to stop.
)",
                table.c_str(), demo_key, base.c_str(), demo_key, base.c_str(), demo_key, base.c_str(), demo_key,
                base.c_str(), demo_key, base.c_str(), demo_key, base.c_str(), demo_key, admin_port, admin_port);
    std::fflush(stdout);
}

}  // namespace

int run_demo(std::uint16_t port, std::uint16_t admin_port) {
    core::steady_clock clock;
    mock::simulator sim(simulated_regions(), clock);
    sim.start();

    auto loaded = config::parse(proxy_config(sim, port, admin_port), config::process_env());
    if (!loaded.problems.empty()) {
        for (const auto& p : loaded.problems) spdlog::error("demo config: {}", p.to_string());
        return 1;
    }
    std::optional<application> app;
    try {
        app.emplace(loaded.config, "");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "spillway --demo: cannot start: %s\n", e.what());
        return 1;
    }
    try {
        app->start();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "spillway --demo: cannot listen on 127.0.0.1:%u or :%u (%s); pick others with --port / --admin-port\n",
                     port, admin_port, e.what());
        return 1;
    }
    print_snippets(app->data_port(), app->admin_port(), config::describe_routing_table(*loaded.config));
    app->wait();
    sim.stop();
    return 0;
}

}  // namespace spillway::app
