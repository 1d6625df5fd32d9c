#include "http/small_blocks.hpp"

#include <array>
#include <bit>

namespace spillway::http::detail {

namespace {

constexpr std::array<std::size_t, 4> class_bytes{64, 128, 256, largest_small_block};
constexpr std::size_t too_large = class_bytes.size();

// The size class of a block of `bytes` (64, 128, 256 or 512 bytes), or too_large.
std::size_t class_of(std::size_t bytes) noexcept {
    if (bytes > largest_small_block) return too_large;
    return bytes <= 64 ? 0 : static_cast<std::size_t>(std::bit_width((bytes - 1) >> 6));
}

// A free list threaded through the blocks themselves.
struct free_list {
    void* head = nullptr;
    std::size_t count = 0;
};

// Trivially constructed and destroyed, so that reaching it costs no thread_local guard check on
// every allocation; the blocks are freed at thread exit by `releaser`, set up on first use.
struct small_block_cache {
    std::array<free_list, class_bytes.size()> lists;
    bool releaser_armed = false;
};
constinit thread_local small_block_cache cache;

struct releaser {
    ~releaser() {
        for (auto& list : cache.lists) {
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

void arm_releaser() {
    cache.releaser_armed = true;
    static thread_local releaser at_thread_exit;
    (void)at_thread_exit;
}

}  // namespace

void* take_small_block(std::size_t bytes) {
    const std::size_t c = class_of(bytes);
    if (c == too_large) return ::operator new(bytes);
    free_list& list = cache.lists[c];
    if (!list.head) return ::operator new(class_bytes[c]);
    void* p = list.head;
    list.head = *static_cast<void**>(p);
    --list.count;
    return p;
}

void give_small_block(void* p, std::size_t bytes) noexcept {
    const std::size_t c = class_of(bytes);
    if (c == too_large || cache.lists[c].count >= small_blocks_per_size) {
        ::operator delete(p);
        return;
    }
    if (!cache.releaser_armed) arm_releaser();
    free_list& list = cache.lists[c];
    *static_cast<void**>(p) = list.head;
    list.head = p;
    ++list.count;
}

std::size_t small_blocks_kept(std::size_t bytes) noexcept {
    const std::size_t c = class_of(bytes);
    return c == too_large ? 0 : cache.lists[c].count;
}

}  // namespace spillway::http::detail
