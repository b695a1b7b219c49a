//! `kubectl-supervise`: wire a pod's containers with `supervisor`, and check the wiring.
//!
//! Theory of operation. Input is a YAML stream ([`yaml`]: a tree that keeps key order and each
//! scalar as written). [`manifest`] finds the pods in it: objects with a pod template, `List`
//! items, Buildkite `kubernetes` plugin blocks, lone container specs. [`inject`] rewrites each
//! pod's containers around `supervisor main|sidecar` and adds the install init container and
//! the shared volume, editing the tree in place. [`check`] reads each pod as the kubelet would
//! run it, finds every supervisor command line ([`command`], parsed by the binary's own
//! `supervisor::config::from_argv`) and runs one function per wiring rule. [`images`] knows
//! what common images run when a container has no `command`. [`webhook`] serves the same
//! `inject` to the API server as a mutating admission webhook. [`cli`] is the command line.
//!
//! This crate runs on a user's machine, in CI or as a webhook, never in the pod: the in-pod
//! `supervisor` binary does not link it.

pub mod check;
pub mod cli;
pub mod command;
pub mod images;
pub mod inject;
pub mod manifest;
pub mod webhook;
pub mod yaml;
