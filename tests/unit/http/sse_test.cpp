// Unit tests for http/sse: the incremental event splitter must give the same events whatever
// the chunk boundaries and line endings, and the events spillway writes must scan back.
#include "http/sse.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace spillway::http {
namespace {

using events = std::vector<std::string>;

// Feeds `chunks` in order; returns every event's data.
events scan(const std::vector<std::string_view>& chunks, sse_scanner& sc) {
    events out;
    for (auto c : chunks) sc.feed(c, [&](std::string_view data) { out.emplace_back(data); });
    return out;
}

events scan(const std::vector<std::string_view>& chunks) {
    sse_scanner sc;
    return scan(chunks, sc);
}

events scan_whole(std::string_view s) { return scan({s}); }

events scan_bytewise(std::string_view s) {
    std::vector<std::string_view> chunks;
    for (std::size_t i = 0; i < s.size(); ++i) chunks.push_back(s.substr(i, 1));
    return scan(chunks);
}

events scan_random_splits(std::string_view s, std::mt19937& rng) {
    std::vector<std::string_view> chunks;
    std::size_t i = 0;
    while (i < s.size()) {
        // Mostly small pieces, sometimes empty ones, sometimes large ones.
        std::size_t n = std::uniform_int_distribution<std::size_t>(0, rng() % 4 == 0 ? 400 : 12)(rng);
        n = std::min(n, s.size() - i);
        chunks.push_back(s.substr(i, n));
        i += n;
    }
    return scan(chunks);
}

std::string with_line_endings(std::string_view lf_text, std::string_view eol) {
    std::string out;
    for (char c : lf_text) {
        if (c == '\n') out += eol;
        else out.push_back(c);
    }
    return out;
}

// A chat stream as Azure sends it (AZURE.md §5): the prompt-filter chunk with empty choices,
// content chunks with content_filter_results, a finish chunk, the include_usage chunk, [DONE].
const events& azure_payloads() {
    static const events payloads = {
        R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]})",
        R"({"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1722950000,"id":"chatcmpl-9tXyZ","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_80a1bad4c7","usage":null})",
        R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hel"},"finish_reason":null,"index":0,"logprobs":null}],"created":1722950000,"id":"chatcmpl-9tXyZ","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_80a1bad4c7","usage":null})",
        R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"lo: a \"quote\", a colon: and data: inside\\n"},"finish_reason":null,"index":0,"logprobs":null}],"created":1722950000,"id":"chatcmpl-9tXyZ","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_80a1bad4c7","usage":null})",
        R"({"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1722950000,"id":"chatcmpl-9tXyZ","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_80a1bad4c7","usage":null})",
        R"({"choices":[],"created":1722950000,"id":"chatcmpl-9tXyZ","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_80a1bad4c7","usage":{"completion_tokens":9,"prompt_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}})",
        "[DONE]",
    };
    return payloads;
}

std::string azure_stream_lf() {
    std::string s;
    for (const auto& p : azure_payloads()) s += "data: " + p + "\n\n";
    return s;
}

TEST(SseScanner, AzureStreamInOneChunk) {
    sse_scanner sc;
    auto got = scan({azure_stream_lf()}, sc);
    EXPECT_EQ(got, azure_payloads());
    EXPECT_EQ(sc.events(), azure_payloads().size());
    EXPECT_EQ(got.back(), "[DONE]");
}

TEST(SseScanner, AzureStreamByteByByte) {
    EXPECT_EQ(scan_bytewise(azure_stream_lf()), azure_payloads());
}

TEST(SseScanner, AzureStreamInRandomSplits) {
    std::mt19937 rng(0x5111a7u);
    const std::string stream = azure_stream_lf();
    for (int round = 0; round < 300; ++round) ASSERT_EQ(scan_random_splits(stream, rng), azure_payloads()) << round;
}

TEST(SseScanner, CrlfAndCrLineEndingsInRandomSplits) {
    std::mt19937 rng(42u);
    for (std::string_view eol : {"\r\n", "\r"}) {
        const std::string stream = with_line_endings(azure_stream_lf(), eol);
        EXPECT_EQ(scan_whole(stream), azure_payloads());
        EXPECT_EQ(scan_bytewise(stream), azure_payloads());
        for (int round = 0; round < 200; ++round)
            ASSERT_EQ(scan_random_splits(stream, rng), azure_payloads()) << round;
    }
}

TEST(SseScanner, CrAtTheEndOfAChunkAndLfAtTheStartOfTheNextIsOneLineEnd) {
    // If \r\n split over two chunks counted as two line ends, "a" would be dispatched alone.
    EXPECT_EQ(scan({"data: a\r", "\ndata: b\r", "\n\r", "\n"}), (events{"a\nb"}));
    EXPECT_EQ(scan({"data: a\r", "", "\n", "\r\n"}), (events{"a"}));
}

