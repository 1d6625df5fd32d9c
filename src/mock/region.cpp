// Request handling of one simulated region. Order of checks (also in src/mock/README.md):
// auth (401) -> route (404; a classic URL without api-version is 404 like Azure) -> body (400)
// -> deployment (404 DeploymentNotFound) -> injected fault -> quota admission (429) -> answer.
#include "mock/region.hpp"

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <limits>

namespace spillway::mock {

namespace {

using json = nlohmann::json;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t max_recorded_body = 1 << 20;

constexpr std::string_view access_denied_message =
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource.";
constexpr std::string_view deployment_not_found_message =
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again.";

struct route {
    enum class kind { operation, models, not_found };
    kind what = kind::not_found;
    mock::operation op = mock::operation::chat_completions;
    std::string_view deployment;   // classic form only; v1 takes it from the body
    std::string_view api_version;  // "" if absent
};

std::string_view query_param(std::string_view query, std::string_view key) {
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

std::optional<mock::operation> parse_operation(std::string_view op, bool v1) {
    if (op == "chat/completions") return operation::chat_completions;
    if (op == "completions") return operation::completions;
    if (op == "embeddings") return operation::embeddings;
    if (v1 && op == "responses") return operation::responses;
    return std::nullopt;
}

route resolve(http::verb method, std::string_view target) {
    route r;
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    r.api_version = query_param(query, "api-version");
    if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);

    constexpr std::string_view classic = "/openai/deployments/";
    if (path.starts_with(classic)) {
        std::string_view rest = path.substr(classic.size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0) return r;
        auto op = parse_operation(rest.substr(slash + 1), false);
        // Azure answers a missing api-version with 404 "Resource not found", not 400.
        if (!op || method != http::verb::post || r.api_version.empty()) return r;
        r.what = route::kind::operation;
        r.op = *op;
        r.deployment = rest.substr(0, slash);
        return r;
    }
    std::string_view rest;
    if (path.starts_with("/openai/v1/")) rest = path.substr(11);
    else if (path.starts_with("/v1/")) rest = path.substr(4);
    else return r;
    if (rest == "models") {
        if (method == http::verb::get) r.what = route::kind::models;
        return r;
    }
    auto op = parse_operation(rest, true);
    if (!op || method != http::verb::post) return r;
    r.what = route::kind::operation;
    r.op = *op;
    return r;
}

bool authorized(const request& req, std::string_view key) {
    if (auto it = req.find("api-key"); it != req.end() && it->value() == key) return true;
    if (auto it = req.find(http::field::authorization); it != req.end()) {
        std::string_view v = it->value();
        if (v.size() > 7 && (v.starts_with("Bearer ") || v.starts_with("bearer ")) && v.substr(7) == key) return true;
    }
    return false;
}

std::string error_fault_body(unsigned status) {
    switch (status) {
        case 500:
            return azure_error_body("InternalServerError",
                                    "The server had an error while processing your request. Sorry about that!");
        case 502: return azure_error_body("BadGateway", "Bad gateway.");
        case 503:
            return azure_error_body("ServiceUnavailable",
                                    "The service is temporarily unable to process your request. Please try again later.");
        case 504: return azure_error_body("Timeout", "The operation was timeout.");
        case 408: return azure_error_body("Timeout", "The operation was timeout.");
        default: return azure_error_body(std::to_string(status), "Error injected by spillway-mock.");
    }
}

std::uint64_t ceil_ms(core::clock_duration d) {
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
    return ms > 0 ? static_cast<std::uint64_t>(ms) : 0;
}

json fault_to_json(const fault_spec& f) {
    return {{"mode", to_string(f.mode)},         {"status", f.status},
            {"rate", f.rate},                    {"retry_after_ms", f.retry_after_ms},
            {"retry_after_header", f.retry_after_header}, {"after_chunks", f.after_chunks}};
}

json remaining_json(std::uint64_t v) { return v == unlimited ? json(nullptr) : json(v); }

}  // namespace

std::string_view to_string(fault_mode m) noexcept {
    switch (m) {
        case fault_mode::none: return "none";
        case fault_mode::down: return "down";
        case fault_mode::error: return "error";
        case fault_mode::hang: return "hang";
        case fault_mode::reset: return "reset";
        case fault_mode::stall: return "stall";
        case fault_mode::throttle: return "throttle";
    }
    return "none";
}

std::vector<std::string> parse_fault(std::string_view text, fault_spec& out) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return {"body: must be a JSON object"};
    std::vector<std::string> problems;
    fault_spec f;
    bool have_mode = false;
    for (const auto& [k, v] : j.items()) {
        if (k == "mode") {
            have_mode = true;
            std::string m = v.is_string() ? v.get<std::string>() : "";
            if (m == "none") f.mode = fault_mode::none;
            else if (m == "down") f.mode = fault_mode::down;
            else if (m == "error") f.mode = fault_mode::error;
            else if (m == "hang") f.mode = fault_mode::hang;
            else if (m == "reset") f.mode = fault_mode::reset;
            else if (m == "stall") f.mode = fault_mode::stall;
            else if (m == "throttle") f.mode = fault_mode::throttle;
            else problems.push_back("mode: must be one of none, down, error, hang, reset, stall, throttle");
        } else if (k == "status") {
            if (!v.is_number_unsigned() || v.get<std::uint64_t>() < 100 || v.get<std::uint64_t>() > 599)
                problems.push_back("status: must be an HTTP status (100-599)");
            else f.status = v.get<unsigned>();
        } else if (k == "rate") {
            if (!v.is_number() || v.get<double>() < 0.0 || v.get<double>() > 1.0)
                problems.push_back("rate: must be a number in [0, 1]");
            else f.rate = v.get<double>();
        } else if (k == "retry_after_ms") {
            if (!v.is_number_unsigned()) problems.push_back("retry_after_ms: must be an unsigned integer");
            else f.retry_after_ms = v.get<std::uint64_t>();
        } else if (k == "retry_after_header") {
            if (!v.is_boolean()) problems.push_back("retry_after_header: must be a boolean");
            else f.retry_after_header = v.get<bool>();
        } else if (k == "after_chunks") {
            if (!v.is_number_unsigned()) problems.push_back("after_chunks: must be an unsigned integer");
            else f.after_chunks = v.get<std::uint64_t>();
        } else {
            problems.push_back(k + ": unknown key");
        }
    }
    if (!have_mode) problems.push_back("mode: is required");
    if (problems.empty()) out = f;
    return problems;
}

