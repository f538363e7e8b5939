//! Entrypoints: thin adapters that drive the engine from a trigger. [`cli`] is the terminal,
//! [`local`] the in-process workers it runs jobs with, [`lambda`] the AWS Lambda function.

pub mod cli;
pub mod lambda;
pub mod local;
