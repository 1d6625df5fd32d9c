#include "http/tls.hpp"

#include <spdlog/spdlog.h>

namespace spillway::http {

namespace ssl = boost::asio::ssl;

std::unique_ptr<ssl::context> make_server_tls(const std::string& cert_file, const std::string& key_file) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(cert_file);
    ctx->use_private_key_file(key_file, ssl::context::pem);
    return ctx;
}

std::unique_ptr<ssl::context> make_client_tls(bool verify, const std::string& ca_file) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (verify) {
        ctx->set_default_verify_paths();
        if (!ca_file.empty()) ctx->load_verify_file(ca_file);
        ctx->set_verify_mode(ssl::verify_peer);
    } else {
        spdlog::warn("upstream TLS certificate verification is OFF for a region (tls_verify: false)");
        ctx->set_verify_mode(ssl::verify_none);
    }
    return ctx;
}

}  // namespace spillway::http
