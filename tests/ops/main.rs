//! Operating meterpay: the real binary's logs, and a real browser on the
//! hosted pages.

mod browser;
mod logs;
mod process;