TEST(SseScanner, MixedLineEndings) {
    EXPECT_EQ(scan_whole("data: a\r\ndata: b\rdata: c\n\r\n"), (events{"a\nb\nc"}));
    EXPECT_EQ(scan_whole("data: 1\n\rdata: 2\r\r"), (events{"1", "2"}));
    EXPECT_EQ(scan_whole("data: x\r\r\n"), (events{"x"})) << "\\r then \\r\\n: two line ends";
}

TEST(SseScanner, MultiLineDataIsJoinedWithNewlines) {
    EXPECT_EQ(scan_whole("data: first\ndata: second\ndata: third\n\n"), (events{"first\nsecond\nthird"}));
    EXPECT_EQ(scan_whole("data: {\"a\":\ndata: 1}\n\n"), (events{"{\"a\":\n1}"}));
}

TEST(SseScanner, OneLeadingSpaceIsRemoved) {
    EXPECT_EQ(scan_whole("data:x\n\n"), (events{"x"}));
    EXPECT_EQ(scan_whole("data: x\n\n"), (events{"x"}));
    EXPECT_EQ(scan_whole("data:  x \n\n"), (events{" x "}));
    EXPECT_EQ(scan_whole("data:\tx\n\n"), (events{"\tx"}));
}

TEST(SseScanner, EmptyDataLineMakesAnEventWithEmptyData) {
    EXPECT_EQ(scan_whole("data:\n\n"), (events{""}));
    EXPECT_EQ(scan_whole("data: \n\n"), (events{""}));
    EXPECT_EQ(scan_whole("data:\ndata:\n\n"), (events{"\n"}));
}

TEST(SseScanner, CommentsAndOtherFieldsAreIgnored) {
    sse_scanner sc;
    auto got = scan({": keep-alive\n\n"
                     ":\n\n"
                     "event: message\nid: 7\nretry: 1000\n\n"
                     ": comment before data\nevent: delta\ndata: payload\nid: 8\n: trailing comment\n\n"
                     "unknown: x\nDATA: shouted\n data: leading space\ndatum: y\n\n"},
                    sc);
    EXPECT_EQ(got, (events{"payload"}));
    EXPECT_EQ(sc.events(), 1u);
}

TEST(SseScanner, BlankLinesWithoutDataDispatchNothing) {
    sse_scanner sc;
    EXPECT_TRUE(scan({"\n\n\n\r\n\r\r\n"}, sc).empty());
    EXPECT_EQ(sc.events(), 0u);
    EXPECT_EQ(scan_whole("\n\n\ndata: x\n\n\n\n"), (events{"x"}));
}

TEST(SseScanner, IncompleteEventWaitsForItsBlankLine) {
    sse_scanner sc;
    events out;
    auto collect = [&](std::string_view d) { out.emplace_back(d); };
    sc.feed("data: {\"partial\":", collect);
    EXPECT_TRUE(out.empty());
    sc.feed("true}\n", collect);
    EXPECT_TRUE(out.empty()) << "one line end does not complete an event";
    sc.feed("\n", collect);
    EXPECT_EQ(out, (events{"{\"partial\":true}"}));
    EXPECT_EQ(sc.events(), 1u);
    sc.feed("data: [DONE]", collect);
    EXPECT_EQ(out.size(), 1u) << "a stream cut before the blank line yields no event";
}

TEST(SseScanner, DataIsResetBetweenEvents) {
    EXPECT_EQ(scan_whole("data: a\ndata: b\n\ndata: c\n\n"), (events{"a\nb", "c"}));
}

TEST(SseScanner, EventCountAccumulatesAcrossFeeds) {
    sse_scanner sc;
    auto ignore = [](std::string_view) {};
    sc.feed("data: 1\n\ndata: 2\n", ignore);
    EXPECT_EQ(sc.events(), 1u);
    sc.feed("\ndata: 3\n\n: c\n\n", ignore);
    EXPECT_EQ(sc.events(), 3u);
}

TEST(SseScanner, DoneIsAnOrdinaryEvent) {
    EXPECT_EQ(scan_whole("data: [DONE]\n\n"), (events{"[DONE]"}));
    EXPECT_EQ(scan_whole("data:[DONE]\r\n\r\n"), (events{"[DONE]"}));
}

TEST(SseDataEvent, Format) {
    EXPECT_EQ(sse_data_event("[DONE]"), "data: [DONE]\n\n");
    EXPECT_EQ(sse_data_event(""), "data: \n\n");
    EXPECT_EQ(sse_data_event(R"({"error":{"message":"m"}})"), "data: {\"error\":{\"message\":\"m\"}}\n\n");
}

TEST(SseDataEvent, ScansBackToThePayload) {
    const std::string payload = R"({"error":{"message":"upstream broke: \"reset\"","type":"upstream_error","code":"x"}})";
    std::string stream = azure_stream_lf().substr(0, azure_stream_lf().find("data: {\"choices\":[]", 10));
    stream += sse_data_event(payload);
    auto got = scan_bytewise(stream);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), payload);
    EXPECT_EQ(got.size(), 6u);
}

}  // namespace
}  // namespace spillway::http
