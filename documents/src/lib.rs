//! vdi-documents: reading what a platform team writes. Files and folders of multi-document YAML
//! ([`read`]), checked against the CRDs' own schemas made strict ([`schema`]), into typed
//! VDISessions and VDITemplates; every problem a [`Diagnostic`] with its file, line, column,
//! object, field and [`Kind`], found with [`locate`] only for files that have problems. Input
//! limits ([`limits`]) come before any parser. The renderer and the webhook both read through
//! this crate; the types stay in `vdi-crds`, free of I/O.

pub mod diagnostic;
pub mod limits;
pub mod locate;
pub mod read;
pub mod schema;

pub use diagnostic::{Diagnostic, Diagnostics, Kind};
pub use locate::Pos;
pub use read::{Input, Origin, collect_files, read, read_text, yaml_options};
pub use schema::Schemas;
