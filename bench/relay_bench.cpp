// Microbenchmarks of the relay's per-request work: parsing the client's request head, rewriting
// it for the upstream, parsing the upstream's answer head (spillway's parser and Beast's side by
// side for both heads), writing the client's response head from the upstream's, and relaying an
// SSE stream (parsing the upstream's chunks out of the read buffer, framing them for the
// client, keeping the tail for the usage object).
#include "http/parse_buffered.hpp"
#include "http/upstream_pool.hpp"
#include "http/wire.hpp"
#include "proxy/upstream_request.hpp"
#include "proxy/usage_scan.hpp"

#include <benchmark/benchmark.h>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <string>

using namespace spillway;
namespace bhttp = boost::beast::http;

namespace {

config::region azure_region() {
    config::region r;
    r.name = "eastus";
    r.kind = config::region_kind::azure;
    r.upstream = {true, "aoai-eastus.openai.azure.com", 443, ""};
    r.api_key = "0123456789abcdef0123456789abcdef";
    return r;
}

config::deployment gpt4o() {
    config::deployment d;
    d.model = "gpt-4o";
    d.name = "gpt4o-eastus";
    return d;
}

// The head of a chat completion as the official openai SDK sends it.
constexpr std::string_view sdk_request_head =
    "POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n"
    "Host: spillway.internal:8080\r\n"
    "Accept: application/json\r\n"
    "Content-Type: application/json\r\n"
    "User-Agent: AzureOpenAI/JS 5.23.2\r\n"
    "api-key: client-key-0123456789\r\n"
    "x-stainless-lang: js\r\n"
    "x-stainless-package-version: 5.23.2\r\n"
    "x-stainless-os: Linux\r\n"
    "x-stainless-arch: x64\r\n"
    "x-stainless-runtime: node\r\n"
    "x-stainless-runtime-version: v20.20.2\r\n"
    "x-stainless-retry-count: 0\r\n"
    "x-stainless-timeout: 600\r\n"
    "Connection: keep-alive\r\n"
    "Content-Length: 212\r\n"
    "\r\n";

// Puts a whole head into a parser, spillway's or Beast's; false if it did not parse.
template <class Parser>
bool parses(Parser& parser, std::string_view head) {
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(head.data(), head.size()), ec);
    return !ec && parser.is_header_done();
}

void parse_request_head(benchmark::State& state) {
    for (auto _ : state) {
        http::request_parser parser;  // one per request, as in the server
        if (!parses(parser, sdk_request_head)) state.SkipWithError("the head did not parse");
        benchmark::DoNotOptimize(parser.fields().data());
    }
}
BENCHMARK(parse_request_head);

// The same head through Beast's parser, which spillway used before.
void parse_request_head_beast(benchmark::State& state) {
    for (auto _ : state) {
        bhttp::request_parser<bhttp::string_body, http::message_allocator<char>> parser;
        if (!parses(parser, sdk_request_head)) state.SkipWithError("the head did not parse");
        benchmark::DoNotOptimize(&parser.get());
    }
}
BENCHMARK(parse_request_head_beast);

// The head of a non-streaming Azure answer, as it comes off the wire.
constexpr std::string_view azure_answer_head =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 1042\r\n"
    "apim-request-id: 3f6c2d7e-9f4b-4a7e-8a55-2b7f0c1d9e11\r\n"
    "x-request-id: b1d2c3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e\r\n"
    "x-ratelimit-remaining-requests: 899\r\n"
    "x-ratelimit-limit-requests: 900\r\n"
    "x-ratelimit-remaining-tokens: 149212\r\n"
    "x-ratelimit-limit-tokens: 150000\r\n"
    "azureml-model-session: d119-20241029014502\r\n"
    "x-ms-region: East US\r\n"
    "Date: Tue, 24 Nov 2026 05:00:00 GMT\r\n"
    "\r\n";

void parse_answer_head(benchmark::State& state) {
    http::answer_parser parser;  // one per upstream connection, reset for every answer
    for (auto _ : state) {
        parser.reset();
        if (!parses(parser, azure_answer_head)) state.SkipWithError("the head did not parse");
        benchmark::DoNotOptimize(parser.fields().data());
    }
}
BENCHMARK(parse_answer_head);

// The same head through Beast's parser, which spillway used before (a new parser per answer).
void parse_answer_head_beast(benchmark::State& state) {
    for (auto _ : state) {
        bhttp::response_parser<bhttp::buffer_body, http::message_allocator<char>> parser;
        if (!parses(parser, azure_answer_head)) state.SkipWithError("the head did not parse");
        benchmark::DoNotOptimize(&parser.get());
    }
}
BENCHMARK(parse_answer_head_beast);

