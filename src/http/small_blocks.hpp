// Memory for the heads of parsed messages: a request's parser is new for every request, and
// its copy of the head and its lists of fields are heap blocks of their own, freed when the
// exchange ends. Blocks of up to 512 bytes are rounded up to one of four sizes and kept on
// per-thread free lists instead, so after warm-up a request's head costs no trip to malloc.
// A block may be freed on another thread than the one that took it: it then joins that
// thread's lists (all blocks come from operator new).
#pragma once

#include <cstddef>
#include <new>

namespace spillway::http {

namespace detail {
void* take_small_block(std::size_t bytes);                 // operator new when none is kept
void give_small_block(void* p, std::size_t bytes) noexcept;  // operator delete when the list is full
std::size_t small_blocks_kept(std::size_t bytes) noexcept;   // on this thread, of the size class of `bytes`
}  // namespace detail

// How many blocks of each size one thread keeps: enough for the heads of every exchange one
// worker has in flight under heavy load (beyond that they go back to the heap).
inline constexpr std::size_t small_blocks_per_size = 256;
inline constexpr std::size_t largest_small_block = 512;

template <class T>
struct message_allocator {
    using value_type = T;
    message_allocator() = default;
    template <class U>
    message_allocator(const message_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) { return static_cast<T*>(detail::take_small_block(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { detail::give_small_block(p, n * sizeof(T)); }

    template <class U>
    bool operator==(const message_allocator<U>&) const noexcept { return true; }
};

}  // namespace spillway::http
