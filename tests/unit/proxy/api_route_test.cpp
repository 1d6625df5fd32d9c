// Unit tests for proxy/api_route: every URL form of SPEC §3, the wrong methods and the paths
// that are not routes.
#include "proxy/api_route.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace spillway::proxy {
namespace {

using kind = api_route::kind;

api_route post(std::string_view target) { return classify_route(true, false, target); }
api_route get(std::string_view target) { return classify_route(false, true, target); }
api_route other_method(std::string_view target) { return classify_route(false, false, target); }  // PUT, DELETE, HEAD...

struct op_case {
    std::string_view path;
    operation op;
};

constexpr op_case body_model_ops[] = {
    {"chat/completions", operation::chat_completions},
    {"completions", operation::completions},
    {"embeddings", operation::embeddings},
    {"responses", operation::responses},
};

TEST(ClassifyRoute, V1AndOpenaiV1FormsTakeTheModelFromTheBody) {
    for (std::string_view prefix : {"/v1/", "/openai/v1/"}) {
        for (const auto& c : body_model_ops) {
            std::string target = std::string(prefix) + std::string(c.path);
            auto r = post(target);
            EXPECT_EQ(r.what, kind::inference) << target;
            EXPECT_EQ(r.op, c.op) << target;
            EXPECT_TRUE(r.path_deployment.empty()) << target;
        }
    }
}

TEST(ClassifyRoute, V1FormsWithQueryStringAndTrailingSlash) {
    for (std::string_view target :
         {"/v1/chat/completions?foo=bar", "/v1/chat/completions/", "/v1/chat/completions//",
          "/openai/v1/chat/completions?api-version=preview", "/openai/v1/chat/completions/?api-version=preview",
          "/v1/chat/completions?", "/v1/chat/completions?x=/v1/embeddings"}) {
        auto r = post(target);
        EXPECT_EQ(r.what, kind::inference) << target;
        EXPECT_EQ(r.op, operation::chat_completions) << target;
        EXPECT_TRUE(r.path_deployment.empty()) << target;
    }
    auto r = post("/openai/v1/embeddings/?api-version=preview");
    EXPECT_EQ(r.what, kind::inference);
    EXPECT_EQ(r.op, operation::embeddings);
}

TEST(ClassifyRoute, ClassicDeploymentFormTakesTheNameFromThePath) {
    constexpr op_case classic_ops[] = {
        {"chat/completions", operation::chat_completions},
        {"completions", operation::completions},
        {"embeddings", operation::embeddings},
    };
    for (const auto& c : classic_ops) {
        std::string target = "/openai/deployments/gpt4o-deployment/" + std::string(c.path) + "?api-version=2024-10-21";
        auto r = post(target);
        EXPECT_EQ(r.what, kind::inference) << target;
        EXPECT_EQ(r.op, c.op) << target;
        EXPECT_EQ(r.path_deployment, "gpt4o-deployment") << target;
    }
}

TEST(ClassifyRoute, ClassicDeploymentNameIsAViewIntoTheTarget) {
    const std::string target = "/openai/deployments/my.dep_1-x/embeddings?api-version=2024-02-01";
    auto r = post(target);
    ASSERT_EQ(r.what, kind::inference);
    EXPECT_EQ(r.path_deployment, "my.dep_1-x");
    EXPECT_EQ(r.path_deployment.data(), target.data() + target.find("my.dep"));
}

TEST(ClassifyRoute, ClassicFormWithoutQueryAndWithTrailingSlash) {
    for (std::string_view target : {"/openai/deployments/d1/chat/completions",
                                    "/openai/deployments/d1/chat/completions/",
                                    "/openai/deployments/d1/chat/completions/?api-version=2024-10-21"}) {
        auto r = post(target);
        EXPECT_EQ(r.what, kind::inference) << target;
        EXPECT_EQ(r.op, operation::chat_completions) << target;
        EXPECT_EQ(r.path_deployment, "d1") << target;
    }
}

TEST(ClassifyRoute, ClassicResponsesIsNotARoute) {
    EXPECT_EQ(post("/openai/deployments/x/responses").what, kind::not_found);
    EXPECT_EQ(post("/openai/deployments/x/responses?api-version=2025-03-01-preview").what, kind::not_found);
    EXPECT_EQ(get("/openai/deployments/x/responses").what, kind::not_found);
}

TEST(ClassifyRoute, ModelsListingWithGet) {
    for (std::string_view target : {"/v1/models", "/openai/v1/models", "/v1/models/", "/openai/v1/models?api-version=preview"}) {
        auto r = get(target);
        EXPECT_EQ(r.what, kind::list_models) << target;
        EXPECT_TRUE(r.path_deployment.empty()) << target;
    }
}

TEST(ClassifyRoute, WrongMethodsAreMethodNotAllowed) {
    EXPECT_EQ(post("/v1/models").what, kind::method_not_allowed);
    EXPECT_EQ(post("/openai/v1/models").what, kind::method_not_allowed);
    EXPECT_EQ(other_method("/v1/models").what, kind::method_not_allowed);
    for (const auto& c : body_model_ops) {
        std::string target = "/v1/" + std::string(c.path);
        EXPECT_EQ(get(target).what, kind::method_not_allowed) << target;
        EXPECT_EQ(other_method(target).what, kind::method_not_allowed) << target;
        target = "/openai/v1/" + std::string(c.path);
        EXPECT_EQ(get(target).what, kind::method_not_allowed) << target;
    }
    auto r = get("/openai/deployments/d1/chat/completions?api-version=2024-10-21");
    EXPECT_EQ(r.what, kind::method_not_allowed);
    EXPECT_EQ(other_method("/openai/deployments/d1/embeddings").what, kind::method_not_allowed);
}

TEST(ClassifyRoute, UnknownPathsAreNotFound) {
    for (std::string_view target : {
             "/", "", "/v1", "/v1/", "/openai", "/openai/", "/openai/v1", "/openai/v1/",
             "/v1/chat", "/v1/chat/", "/v1/chat/completion", "/v1/chat/completions/extra",
             "/v1/embedding", "/v1/Embeddings", "/V1/embeddings", "/v2/embeddings",
             "/v1/models/gpt-4o", "/v1/files", "/v1/images/generations", "/v1/audio/transcriptions",
             "/v1//chat/completions", "//v1/chat/completions", "/api/v1/chat/completions",
             "/chat/completions", "/embeddings", "/openai/chat/completions",
             "/openai/deployments", "/openai/deployments/", "/openai/deployments/d1",
             "/openai/deployments/d1/", "/openai/deployments//chat/completions",
             "/openai/deployments/d1/chat", "/openai/deployments/d1/models",
             "/openai/deployments/d1/chat/completions/extra", "/openai/deployments/d1/images/generations",
             "/openai/deployments/d1/audio/speech", "/openai/models", "/models",
             "/v1/chat/completions#frag", "/metrics", "/healthz",
         }) {
        EXPECT_EQ(post(target).what, kind::not_found) << "POST " << target;
        EXPECT_EQ(get(target).what, kind::not_found) << "GET " << target;
    }
}

TEST(ClassifyRoute, QueryStringIsNotPartOfThePath) {
    EXPECT_EQ(post("/v1/chat?/completions").what, kind::not_found);
    EXPECT_EQ(get("/v1?models").what, kind::not_found);
    EXPECT_EQ(post("/openai/deployments/d1?/chat/completions").what, kind::not_found);
}

TEST(ClassifyRoute, OperationNames) {
    EXPECT_EQ(op_path(operation::chat_completions), "chat/completions");
    EXPECT_EQ(op_path(operation::completions), "completions");
    EXPECT_EQ(op_path(operation::embeddings), "embeddings");
    EXPECT_EQ(op_path(operation::responses), "responses");
    EXPECT_EQ(op_azure_name(operation::chat_completions), "ChatCompletions_Create");
    EXPECT_EQ(op_azure_name(operation::completions), "Completions_Create");
    EXPECT_EQ(op_azure_name(operation::embeddings), "Embeddings_Create");
    EXPECT_EQ(op_azure_name(operation::responses), "Responses_Create");
}

// Round trip: what op_path says is what classify_route accepts.
TEST(ClassifyRoute, OpPathRoundTrips) {
    for (operation op : {operation::chat_completions, operation::completions, operation::embeddings, operation::responses}) {
        auto r = post("/v1/" + std::string(op_path(op)));
        EXPECT_EQ(r.what, kind::inference);
        EXPECT_EQ(r.op, op);
    }
}

}  // namespace
}  // namespace spillway::proxy