std::vector<std::string> parse_latency(std::string_view text, latency_spec& out) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return {"body: must be a JSON object"};
    std::vector<std::string> problems;
    latency_spec l = out;
    for (const auto& [k, v] : j.items()) {
        std::chrono::milliseconds* target = k == "ttft_ms" ? &l.ttft : k == "token_ms" ? &l.per_token : nullptr;
        if (!target) problems.push_back(k + ": unknown key");
        else if (!v.is_number_unsigned()) problems.push_back(k + ": must be an unsigned integer");
        else *target = std::chrono::milliseconds{v.get<std::int64_t>()};
    }
    if (problems.empty()) out = l;
    return problems;
}

region::region(region_spec spec, const core::clock& clock, std::uint64_t seed)
    : spec_(std::move(spec)), clock_(clock), latency_(spec_.latency), rng_(seed) {
    for (const auto& d : spec_.deployments) {
        rate_limits limits{.tokens_per_minute = d.tpm, .requests_per_minute = effective_rpm(d)};
        deployments_.push_back(std::make_unique<deployment_state>(deployment_state{d, rate_window{limits, clock_}}));
    }
}

region::deployment_state* region::find_deployment(std::string_view name, bool also_model) {
    for (auto& d : deployments_)
        if (d->spec.name == name) return d.get();
    if (also_model)
        for (auto& d : deployments_)
            if (d->spec.model == name) return d.get();
    return nullptr;
}

