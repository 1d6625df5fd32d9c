#include "quota/client_limits.hpp"

namespace spillway::quota {

client_limits::client_limits(const std::vector<client_limit>& per_key) {
    for (const auto& l : per_key) {
        auto s = std::make_unique<state>();
        s->limit = l;
        clients_.push_back(std::move(s));
    }
}

client_limits::verdict client_limits::admit(std::size_t key_index, core::time_point now, std::uint64_t tokens) {
    if (key_index >= clients_.size()) return {};
    state& s = *clients_[key_index];
    if (!s.limit.rpm && !s.limit.tpm) return {};
    std::lock_guard lock(s.mutex);
    verdict v;
    if (s.limit.rpm && s.requests.total(now) + 1 > *s.limit.rpm) {
        v = {false, s.requests.when_at_most(now, *s.limit.rpm - 1) - now, "requests"};
        return v;
    }
    if (s.limit.tpm && s.tokens.total(now) + tokens > *s.limit.tpm) {
        std::uint64_t target = *s.limit.tpm >= tokens ? *s.limit.tpm - tokens : 0;
        v = {false, s.tokens.when_at_most(now, target) - now, "tokens"};
        return v;
    }
    if (s.limit.rpm) s.requests.add(now, 1);
    if (s.limit.tpm) s.tokens.add(now, tokens);
    return v;
}

}  // namespace spillway::quota
