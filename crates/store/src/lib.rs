#![forbid(unsafe_code)]
pub mod sql_filter;
