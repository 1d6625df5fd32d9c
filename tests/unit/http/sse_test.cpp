// Unit tests for http/sse: the events spillway writes into a relayed stream are well-formed
// server-sent events that carry the payload verbatim.
#include "http/sse.hpp"

#include <gtest/gtest.h>

#include <string>

namespace spillway::http {
namespace {

TEST(SseDataEvent, Format) {
    EXPECT_EQ(sse_data_event("[DONE]"), "data: [DONE]\n\n");
    EXPECT_EQ(sse_data_event(""), "data: \n\n");
    EXPECT_EQ(sse_data_event(R"({"error":{"message":"m"}})"), "data: {\"error\":{\"message\":\"m\"}}\n\n");
}

TEST(SseDataEvent, PayloadPassesThroughVerbatim) {
    // Colons, quotes, escaped newlines and "data:" inside the payload are neither escaped nor split.
    const std::string payload =
        R"({"error":{"message":"upstream broke: \"reset\"\n data: x","type":"upstream_error","code":"x"}})";
    EXPECT_EQ(sse_data_event(payload), "data: " + payload + "\n\n");
}

}  // namespace
}  // namespace spillway::http
