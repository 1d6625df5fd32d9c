#include "proxy/client_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace spillway::proxy {

client_auth::client_auth(const config::auth& cfg)
    : sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr), EVP_MD_free), required_(cfg.mode == config::auth_mode::keys) {
    if (!sha256_) throw std::runtime_error("OpenSSL has no SHA-256: client keys cannot be checked");
    for (const auto& k : cfg.keys) {
        auto d = hash(k.key);
        if (!d) throw std::runtime_error("OpenSSL could not compute a SHA-256 digest: client keys cannot be checked");
        keys_.push_back(*d);
    }
}

std::optional<client_auth::digest> client_auth::hash(std::string_view s) const {
    // EVP_Digest allocates and frees a context per call; a per-thread one is reset instead.
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    digest d{};
    if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256_.get(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), s.data(), s.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), d.data(), nullptr) != 1)
        return std::nullopt;
    return d;
}

std::string_view client_auth::presented_key(std::string_view api_key_header, std::string_view authorization_header) {
    if (!api_key_header.empty()) return api_key_header;
    constexpr std::string_view bearer = "Bearer ";
    if (authorization_header.size() > bearer.size()) {
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        bool is_bearer = true;
        for (std::size_t i = 0; i < bearer.size(); ++i) {
            char a = authorization_header[i], b = bearer[i];
            if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
            if (a != b) is_bearer = false;
        }
        if (is_bearer) return authorization_header.substr(bearer.size());
    }
    return {};
}

client_auth::verdict client_auth::check(std::string_view presented) const {
    if (!required_) return {true, std::nullopt};
    if (presented.empty()) return {};
    const auto d = hash(presented);
    if (!d) {  // refused: a key that cannot be checked is not let in
        spdlog::error("client key not checked: OpenSSL could not compute its SHA-256 digest");
        return {};
    }
    verdict v;
    // Compare against every key, without stopping early, so the time taken does not reveal which matched.
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        if (CRYPTO_memcmp(d->data(), keys_[i].data(), d->size()) == 0) {
            v.allowed = true;
            v.key_index = i;
        }
    }
    return v;
}

}  // namespace spillway::proxy
