//! A mapped capture file that shrinks under the replay must not kill the process.
//!
//! Reading a page of a mapping past the end of its file raises `SIGBUS`, which by default
//! ends the process. A mapping registered here is guarded instead: the `SIGBUS` handler finds
//! the faulting address in a registered range, maps a page of zeros over the faulting page
//! (so the read that faulted completes, with zeros) and marks the range as cut. The reader
//! checks the mark before lending more bytes and ends the file with an error; zeros already
//! read reach the engine as one malformed packet (counted like any other).
//!
//! A fault outside every registered range is not ours: the previous handler (the default:
//! end the process) is put back and the faulting access runs again under it.

use nix::libc;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// Mappings guarded at the same time (a replay maps one file at a time; tests map several).
const SLOTS: usize = 16;

/// Start and end addresses of each registered range (0, 0 when free), and whether a fault hit it.
static STARTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static ENDS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static CUT: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
/// Claims of slots (registration and release only; the handler reads the atomics alone).
static CLAIM: Mutex<[bool; SLOTS]> = Mutex::new([false; SLOTS]);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The system's page size, read when the handler is installed (the handler calls nothing that
/// is not a system call).
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The handler that was there before ours, put back for faults that are not ours.
static PREVIOUS: Mutex<Option<SigAction>> = Mutex::new(None);

/// A registered range; dropping it (before the mapping is unmapped) releases its slot.
#[derive(Debug)]
pub struct Guard {
    slot: usize,
    /// `CUT[slot]`, checked before every lend of bytes.
    cut: &'static AtomicBool,
}

impl Guard {
    /// Whether a read of the range went past the end of its file.
    #[inline(always)]
    pub fn cut(&self) -> bool {
        self.cut.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        STARTS[self.slot].store(0, Ordering::Release);
        ENDS[self.slot].store(0, Ordering::Release);
        CUT[self.slot].store(false, Ordering::Release);
        if let Ok(mut claims) = CLAIM.lock() {
            claims[self.slot] = false;
        }
    }
}

/// Guards `len` bytes from `start`; `None` when the handler could not be installed or every
/// slot is taken (the caller then reads the file through a buffer instead).
pub fn register(start: *const u8, len: usize) -> Option<Guard> {
    INSTALL.call_once(|| {
        PAGE.store(page_size(), Ordering::Release);
        let action = SigAction::new(SigHandler::SigAction(on_sigbus), SaFlags::SA_SIGINFO, SigSet::empty());
        // SAFETY: the handler only reads and writes atomics and calls `mmap` (a system call with
        // no user-space state); it replaces no handler that this process relies on for SIGBUS.
        #[allow(unsafe_code)]
        if let Ok(previous) = unsafe { sigaction(Signal::SIGBUS, &action) } {
            if let Ok(mut p) = PREVIOUS.lock() {
                *p = Some(previous);
            }
            INSTALLED.store(true, Ordering::Release);
        }
    });
    if !INSTALLED.load(Ordering::Acquire) {
        return None;
    }
    let mut claims = CLAIM.lock().ok()?;
    let slot = claims.iter().position(|taken| !taken)?;
    claims[slot] = true;
    CUT[slot].store(false, Ordering::Release);
    ENDS[slot].store(start as usize + len, Ordering::Release);
    STARTS[slot].store(start as usize, Ordering::Release);
    Some(Guard { slot, cut: &CUT[slot] })
}

extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; for SIGBUS
    // `si_addr` is the faulting address.
    #[allow(unsafe_code)]
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in 0..SLOTS {
        let start = STARTS[slot].load(Ordering::Acquire);
        if start != 0 && (start..ENDS[slot].load(Ordering::Acquire)).contains(&addr) {
            let page = PAGE.load(Ordering::Acquire);
            let at = addr & !(page - 1);
            // SAFETY: the page lies in a live mapping of ours (registered until just before it
            // is unmapped); replacing it with zeros only changes what reads of it return.
            #[allow(unsafe_code)]
            let mapped = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if mapped != libc::MAP_FAILED {
                CUT[slot].store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours (or the page could not be replaced): the previous disposition, then the access
    // faults again under it. `try_lock`: a handler must not wait on a lock.
    let previous = PREVIOUS.try_lock().ok().and_then(|p| *p);
    let fallback = previous.unwrap_or_else(|| SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()));
    // SAFETY: puts back the disposition SIGBUS had before `register`.
    #[allow(unsafe_code)]
    let _ = unsafe { sigaction(Signal::SIGBUS, &fallback) };
}

fn page_size() -> usize {
    // SAFETY: `sysconf` has no preconditions.
    #[allow(unsafe_code)]
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|n| n.is_power_of_two()).unwrap_or(4096)
}
