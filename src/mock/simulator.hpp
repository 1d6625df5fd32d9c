// spillway-mock's public face: several simulated Azure OpenAI regions (one HTTP port each) plus a
// control port, served by io_contexts and threads the simulator owns. Used by the spillway-mock
// binary, the in-process demo (spillway --demo) and the tests. Deliberately free of Asio/Beast
// includes so that linking it costs users nothing at compile time.
#pragma once

#include "core/clock.hpp"
#include "mock/mock_config.hpp"

#include <cstdint>
#include <memory>
#include <string_view>

namespace spillway::mock {

class simulator {
public:
    // `clock` drives the quota windows only (latency uses real timers); it must outlive the simulator.
    simulator(mock_config cfg, core::clock& clock);
    ~simulator();  // stops
    simulator(const simulator&) = delete;
    simulator& operator=(const simulator&) = delete;

    // Binds every port (throws std::system_error naming the address if one cannot be bound) and
    // starts the worker threads; returns once every listener accepts connections.
    void start();
    // Closes everything and joins the threads; idempotent. Not callable from a simulator thread.
    void stop();

    // The bound ports (useful after asking for port 0). Throws std::out_of_range for unknown regions.
    std::uint16_t region_port(std::string_view region) const;
    std::uint16_t control_port() const;

    const mock_config& config() const noexcept;

private:
    class impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace spillway::mock