void rewrite_request_head(benchmark::State& state) {
    const auto region = azure_region();
    const auto dep = gpt4o();
    http::request_parser request;
    boost::system::error_code ec;
    request.put(boost::asio::buffer(sdk_request_head), ec);
    const auto wire = proxy::make_upstream_wire(region, dep);  // once per config snapshot in the proxy
    for (auto _ : state) {
        std::string head = proxy::upstream_request_head(wire, proxy::operation::chat_completions, request.fields(), 212);
        benchmark::DoNotOptimize(head.data());
    }
}
BENCHMARK(rewrite_request_head);

void write_client_response_head(benchmark::State& state) {
    http::answer_parser upstream;
    boost::system::error_code ec;
    upstream.put(boost::asio::buffer(azure_answer_head), ec);
    std::string head;
    for (auto _ : state) {
        head.clear();
        http::wire::append_status_line(11, 200, "OK", head);
        proxy::append_client_response_fields(upstream.fields(), {"x-ratelimit-remaining-tokens", "x-ratelimit-remaining-requests"},
                                             head);
        http::wire::append_field("x-ratelimit-remaining-tokens", "412000", head);
        http::wire::append_field("x-ratelimit-remaining-requests", "2690", head);
        http::wire::append_field("x-spillway-region", "eastus", head);
        http::wire::append_field("x-spillway-deployment", "gpt4o-eastus", head);
        http::wire::append_field("x-spillway-attempts", "1", head);
        http::wire::append_field("x-spillway-request-id", "5f3a9c1e-0-123456", head);
        head.append(http::wire::crlf);
        benchmark::DoNotOptimize(head.data());
    }
}
BENCHMARK(write_client_response_head);

// A chunked SSE answer of `events` token events and a final usage event, each in a chunk of
// its own, as Azure streams them.
std::string sse_answer(int events) {
    std::string wire = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto chunk = [&](const std::string& data) {
        std::string size;
        http::wire::append_chunk_size(data.size(), size);
        wire += size + data + "\r\n";
    };
    for (int i = 0; i < events; ++i)
        chunk(R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"gpt-4o",)"
              R"("choices":[{"index":0,"delta":{"content":"token"},"finish_reason":null}]})" "\n\n");
    chunk(R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],)"
          R"("usage":{"prompt_tokens":42,"completion_tokens":)" + std::to_string(events) + R"(,"total_tokens":99}})" "\n\n");
    chunk("data: [DONE]\n\n");
    wire += "0\r\n\r\n";
    return wire;
}

// Relays a whole stream as if each upstream read brought `per_read` bytes: parse what is
// buffered into the relay block, frame it as a chunk for the client, keep the tail.
void relay_sse_stream(benchmark::State& state) {
    const std::string wire = sse_answer(static_cast<int>(state.range(0)));
    const std::size_t per_read = static_cast<std::size_t>(state.range(1));
    std::array<char, 16 * 1024> block;
    std::string chunk_size;
    std::size_t framed = 0;
    for (auto _ : state) {
        boost::beast::flat_buffer buffer;
        http::answer_parser parser;
        proxy::tail_buffer tail;
        std::size_t fed = 0;
        bool read_more = true;
        while (!parser.is_done()) {
            if (read_more) {  // the next upstream read
                if (fed == wire.size()) state.SkipWithError("the stream did not parse to its end");
                if (fed == wire.size()) break;
                const std::size_t n = std::min(per_read, wire.size() - fed);
                buffer.commit(boost::asio::buffer_copy(buffer.prepare(n), boost::asio::buffer(wire.data() + fed, n)));
                fed += n;
            }
            if (!parser.is_header_done()) {
                http::parse_buffered(parser, buffer, [](const auto& p) { return p.is_header_done(); });
                read_more = !parser.is_header_done();
                continue;
            }
            parser.body() = {block.data(), block.size()};
            http::parse_buffered(parser, buffer, [&](const auto& p) { return p.is_done() || p.body().size == 0; });
            const std::size_t got = block.size() - parser.body().size;
            read_more = parser.body().size != 0;  // the block was not filled: the buffer ran dry
            if (got == 0) continue;
            chunk_size.clear();
            http::wire::append_chunk_size(got, chunk_size);
            framed += chunk_size.size() + got;
            tail.append({block.data(), got});
        }
        auto usage = proxy::find_usage(tail.view());
        benchmark::DoNotOptimize(usage);
    }
    benchmark::DoNotOptimize(framed);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
// 200 events, read one event at a time (a paced stream) or 16 KiB at a time (a fast one).
BENCHMARK(relay_sse_stream)->Args({200, 180})->Args({200, 16 * 1024});

}  // namespace
