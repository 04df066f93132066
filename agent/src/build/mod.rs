//! What a build is made of, apart from running it: the Dockerfile language and `.dockerignore` ([`dockerfile`]),
//! and the glob matching ([`glob`]) and path cleaning ([`path`]) that they share with the build driver. The driver
//! itself is `runtime/build.rs`, since RUN needs containers; nothing here touches the host.

pub mod dockerfile;
pub mod glob;
pub mod path;
