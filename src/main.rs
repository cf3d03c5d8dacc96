//! The `trailwatch` command line. Everything but argument parsing and
//! dispatch lives in the library and in `commands/`.

mod commands;
mod output;

fn main() -> std::process::ExitCode {
    tune_allocator();
    commands::main()
}

/// Has glibc's malloc grow and trim its heaps 16 MiB at a time instead of
/// 128 KiB. Objects come and go at hundreds per second, each with buffers of
/// a few MiB (decompressed text, tape, alerts with their raw events, SQLite
/// pages); with the default pad the heap top was handed back to the kernel
/// and faulted in again, zeroed, over and over. On the 256 MiB benchmark
/// corpus this took a full-pack scan from about 143,000 page faults to
/// 58,000 (3.4% faster), and the four-rule scan from 57,000 to 43,000; peak
/// RSS stayed for the four rules and rose 14 MB, to 247 MB, for the full
/// pack (README, Performance). The pad is address space, not memory: pages
/// count only once touched.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}
