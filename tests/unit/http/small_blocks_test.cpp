// Unit tests for http/small_blocks: the per-thread free lists behind the heads of parsed
// messages. Each test runs on a thread of its own, so it starts with empty lists.
#include "http/small_blocks.hpp"

#include "http/message_parser.hpp"

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace spillway::http {
namespace {

void on_fresh_thread(const std::function<void()>& test) { std::thread(test).join(); }

TEST(SmallBlocks, AFreedBlockServesTheNextRequestOfItsSizeClass) {
    on_fresh_thread([] {
        void* first = detail::take_small_block(100);
        detail::give_small_block(first, 100);
        EXPECT_EQ(detail::small_blocks_kept(100), 1u);
        // 100 and 120 bytes are both in the 128-byte class.
        EXPECT_EQ(detail::take_small_block(120), first);
        EXPECT_EQ(detail::small_blocks_kept(100), 0u);
        detail::give_small_block(first, 120);
    });
}

TEST(SmallBlocks, SizeClassesAreSeparate) {
    on_fresh_thread([] {
        void* small = detail::take_small_block(40);
        void* large = detail::take_small_block(400);
        detail::give_small_block(small, 40);
        detail::give_small_block(large, 400);
        void* p512 = detail::take_small_block(300);  // 256 < n <= 512
        void* p256 = detail::take_small_block(200);  // the 256-byte class is empty: a new block
        void* p64 = detail::take_small_block(1);
        EXPECT_EQ(p512, large);
        EXPECT_NE(p256, small);
        EXPECT_EQ(p64, small);
        for (void* p : {p512, p256, p64}) ::operator delete(p);
    });
}

TEST(SmallBlocks, SizesRoundUpToTheNextClass) {
    on_fresh_thread([] {
        // {size asked, a size of the same class, a size of the class above}
        const std::size_t cases[][3] = {{1, 64, 65}, {65, 128, 129}, {129, 256, 257}, {257, 512, 513}};
        for (const auto& c : cases) {
            void* p = detail::take_small_block(c[0]);
            detail::give_small_block(p, c[0]);
            EXPECT_EQ(detail::small_blocks_kept(c[1]), 1u) << c[0];
            EXPECT_EQ(detail::small_blocks_kept(c[2]), 0u) << c[0];
            EXPECT_EQ(detail::take_small_block(c[1]), p) << c[0];
            detail::give_small_block(p, c[1]);
            EXPECT_EQ(detail::take_small_block(c[1]), p);
            ::operator delete(p);
        }
    });
}

TEST(SmallBlocks, BlocksOverTheLargestClassGoToTheHeap) {
    on_fresh_thread([] {
        void* big = detail::take_small_block(largest_small_block + 1);
        detail::give_small_block(big, largest_small_block + 1);
        EXPECT_EQ(detail::small_blocks_kept(largest_small_block + 1), 0u);
        EXPECT_EQ(detail::small_blocks_kept(largest_small_block), 0u);
    });
}

TEST(SmallBlocks, EachListKeepsABoundedNumberOfBlocks) {
    on_fresh_thread([] {
        std::vector<void*> blocks;
        for (std::size_t i = 0; i < small_blocks_per_size + 10; ++i) blocks.push_back(detail::take_small_block(64));
        for (void* p : blocks) detail::give_small_block(p, 64);
        EXPECT_EQ(detail::small_blocks_kept(64), small_blocks_per_size);
    });
}

TEST(SmallBlocks, ABlockFreedOnAnotherThreadJoinsThatThreadsList) {
    on_fresh_thread([] {
        void* p = detail::take_small_block(64);
        std::size_t kept_there = 0;
        std::thread([&] {
            detail::give_small_block(p, 64);
            kept_there = detail::small_blocks_kept(64);
            void* again = detail::take_small_block(64);  // the same block, taken back out to free it here
            EXPECT_EQ(again, p);
            ::operator delete(again);
        }).join();
        EXPECT_EQ(kept_there, 1u);
        EXPECT_EQ(detail::small_blocks_kept(64), 0u);
    });
}

// What the allocator is for: a parsed request's head is recycled for the next request.
TEST(SmallBlocks, AParsedHeadIsRecycledForTheNextMessage) {
    on_fresh_thread([] {
        const std::string head =
            "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\napi-key: k\r\n\r\n";
        auto kept = [] {
            std::size_t n = 0;
            for (std::size_t size : {64u, 128u, 256u, 512u}) n += detail::small_blocks_kept(size);
            return n;
        };
        auto parse_one = [&] {
            request_parser parser;
            boost::system::error_code ec;
            parser.put(boost::asio::buffer(head), ec);
            EXPECT_FALSE(ec) << ec.message();
            EXPECT_EQ(parser["api-key"], "k");
        };
        parse_one();
        const std::size_t after_one = kept();
        EXPECT_GE(after_one, 3u);  // the copy of the head and the two lists of its fields came back
        parse_one();               // takes them again and gives them back
        EXPECT_EQ(kept(), after_one);
    });
}

}  // namespace
}  // namespace spillway::http
