// The buffer a client connection reads requests into. Connections idle far more than they read,
// so the buffer is handed back between requests; blocks of the usual sizes are kept in a small
// per-thread cache, so that taking one for the next request costs no heap allocation. The
// relay's body pieces come from the same cache (scratch_block).
#pragma once

#include <boost/beast/core/flat_buffer.hpp>

#include <cstddef>
#include <new>

namespace spillway::http {

namespace detail {
void* take_cached_block(std::size_t n) noexcept;      // nullptr if none of size n is cached
bool give_cached_block(void* p, std::size_t n) noexcept;  // false if not kept (wrong size, cache full)
}  // namespace detail

inline constexpr std::size_t read_block_bytes = 8 * 1024;
inline constexpr std::size_t relay_block_bytes = 16 * 1024;

template <class T>
struct recycling_block_allocator {
    using value_type = T;
    recycling_block_allocator() = default;
    template <class U>
    recycling_block_allocator(const recycling_block_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if (void* p = detail::take_cached_block(n * sizeof(T))) return static_cast<T*>(p);
        return static_cast<T*>(::operator new(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (!detail::give_cached_block(p, n * sizeof(T))) ::operator delete(p);
    }
    template <class U>
    bool operator==(const recycling_block_allocator<U>&) const noexcept { return true; }
};

using read_buffer = boost::beast::basic_flat_buffer<recycling_block_allocator<char>>;

// A block of `Size` bytes from the cache, for as long as it lives.
template <std::size_t Size>
class scratch_block {
public:
    scratch_block() : data_(recycling_block_allocator<char>{}.allocate(Size)) {}
    ~scratch_block() { recycling_block_allocator<char>{}.deallocate(data_, Size); }
    scratch_block(const scratch_block&) = delete;
    scratch_block& operator=(const scratch_block&) = delete;

    char* data() noexcept { return data_; }
    static constexpr std::size_t size() noexcept { return Size; }

private:
    char* data_;
};

}  // namespace spillway::http
