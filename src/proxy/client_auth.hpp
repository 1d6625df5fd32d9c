// Client authentication (SPEC §2 auth): the key arrives as `api-key: K` or
// `Authorization: Bearer K`. Keys are compared as SHA-256 digests with CRYPTO_memcmp against
// every configured key, so neither a key's content nor its length leaks through timing.
#pragma once

#include "config/config.hpp"

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace spillway::proxy {

class client_auth {
public:
    explicit client_auth(const config::auth& cfg);

    // The presented key as found in the headers; empty if neither header carries one.
    static std::string_view presented_key(std::string_view api_key_header, std::string_view authorization_header);

    // Index of the matching configured key (into config::auth::keys), nullopt if none matches.
    // With auth mode "none" every request passes and the index is nullopt.
    struct verdict {
        bool allowed = false;
        std::optional<std::size_t> key_index;
    };
    verdict check(std::string_view presented) const;

private:
    using digest = std::array<unsigned char, 32>;
    std::optional<digest> hash(std::string_view s) const;  // nullopt if OpenSSL fails

    // OpenSSL 3 looks the algorithm up on every one-shot SHA256() call: fetch it once.
    std::shared_ptr<EVP_MD> sha256_;
    bool required_;
    std::vector<digest> keys_;
};

}  // namespace spillway::proxy
