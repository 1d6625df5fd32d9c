// Unit tests for http/read_buffer: a read_buffer emptied between requests hands its 8 KiB block
// to this thread's cache and takes it back for the next request; other sizes, and blocks beyond
// the cache's capacity, go to the heap. The cache is per thread and outlives each test, so the
// tests that count blocks first take out what earlier tests left and put it back afterwards.
#include "http/read_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <new>
#include <thread>
#include <vector>

namespace spillway::http {
namespace {

constexpr std::size_t cache_capacity = 256;  // read_buffer.cpp

// Empties this thread's cache for the duration of a test, and restores it after.
class empty_cache {
public:
    empty_cache() {
        while (void* p = detail::take_cached_block(read_block_bytes)) saved_.push_back(p);
    }
    ~empty_cache() {
        // Whatever the test left is freed; what was there before goes back, oldest last.
        while (void* p = detail::take_cached_block(read_block_bytes)) ::operator delete(p);
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
            if (!detail::give_cached_block(*it, read_block_bytes)) ::operator delete(*it);
    }
    empty_cache(const empty_cache&) = delete;
    empty_cache& operator=(const empty_cache&) = delete;

private:
    std::vector<void*> saved_;
};

// Where the buffer's storage starts (its block), for a buffer with no readable bytes.
const void* block_of(read_buffer& b) { return b.prepare(0).data(); }

TEST(ReadBuffer, EmptiedBufferGetsItsBlockBackFromTheCache) {
    empty_cache guard;
    read_buffer b;
    b.reserve(read_block_bytes);
    ASSERT_EQ(b.capacity(), read_block_bytes);
    const void* block = block_of(b);

    b.shrink_to_fit();  // between requests
    EXPECT_EQ(b.capacity(), 0u);
    // Had the block gone back to the heap, an allocation of its size would likely reuse it.
    void* other = ::operator new(read_block_bytes);
    EXPECT_NE(other, block);

    b.reserve(read_block_bytes);  // the next request
    EXPECT_EQ(block_of(b), block);
    ::operator delete(other);
}

TEST(ReadBuffer, DestroyedBufferHandsItsBlockToTheCache) {
    empty_cache guard;
    const void* block = nullptr;
    {
        read_buffer b;
        b.reserve(read_block_bytes);
        block = block_of(b);
    }  // destroying a buffer hands its block back too
    void* cached = detail::take_cached_block(read_block_bytes);
    EXPECT_EQ(cached, block);
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), nullptr);  // exactly one
    ::operator delete(cached);
}

TEST(ReadBuffer, CachedBlockServesAnotherBufferOnTheSameThread) {
    empty_cache guard;
    read_buffer first;
    first.reserve(read_block_bytes);
    const void* block = block_of(first);
    first.shrink_to_fit();
    void* other = ::operator new(read_block_bytes);  // would likely reuse a block freed to the heap

    read_buffer second;
    second.reserve(read_block_bytes);
    EXPECT_EQ(block_of(second), block);
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), nullptr);  // taken, not copied
    ::operator delete(other);
}

TEST(ReadBuffer, BlockOfAnotherSizeGoesToTheHeap) {
    empty_cache guard;
    constexpr std::size_t large = 3 * read_block_bytes;  // no cache keeps this size
    {
        read_buffer b;
        b.reserve(large);
        ASSERT_EQ(b.capacity(), large);
    }
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), nullptr);
    EXPECT_EQ(detail::take_cached_block(large), nullptr);

    void* small = ::operator new(read_block_bytes / 2);
    EXPECT_FALSE(detail::give_cached_block(small, read_block_bytes / 2));
    ::operator delete(small);
    EXPECT_EQ(detail::take_cached_block(read_block_bytes / 2), nullptr);
}

TEST(ReadBuffer, OnlyBlocksOfTheUsualSizeAreTakenFromTheCache) {
    empty_cache guard;
    void* block = ::operator new(read_block_bytes);
    ASSERT_TRUE(detail::give_cached_block(block, read_block_bytes));
    EXPECT_EQ(detail::take_cached_block(read_block_bytes / 2), nullptr);
    EXPECT_EQ(detail::take_cached_block(read_block_bytes + 1), nullptr);

    read_buffer b;
    b.reserve(read_block_bytes - 1);  // not the usual size: from the heap, the cached block stays
    EXPECT_NE(block_of(b), block);
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), block);
    ::operator delete(block);
}

