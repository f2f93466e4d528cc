//! Operating meterpay: the real binary's logs, its `--help` against the
//! README, and a real browser on the hosted pages.

mod browser;
mod logs;
mod process;
mod readme;
