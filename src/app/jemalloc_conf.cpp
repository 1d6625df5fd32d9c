// jemalloc's settings, read once when it starts (MALLOC_CONF in the environment still overrides
// them). By default a thread that frees memory also hands unused pages back to the kernel
// (madvise) now and then, in the middle of whatever request it is serving: on the benchmark's
// virtual machine such a call held a worker for 0.1 to 4 ms (bench/RESULTS.md). A background
// thread of jemalloc's does it instead (one is enough for a process).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,max_background_threads:1";
}
