#include "http/small_blocks.hpp"

#include <array>

namespace spillway::http::detail {

namespace {

constexpr std::array<std::size_t, 4> class_bytes{64, 128, 256, largest_small_block};

// The size class of a block of `bytes`, or class_bytes.size() when it is too large to keep.
std::size_t class_of(std::size_t bytes) noexcept {
    std::size_t c = 0;
    while (c < class_bytes.size() && bytes > class_bytes[c]) ++c;
    return c;
}

// A free list threaded through the blocks themselves.
struct free_list {
    void* head = nullptr;
    std::size_t count = 0;
};

struct small_block_cache {
    std::array<free_list, class_bytes.size()> lists;
    ~small_block_cache() {
        for (auto& list : lists) {
            while (list.head) {
                void* next = *static_cast<void**>(list.head);
                ::operator delete(list.head);
                list.head = next;
            }
            // Blocks freed after this (by other thread_local destructors) go to the heap.
            list.count = small_blocks_per_size;
        }
    }
};

thread_local small_block_cache cache;

}  // namespace

void* take_small_block(std::size_t bytes) {
    const std::size_t c = class_of(bytes);
    if (c == class_bytes.size()) return ::operator new(bytes);
    free_list& list = cache.lists[c];
    if (!list.head) return ::operator new(class_bytes[c]);
    void* p = list.head;
    list.head = *static_cast<void**>(p);
    --list.count;
    return p;
}

void give_small_block(void* p, std::size_t bytes) noexcept {
    const std::size_t c = class_of(bytes);
    if (c == class_bytes.size() || cache.lists[c].count >= small_blocks_per_size) {
        ::operator delete(p);
        return;
    }
    free_list& list = cache.lists[c];
    *static_cast<void**>(p) = list.head;
    list.head = p;
    ++list.count;
}

std::size_t small_blocks_kept(std::size_t bytes) noexcept {
    const std::size_t c = class_of(bytes);
    return c == class_bytes.size() ? 0 : cache.lists[c].count;
}

}  // namespace spillway::http::detail
