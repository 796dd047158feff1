#![forbid(unsafe_code)]
pub mod http;
pub mod schedule;
pub mod signature;
