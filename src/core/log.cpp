#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace spillway::core {

void setup_logging(std::string_view level, std::string_view format) {
    // Diagnostics go to stderr; stdout is kept for the access log (one JSON line per request).
    spdlog::drop("spillway");
    auto logger = spdlog::stderr_logger_mt("spillway");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(std::string{level}));
    if (format == "json")
        spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%v"})");
    else
        spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

std::shared_ptr<spdlog::logger> make_access_logger() {
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("access", sink);
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    return logger;
}

}  // namespace spillway::core
