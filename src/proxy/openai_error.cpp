#include "proxy/openai_error.hpp"

#include <nlohmann/json.hpp>

namespace spillway::proxy {

namespace bhttp = boost::beast::http;

std::string error_json(std::string_view type, std::string_view code, std::string_view message) {
    nlohmann::json body = {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
    // Messages may quote client input (a model name, a URL): never let invalid UTF-8 throw here.
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

error_response make_error(unsigned status, std::string_view type, std::string_view code,
                          std::string_view message, unsigned version) {
    error_response res{static_cast<bhttp::status>(status), version};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = error_json(type, code, message);
    res.prepare_payload();
    return res;
}

void set_retry_after(error_response& res, std::chrono::milliseconds wait) {
    auto ms = std::max<std::int64_t>(wait.count(), 0);
    res.set("retry-after", std::to_string((ms + 999) / 1000));
    res.set("retry-after-ms", std::to_string(ms));
}

}  // namespace spillway::proxy
