//! Operating meterpay: the real binary's logs (and, in later modules, a real
//! browser on the hosted pages).

mod logs;
mod process;
