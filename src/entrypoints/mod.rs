//! Entrypoints: thin adapters that drive the engine from a trigger. [`cli`] is the terminal,
//! [`local`] the in-process workers it runs jobs with, [`lambda`] the AWS Lambda function,
//! [`web`] the jobs page `vecmigrate serve` shows; [`api_error`] is how the HTTP ones answer
//! an error.

pub(crate) mod api_error;
pub mod cli;
pub mod lambda;
pub mod local;
pub mod web;