TEST(ReadBuffer, GrowingPastOneBlockCachesTheBlockAndHeapsTheLargerOne) {
    empty_cache guard;
    read_buffer b;
    b.reserve(read_block_bytes);
    const void* block = block_of(b);
    b.prepare(100);
    b.commit(100);
    b.prepare(read_block_bytes);  // a large body: reallocates, copying the 100 bytes
    EXPECT_GT(b.capacity(), read_block_bytes);
    EXPECT_EQ(b.size(), 100u);
    b.consume(b.size());
    b.shrink_to_fit();  // the larger block is not of the usual size

    void* cached = detail::take_cached_block(read_block_bytes);
    EXPECT_EQ(cached, block);
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), nullptr);
    ::operator delete(cached);
}

TEST(ReadBuffer, CacheKeepsAtMost256Blocks) {
    empty_cache guard;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < cache_capacity + 1; ++i) blocks.push_back(::operator new(read_block_bytes));

    for (std::size_t i = 0; i < cache_capacity; ++i)
        ASSERT_TRUE(detail::give_cached_block(blocks[i], read_block_bytes)) << "block " << i;
    const bool kept = detail::give_cached_block(blocks.back(), read_block_bytes);  // the 257th
    EXPECT_FALSE(kept);
    if (!kept) ::operator delete(blocks.back());
    blocks.pop_back();

    // All 256 kept, each once.
    std::vector<void*> taken;
    while (void* p = detail::take_cached_block(read_block_bytes)) taken.push_back(p);
    std::sort(blocks.begin(), blocks.end());
    std::sort(taken.begin(), taken.end());
    EXPECT_EQ(taken.size(), cache_capacity);
    EXPECT_EQ(taken, blocks);
    for (void* p : taken) ::operator delete(p);
}

TEST(ReadBuffer, BufferFreedIntoAFullCacheGoesToTheHeap) {
    empty_cache guard;
    read_buffer b;
    b.reserve(read_block_bytes);
    const void* block = block_of(b);
    std::vector<void*> fill;
    for (std::size_t i = 0; i < cache_capacity; ++i) {
        fill.push_back(::operator new(read_block_bytes));
        ASSERT_TRUE(detail::give_cached_block(fill.back(), read_block_bytes));
    }
    b.shrink_to_fit();  // the cache is full: this block goes to the heap

    for (std::size_t i = 0; i < cache_capacity; ++i) {
        void* p = detail::take_cached_block(read_block_bytes);
        EXPECT_NE(p, block);
        ::operator delete(p);
    }
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), nullptr);
}

TEST(ReadBuffer, CacheIsPerThread) {
    empty_cache guard;
    void* block = ::operator new(read_block_bytes);
    ASSERT_TRUE(detail::give_cached_block(block, read_block_bytes));

    void* seen_elsewhere = &seen_elsewhere;  // anything but nullptr
    bool kept_elsewhere = false;
    std::thread other([&] {
        seen_elsewhere = detail::take_cached_block(read_block_bytes);
        // Freed by that thread's cache when the thread ends.
        kept_elsewhere = detail::give_cached_block(::operator new(read_block_bytes), read_block_bytes);
    });
    other.join();
    EXPECT_EQ(seen_elsewhere, nullptr);
    EXPECT_TRUE(kept_elsewhere);
    void* here = detail::take_cached_block(read_block_bytes);
    EXPECT_EQ(here, block);  // only this thread's own block
    EXPECT_EQ(detail::take_cached_block(read_block_bytes), nullptr);
    ::operator delete(here);
}

// The relay's 16 KiB working block comes from a cache of its own, separate from the read
// buffers' 8 KiB one.
TEST(ReadBuffer, RelayScratchBlockIsRecycledThroughItsOwnCache) {
    std::vector<void*> saved;  // what earlier tests left in the relay cache
    while (void* p = detail::take_cached_block(relay_block_bytes)) saved.push_back(p);

    const void* first = nullptr;
    {
        scratch_block<relay_block_bytes> block;
        first = block.data();
        EXPECT_EQ(block.size(), relay_block_bytes);
    }
    void* other = ::operator new(relay_block_bytes);  // would likely get the block, had it been freed
    EXPECT_NE(other, first);
    {
        scratch_block<relay_block_bytes> again;
        EXPECT_EQ(again.data(), first);
    }
    ::operator delete(other);

    while (void* p = detail::take_cached_block(relay_block_bytes)) ::operator delete(p);
    for (void* p : saved)
        if (!detail::give_cached_block(p, relay_block_bytes)) ::operator delete(p);
}

}  // namespace
}  // namespace spillway::http
