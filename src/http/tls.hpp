// TLS contexts: the server's (certificate + key from config) and the upstream client's
// (peer verification on by default, system CA store plus an optional extra bundle).
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace spillway::http {

std::unique_ptr<boost::asio::ssl::context> make_server_tls(const std::string& cert_file,
                                                           const std::string& key_file);

// verify=false exists for lab setups only (config `tls_verify: false`); it is logged loudly.
std::unique_ptr<boost::asio::ssl::context> make_client_tls(bool verify, const std::string& ca_file);

}  // namespace spillway::http
