#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod connections;
pub mod limits;
pub mod listener;
pub mod request;
