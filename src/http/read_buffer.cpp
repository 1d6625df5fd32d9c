#include "http/read_buffer.hpp"

#include <array>

namespace spillway::http::detail {

namespace {

// Enough for every connection that is mid-request on one worker under heavy load; beyond that
// blocks go back to the heap.
constexpr std::size_t cache_capacity = 256;

struct block_cache {
    std::array<void*, cache_capacity> blocks;
    std::size_t count = 0;
    ~block_cache() {
        while (count) ::operator delete(blocks[--count]);
    }
};

thread_local block_cache read_blocks;
thread_local block_cache relay_blocks;

block_cache* cache_for(std::size_t n) noexcept {
    if (n == read_block_bytes) return &read_blocks;
    if (n == relay_block_bytes) return &relay_blocks;
    return nullptr;
}

}  // namespace

void* take_cached_block(std::size_t n) noexcept {
    block_cache* cache = cache_for(n);
    if (!cache || cache->count == 0) return nullptr;
    return cache->blocks[--cache->count];
}

bool give_cached_block(void* p, std::size_t n) noexcept {
    block_cache* cache = cache_for(n);
    if (!cache || cache->count == cache_capacity) return false;
    cache->blocks[cache->count++] = p;
    return true;
}

}  // namespace spillway::http::detail