std::string region::next_request_id() {
    // Unique per process run and region; shaped like the GUIDs Azure sends.
    std::uint64_t n = request_counter_.fetch_add(1, std::memory_order_relaxed) + 1;
    std::uint32_t h = 2166136261u;
    for (char c : spec_.name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012llx", h, static_cast<unsigned long long>(n));
    return buf;
}

void region::record(const request& req) {
    recorded_request r;
    r.method = std::string{req.method_string()};
    r.target = std::string{req.target()};
    for (const auto& f : req) r.headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
    r.body = req.body().size() > max_recorded_body ? req.body().substr(0, max_recorded_body) : req.body();
    std::lock_guard lock{mu_};
    ++requests_;
    last_request_ = std::move(r);
}

void region::count_status(unsigned status) {
    std::lock_guard lock{mu_};
    ++by_status_[status];
}

response region::make_response(const request& req, const std::string& request_id, unsigned status,
                                std::string body) {
    response res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    res.set("x-request-id", request_id);
    res.set("apim-request-id", request_id);
    res.set("x-ms-region", spec_.name);
    if (auto it = req.find("x-ms-client-request-id"); it != req.end()) res.set("x-ms-client-request-id", it->value());
    res.body() = std::move(body);
    return res;
}

action region::answer(const request& req, const std::string& request_id, unsigned status, std::string body) {
    count_status(status);
    action a;
    a.response = make_response(req, request_id, status, std::move(body));
    return a;
}

namespace {

void add_rate_headers(response& res, const rate_window& w, std::uint64_t remaining_tokens,
                      std::uint64_t remaining_requests) {
    if (w.requests_limited()) {
        res.set("x-ratelimit-limit-requests", std::to_string(w.limits().requests_per_window()));
        res.set("x-ratelimit-remaining-requests", std::to_string(remaining_requests));
    }
    if (w.tokens_limited()) {
        res.set("x-ratelimit-limit-tokens", std::to_string(w.limits().tokens_per_minute));
        res.set("x-ratelimit-remaining-tokens", std::to_string(remaining_tokens));
    }
}

}  // namespace

action region::plan(const request& req) {
    record(req);
    const std::string id = next_request_id();
    if (!authorized(req, spec_.api_key)) return answer(req, id, 401, azure_error_body("401", access_denied_message));

    route r = resolve(req.method(), req.target());
    if (r.what == route::kind::not_found) return answer(req, id, 404, azure_error_body("404", "Resource not found"));

    std::optional<request_info> info;
    deployment_state* dep = nullptr;
    if (r.what == route::kind::operation) {
        auto inspected = inspect_request(r.op, req.body());
        if (!inspected.info) return answer(req, id, 400, invalid_request_body(inspected.error));
        info = std::move(inspected.info);
        bool v1 = r.deployment.empty();
        if (v1 && info->model.empty())
            return answer(req, id, 400, invalid_request_body("you must provide a model parameter"));
        dep = find_deployment(v1 ? std::string_view{info->model} : r.deployment, v1);
        if (!dep) return answer(req, id, 404, azure_error_body("DeploymentNotFound", deployment_not_found_message));
    }
    const bool stream = info && info->stream && r.op != operation::embeddings;
    const std::string_view api_version = r.api_version.empty() ? std::string_view{"v1"} : r.api_version;

    fault_spec fault;
    latency_spec latency;
    bool error_fires = false;
    admission adm;
    {
        std::lock_guard lock{mu_};
        fault = fault_;
        latency = latency_;
        if (fault.mode == fault_mode::error) error_fires = rng_.next_unit() < fault.rate;
        // A fault answers instead of the deployment, so it consumes no quota.
        bool faulted = fault.mode == fault_mode::throttle || fault.mode == fault_mode::hang ||
                       fault.mode == fault_mode::reset || fault.mode == fault_mode::stall ||
                       fault.mode == fault_mode::down || error_fires;
        if (dep) {
            if (faulted) {
                adm.admitted = true;
                adm.remaining_tokens = dep->window.remaining_tokens();
                adm.remaining_requests = dep->window.remaining_requests();
            } else {
                adm = dep->window.try_admit(estimate_tokens(r.op, *info, spec_.default_max_tokens));
            }
        }
    }

    switch (fault.mode) {
        case fault_mode::hang: {
            action a;
            a.what = action::kind::hang;
            return a;
        }
        case fault_mode::down:  // a request that raced the listener going down: behave like a dead region
        case fault_mode::reset:
            if (!stream) {
                action a;
                a.what = action::kind::reset;
                return a;
            }
            break;
        case fault_mode::throttle: {
            std::uint64_t seconds = (fault.retry_after_ms + 999) / 1000;
            action a = answer(req, id, 429, throttle_body(r.op, limit_kind::tokens, api_version, seconds));
            if (fault.retry_after_header) {
                a.response.set("retry-after", std::to_string(seconds));
                a.response.set("retry-after-ms", std::to_string(fault.retry_after_ms));
            }
            if (dep) add_rate_headers(a.response, dep->window, adm.remaining_tokens, adm.remaining_requests);
            return a;
        }
        case fault_mode::stall: break;  // the answer starts as usual (below), then stops
        case fault_mode::error:
            if (error_fires) {
                action a = answer(req, id, fault.status, error_fault_body(fault.status));
                if (dep) add_rate_headers(a.response, dep->window, adm.remaining_tokens, adm.remaining_requests);
                return a;
            }
            break;
        case fault_mode::none: break;
    }

    if (r.what == route::kind::models) {
        std::string body = R"({"object":"list","data":[)";
        for (std::size_t i = 0; i < deployments_.size(); ++i) {
            if (i) body += ',';
            body += R"({"id":)";
            append_json_string(body, deployments_[i]->spec.name);
            body += R"(,"object":"model","created":0,"owned_by":"system","model":)";
            append_json_string(body, deployments_[i]->spec.model);
            body += '}';
        }
        body += "]}";
        return answer(req, id, 200, std::move(body));
    }

    if (!adm.admitted) {
        std::uint64_t ms = ceil_ms(adm.retry_after);
        std::uint64_t seconds = (ms + 999) / 1000;
        action a = answer(req, id, 429, throttle_body(r.op, adm.exceeded, api_version, seconds));
        a.response.set("retry-after", std::to_string(seconds));
        a.response.set("retry-after-ms", std::to_string(ms));
        add_rate_headers(a.response, dep->window, adm.remaining_tokens, adm.remaining_requests);
        return a;
    }

    const unsigned completion =
        r.op == operation::embeddings ? 0 : completion_tokens(*info, spec_.completion_tokens);
    std::string prefixed_id = (r.op == operation::responses     ? "resp_"
                               : r.op == operation::completions ? "cmpl-"
                                                                : "chatcmpl-") +
                              id;
    answer_context ctx{.region = spec_.name,
                       .deployment = dep->spec.name,
                       .model = dep->spec.model,
                       .id = prefixed_id,
                       .created = static_cast<std::int64_t>(std::time(nullptr)),
                       // Real usage is never 0 for a non-empty prompt; admission keeps the plain estimate.
                       .prompt_tokens = info->prompt_chars > 0 ? std::max<std::uint64_t>(1, prompt_tokens(*info)) : 0,
                       .completion_tokens = completion,
                       .truncated = completion < spec_.completion_tokens && r.op != operation::embeddings};

    action a;
    if (stream) {
        a = answer(req, id, 200, {});
        a.what = action::kind::stream;
        a.response.set(http::field::content_type, "text/event-stream; charset=utf-8");
        a.response.set(http::field::cache_control, "no-cache");
        a.events = stream_events(r.op, ctx, info->include_usage);
        a.delay = latency.ttft;
        a.per_token = latency.per_token;
        if (fault.mode == fault_mode::reset || fault.mode == fault_mode::down) a.reset_after = fault.after_chunks;
        if (fault.mode == fault_mode::stall) a.stall_after = fault.after_chunks;
    } else {
        std::string body;
        switch (r.op) {
            case operation::chat_completions: body = chat_completion_body(ctx); break;
            case operation::completions: body = text_completion_body(ctx); break;
            case operation::embeddings: body = embeddings_body(ctx, info->inputs, info->base64); break;
            case operation::responses: body = response_body(ctx); break;
        }
        a = answer(req, id, 200, std::move(body));
        a.delay = latency.ttft + completion * latency.per_token;
        if (fault.mode == fault_mode::stall) a.stall_after = a.response.body().size() / 2;
    }
    add_rate_headers(a.response, dep->window, adm.remaining_tokens, adm.remaining_requests);
    return a;
}

fault_spec region::fault() const {
    std::lock_guard lock{mu_};
    return fault_;
}

void region::set_fault(const fault_spec& f) {
    std::lock_guard lock{mu_};
    fault_ = f;
}

latency_spec region::latency() const {
    std::lock_guard lock{mu_};
    return latency_;
}

void region::set_latency(latency_spec l) {
    std::lock_guard lock{mu_};
    latency_ = l;
}

void region::reset() {
    std::lock_guard lock{mu_};
    fault_ = fault_spec{};
    latency_ = spec_.latency;
    requests_ = 0;
    by_status_.clear();
    last_request_.reset();
    connections_accepted_.store(0, std::memory_order_relaxed);
    for (auto& d : deployments_) d->window.reset();
}

json region::stats_locked() const {
    json by_status = json::object();
    for (const auto& [status, n] : by_status_) by_status[std::to_string(status)] = n;
    json j = {{"requests", requests_},
              {"by_status", by_status},
              {"connections_accepted", connections_accepted_.load(std::memory_order_relaxed)},
              {"last_request", nullptr}};
    if (last_request_) {
        json headers = json::object();
        for (const auto& [k, v] : last_request_->headers) {
            // Repeated headers are joined as HTTP allows; names keep the client's spelling.
            auto it = headers.find(k);
            if (it == headers.end()) headers[k] = v;
            else *it = it->get<std::string>() + ", " + v;
        }
        j["last_request"] = {{"method", last_request_->method},
                             {"target", last_request_->target},
                             {"headers", headers},
                             {"body", last_request_->body}};
    }
    return j;
}

std::string region::stats_json() const {
    std::lock_guard lock{mu_};
    // Bodies are whatever clients sent: replace invalid UTF-8 rather than throw.
    return stats_locked().dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string region::describe_json(std::uint16_t port, bool listening) const {
    std::lock_guard lock{mu_};
    json deps = json::array();
    for (const auto& d : deployments_) {
        deps.push_back({{"name", d->spec.name},
                        {"model", d->spec.model},
                        {"tpm", d->spec.tpm},
                        {"rpm", effective_rpm(d->spec)},
                        {"remaining_tokens", remaining_json(d->window.remaining_tokens())},
                        {"remaining_requests", remaining_json(d->window.remaining_requests())}});
    }
    json j = {{"name", spec_.name},
              {"address", spec_.address},
              {"port", port},
              {"listening", listening},
              {"fault", fault_to_json(fault_)},
              {"latency", {{"ttft_ms", latency_.ttft.count()}, {"token_ms", latency_.per_token.count()}}},
              {"completion_tokens", spec_.completion_tokens},
              {"deployments", deps},
              {"stats", stats_locked()}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace spillway::mock
